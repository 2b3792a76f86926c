import assert from "node:assert/strict";
import { Registry } from "./metrics.ts";
import { createRuntimeMetrics } from "./runtime_metrics.ts";

Deno.test("metrics: counters, gauges and histograms render in the text format", () => {
  const r = new Registry();
  const c = r.counter({ name: "x_total", help: "X.", labelNames: ["result"] });
  const g = r.gauge({ name: "depth", help: "Depth." });
  const h = r.histogram({ name: "t_seconds", help: "T.", buckets: [0.1, 1] });
  c.inc({ result: 'a"b' });
  c.inc({ result: 'a"b' }, 2);
  g.set({}, 4);
  h.observe({}, 0.05);
  h.observe({}, 0.5);
  h.observe({}, 5);
  assert.equal(
    r.render(),
    [
      "# HELP depth Depth.",
      "# TYPE depth gauge",
      "depth 4",
      "# HELP t_seconds T.",
      "# TYPE t_seconds histogram",
      't_seconds_bucket{le="0.1"} 1',
      't_seconds_bucket{le="1"} 2',
      't_seconds_bucket{le="+Inf"} 3',
      "t_seconds_sum 5.55",
      "t_seconds_count 3",
      "# HELP x_total X.",
      "# TYPE x_total counter",
      'x_total{result="a\\"b"} 3',
      "",
    ].join("\n"),
  );
});

Deno.test("metrics: invalid names, missing labels and duplicates are refused", () => {
  const r = new Registry();
  assert.throws(() => r.counter({ name: "bad-name", help: "" }), RangeError);
  const c = r.counter({ name: "ok", help: "", labelNames: ["a"] });
  assert.throws(() => c.inc({}), RangeError);
  assert.throws(() => c.inc({ a: "x" }, -1), RangeError);
  assert.throws(() => r.gauge({ name: "ok", help: "" }), RangeError);
});

Deno.test("metrics: the runtime set uses controller-runtime's names", () => {
  const m = createRuntimeMetrics();
  m.reconcileTotal.inc({ controller: "binding", result: "success" });
  m.workqueueDepth.set({ name: "binding", controller: "binding" }, 0);
  m.leaderElectionMasterStatus.set({ name: "lease" }, 1);
  const text = m.registry.render();
  for (
    const name of [
      "controller_runtime_reconcile_total",
      "controller_runtime_reconcile_errors_total",
      "controller_runtime_reconcile_time_seconds",
      "controller_runtime_active_workers",
      "workqueue_depth",
      "workqueue_adds_total",
      "workqueue_queue_duration_seconds",
      "workqueue_work_duration_seconds",
      "workqueue_retries_total",
      "leader_election_master_status",
    ]
  ) assert.match(text, new RegExp(`# TYPE ${name} `));
  assert.match(text, /controller_runtime_reconcile_total\{controller="binding",result="success"\} 1/);
});
