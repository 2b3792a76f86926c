/**
 * The chart's alerts and Grafana dashboard (opt-in values) against the real tools: helm renders them,
 * promtool (Prometheus 3.16.0, built from the Go module proxy) checks the rules and runs unit tests that
 * feed each alert synthetic series and say when it must fire, with which labels, and when it must not;
 * the dashboard's queries are valid PromQL selecting only the operator's series. Whether the operator
 * serves the metrics used is checked on the real operator process in story_test.ts.
 */
import assert from "node:assert/strict";
import { stringify } from "yaml";
import { CHART, helm, helmTemplate, isObj, ok } from "./packaging_support.ts";
import {
  alerts,
  dashboard,
  dashboardQueries,
  expandVariables,
  promtool,
  renderedRule,
  type Rule,
  rulesFile,
} from "./harness/monitoring.ts";

const SEL = 'job="backrest-volsync-operator-metrics",namespace="backups"';
const OTHER = 'job="some-other-operator",namespace="backups"';

/** What one alert must show at one evaluation time: the alert's own labels (none: must not fire). */
interface Expect {
  at: string;
  firing: Record<string, string>[];
}

interface Case {
  name: string;
  alert: string;
  series: [string, string][];
  expect: Expect[];
}

/** promtool wants the alert's labels and annotations exactly: the annotations are the rule's, filled in. */
function expected(rule: Rule, labels: Record<string, string>) {
  const all = { ...rule.labels, ...labels };
  const fill = (text: string) =>
    text.replace(/\{\{ \$labels\.([a-z_]+) \}\}/g, (_, name: string) => all[name] ?? "");
  return {
    exp_labels: all,
    exp_annotations: Object.fromEntries(Object.entries(rule.annotations ?? {}).map(([k, v]) => [k, fill(v)])),
  };
}

function unitTests(rules: Rule[], cases: Case[]): string {
  const byName = new Map(rules.map((r) => [r.alert, r]));
  return stringify({
    rule_files: ["rules.yaml"],
    evaluation_interval: "1m",
    tests: cases.map((c) => {
      const rule = byName.get(c.alert);
      if (!rule) throw new Error(`no alert ${c.alert} in the chart`);
      return {
        name: c.name,
        interval: "1m",
        input_series: c.series.map(([series, values]) => ({ series, values })),
        alert_rule_test: c.expect.map((e) => ({
          eval_time: e.at,
          alertname: c.alert,
          exp_alerts: e.firing.map((labels) => expected(rule, labels)),
        })),
      };
    }),
  });
}

async function runUnitTests(set: string[], cases: Case[]): Promise<string> {
  const rule = await renderedRule(set);
  const out = await promtool(["test", "rules", "tests.yaml"], {
    "rules.yaml": rulesFile(rule),
    "tests.yaml": unitTests(alerts(rule), cases),
  });
  assert.equal(out.code, 0, `promtool test rules:\n${out.stdout}\n${out.stderr}`);
  return out.stdout;
}

Deno.test("monitoring: alerts and dashboard are opt-in", async () => {
  const objects = await helmTemplate(["-n", "backups"]);
  assert.deepEqual(objects.filter((o) => o.kind === "PrometheusRule" || o.kind === "ConfigMap"), []);
});

Deno.test("monitoring: promtool checks the rendered rules, with leader election on and off", async () => {
  for (
    const set of [[], ["leaderElection.enabled=false"], ["replicaCount=2", "leaderElection.enabled=false"]]
  ) {
    const rule = await renderedRule(set);
    const out = await promtool(["check", "rules", "rules.yaml"], { "rules.yaml": rulesFile(rule) });
    assert.equal(out.code, 0, `${set.join(" ")}: ${out.stdout}${out.stderr}`);
    assert.match(out.stdout, /SUCCESS: 5 rules found/);
    assert.deepEqual(alerts(rule).map((r) => r.alert), [
      "BackrestVolSyncBindingNotReady",
      "BackrestVolSyncReconcileErrors",
      "BackrestVolSyncBackrestUnreachable",
      "BackrestVolSyncNoLeader",
      "BackrestVolSyncDriftRepairs",
    ]);
  }
});

Deno.test("monitoring: every alert selects only the operator's series; selector, labels and thresholds are values", async () => {
  const shipped = alerts(await renderedRule());
  for (const r of shipped) {
    const selectors = [...r.expr.matchAll(/[a-z_]+\{([^}]*)\}/g)].map((m) => m[1]!);
    assert.ok(selectors.length > 0, r.alert);
    for (const s of selectors) assert.ok(s.startsWith(SEL), `${r.alert}: {${s}}`);
  }
  const custom = await renderedRule([
    'metrics.prometheusRule.selector=job="ops"',
    "metrics.prometheusRule.alertLabels.team=storage",
    "metrics.prometheusRule.for.bindingNotReady=1h",
    "metrics.prometheusRule.labels.release=kube-prometheus-stack",
  ]);
  assert.equal(
    (custom.metadata as Record<string, Record<string, string>>).labels!.release,
    "kube-prometheus-stack",
  );
  for (const r of alerts(custom)) {
    assert.ok(!r.expr.includes("backrest-volsync-operator-metrics"), r.alert);
    assert.match(r.expr, /\{job="ops"/, r.alert);
    assert.equal(r.labels?.team, "storage", r.alert);
  }
  assert.equal(alerts(custom).find((r) => r.alert === "BackrestVolSyncBindingNotReady")?.for, "1h");
});

Deno.test("monitoring: promtool unit tests: each alert fires when it must, with its labels, and not otherwise", async () => {
  const cases: Case[] = [
    {
      name:
        "a Binding not Ready for 15 minutes; Paused, Ready, briefly failing and other jobs' Bindings stay quiet",
      alert: "BackrestVolSyncBindingNotReady",
      series: [
        [
          `backrest_volsync_binding_ready{${SEL},binding_namespace="shop",binding="db",reason="BackrestAddRepoFailed"}`,
          "0x40",
        ],
        [
          `backrest_volsync_binding_ready{${SEL},binding_namespace="shop",binding="web",reason="Applied"}`,
          "1x40",
        ],
        [
          `backrest_volsync_binding_ready{${SEL},binding_namespace="shop",binding="off",reason="Paused"}`,
          "0x40",
        ],
        [
          `backrest_volsync_binding_ready{${SEL},binding_namespace="shop",binding="new",reason="RepositoryNotInitialized"}`,
          "0x10 1x30",
        ],
        [
          `backrest_volsync_binding_ready{${OTHER},binding_namespace="x",binding="y",reason="Broken"}`,
          "0x40",
        ],
      ],
      expect: [
        { at: "10m", firing: [] },
        {
          at: "20m",
          firing: [{ binding_namespace: "shop", binding: "db", reason: "BackrestAddRepoFailed" }],
        },
      ],
    },
    {
      name: "reconcile errors that go on for 15 minutes, per controller",
      alert: "BackrestVolSyncReconcileErrors",
      series: [
        [`controller_runtime_reconcile_errors_total{${SEL},controller="backrestvolsyncbinding"}`, "0+1x40"],
        [`controller_runtime_reconcile_errors_total{${SEL},controller="volsync-autobinding"}`, "3x40"],
        [`controller_runtime_reconcile_errors_total{${OTHER},controller="backrestvolsyncbinding"}`, "0+1x40"],
      ],
      expect: [
        { at: "10m", firing: [] },
        { at: "30m", firing: [{ controller: "backrestvolsyncbinding" }] },
      ],
    },
    {
      name: "a Backrest whose every call fails; one that answers some calls is reachable",
      alert: "BackrestVolSyncBackrestUnreachable",
      series: [
        [
          `backrest_volsync_backrest_requests_total{${SEL},backrest="http://a:9898",method="AddRepo",code="unavailable"}`,
          "0+1x40",
        ],
        [
          `backrest_volsync_backrest_requests_total{${SEL},backrest="http://a:9898",method="GetSummaryDashboard",code="deadline_exceeded"}`,
          "0+1x40",
        ],
        [
          `backrest_volsync_backrest_requests_total{${SEL},backrest="http://b:9898",method="AddRepo",code="unavailable"}`,
          "0+1x40",
        ],
        [
          `backrest_volsync_backrest_requests_total{${SEL},backrest="http://b:9898",method="CheckRepoExists",code="ok"}`,
          "0+1x40",
        ],
        [
          `backrest_volsync_backrest_requests_total{${SEL},backrest="http://c:9898",method="AddRepo",code="invalid_argument"}`,
          "0+1x40",
        ],
      ],
      expect: [
        { at: "5m", firing: [] },
        { at: "30m", firing: [{ backrest: "http://a:9898" }] },
      ],
    },
    {
      name: "leader election on: no replica holds the Lease for 5 minutes",
      alert: "BackrestVolSyncNoLeader",
      series: [
        [
          `leader_election_master_status{${SEL},pod="p1",name="backrest-volsync-operator.backrest.garethgeorge.com"}`,
          "1x10 0x30",
        ],
        [
          `leader_election_master_status{${SEL},pod="p2",name="backrest-volsync-operator.backrest.garethgeorge.com"}`,
          "0x40",
        ],
        [`leader_election_master_status{${OTHER},pod="q",name="some-other-operator"}`, "1x40"],
      ],
      expect: [
        { at: "12m", firing: [] },
        { at: "20m", firing: [{}] },
      ],
    },
    {
      name: "leader election on: no replica reports at all",
      alert: "BackrestVolSyncNoLeader",
      series: [[`leader_election_master_status{${OTHER},pod="q",name="some-other-operator"}`, "1x40"]],
      expect: [{ at: "10m", firing: [{}] }],
    },
    {
      name: "repos re-registered after they went missing from a Backrest",
      alert: "BackrestVolSyncDriftRepairs",
      series: [
        [`backrest_volsync_drift_repairs_total{${SEL},backrest="http://a:9898"}`, "0x10 2x30"],
        [`backrest_volsync_drift_repairs_total{${SEL},backrest="http://b:9898"}`, "0x40"],
        [`backrest_volsync_drift_repairs_total{${OTHER},backrest="http://c:9898"}`, "0x10 5x30"],
      ],
      expect: [
        { at: "5m", firing: [] },
        { at: "15m", firing: [{ backrest: "http://a:9898" }] },
      ],
    },
  ];
  const out = await runUnitTests([], cases);
  assert.match(out, /SUCCESS/);

  const off = await runUnitTests(["leaderElection.enabled=false"], [{
    name: "leader election off: the one replica is down for 5 minutes",
    alert: "BackrestVolSyncNoLeader",
    series: [[`up{${SEL},pod="p1"}`, "1x10 0x30"], [`up{${OTHER},pod="q"}`, "1x40"]],
    expect: [{ at: "12m", firing: [] }, { at: "20m", firing: [{}] }],
  }]);
  assert.match(off, /SUCCESS/);
});

Deno.test("monitoring: promtool unit tests fail when an alert misbehaves (the harness can fail)", async () => {
  const rule = await renderedRule();
  const out = await promtool(["test", "rules", "tests.yaml"], {
    "rules.yaml": rulesFile(rule),
    "tests.yaml": unitTests(alerts(rule), [{
      name: "a Ready Binding must not fire",
      alert: "BackrestVolSyncBindingNotReady",
      series: [[
        `backrest_volsync_binding_ready{${SEL},binding_namespace="a",binding="b",reason="Applied"}`,
        "1x40",
      ]],
      expect: [{ at: "30m", firing: [{ binding_namespace: "a", binding: "b", reason: "Applied" }] }],
    }]),
  });
  assert.notEqual(out.code, 0);
  assert.match(out.stdout + out.stderr, /FAILED/);
});

Deno.test("monitoring: the dashboard's queries are valid PromQL on the operator's series only", async () => {
  const dash = await dashboard();
  assert.equal(dash.uid, "backrest-volsync-operator");
  const queries = dashboardQueries(dash);
  assert.ok(queries.length >= 12, `${queries.length} queries`);
  for (const q of queries) {
    for (const m of q.expr.matchAll(/[a-z_]+\{([^}]*)\}/g)) {
      assert.ok(m[1]!.startsWith('job=~"$job",namespace=~"$namespace"'), `${q.title}: ${q.expr}`);
    }
  }
  // promtool parses a query as a recording rule: a rules file that passes holds only valid PromQL.
  const file = stringify({
    groups: [{
      name: "dashboard",
      rules: queries.map((q, i) => ({ record: `dashboard:query_${i}`, expr: expandVariables(q.expr) })),
    }],
  });
  const out = await promtool(["check", "rules", "rules.yaml"], { "rules.yaml": file });
  assert.equal(out.code, 0, `${out.stdout}${out.stderr}`);

  // Every panel uses the dashboard's data source variable, so it works with any Prometheus data source.
  const panels = (dash.panels as unknown[]).filter(isObj).filter((p) => p.type !== "row");
  for (const p of panels) {
    assert.deepEqual(p.datasource, { type: "prometheus", uid: "${datasource}" }, String(p.title));
  }
});

Deno.test("monitoring: the dashboard ConfigMap carries the file unchanged, where and how the sidecar wants it", async () => {
  const objects = await helmTemplate([
    "-n",
    "backups",
    "--set",
    "metrics.grafanaDashboard.enabled=true",
    "--set",
    "metrics.grafanaDashboard.namespace=monitoring",
    "--set",
    "metrics.grafanaDashboard.annotations.grafana_folder=Backups",
  ]);
  const cm = objects.find((o) => o.kind === "ConfigMap");
  assert.ok(cm && isObj(cm.metadata) && isObj(cm.data));
  assert.equal(cm.metadata.namespace, "monitoring");
  assert.equal((cm.metadata.labels as Record<string, string>).grafana_dashboard, "1");
  assert.deepEqual(cm.metadata.annotations, { grafana_folder: "Backups" });
  assert.equal(
    cm.data["backrest-volsync-operator.json"],
    await Deno.readTextFile(`${CHART}/dashboards/backrest-volsync-operator.json`),
  );
  const lint = await helm([
    "lint",
    "--strict",
    CHART,
    "--set",
    "metrics.grafanaDashboard.enabled=true",
    "--set",
    "metrics.prometheusRule.enabled=true",
  ]);
  assert.match(ok("helm lint", lint), /0 chart\(s\) failed/);
});
