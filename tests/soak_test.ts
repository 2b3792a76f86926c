/**
 * The soak in two minutes (bench/soak/), so the checker stays working: a fixed seed drives random
 * operations and faults against the operator's two replicas (separate processes, leader election on) on
 * the real control plane, a real Backrest and a stand-in, and the run must end with no violation. Then
 * violations are planted (a repo nobody named, a password changed and a repo removed behind the operator, a
 * Backrest call from a process that is no replica, a Secret value in an Event) and the checker must report
 * each.
 */
import assert from "node:assert/strict";
import { toJson } from "@bufbuild/protobuf";
import { RepoSchema } from "../gen/v1/config_pb.ts";
import { runSoak } from "../bench/soak/soak.ts";
import { kubeCall } from "../bench/soak/kube.ts";

Deno.test("soak: two minutes of random operations and faults end with no violation; planted ones are caught", async () => {
  const planted: { state: string[]; history: string[]; leaks: string[] } = {
    state: [],
    history: [],
    leaks: [],
  };
  const report = await runSoak({
    seed: 31,
    durationMs: 120_000,
    rate: 0.5,
    faultRate: 3,
    quietEverySteps: 30,
    sizes: {
      handNamespaces: 2,
      realPerNamespace: 1,
      standinPerNamespace: 3,
      autoNamespaces: 1,
      autoPerNamespace: 3,
    },
    sampleEveryMs: 10_000,
    logLevel: "debug",
    // deno-lint-ignore no-console -- the run's progress belongs in the test output
    say: (msg) => console.error(`[soak] ${msg}`),
    replayCommand: "tools/deno task soak --duration 2",
  }, async (world, checker) => {
    const post = (url: string, method: string, body: unknown) =>
      fetch(`${url}/v1.Backrest/${method}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      }).then((r) => r.text());
    await post(world.standin.url, "AddRepo", {
      repo: { id: "planted-orphan", uri: "rest:https://storage.example/planted", password: "planted" },
    });
    const held = [...world.standin.repos].filter(([id]) => id !== "planted-orphan");
    const repo = held[0]![1];
    const gone = held[1]![0];
    await post(world.standin.url, "AddRepo", {
      repo: { ...toJson(RepoSchema, repo) as Record<string, unknown>, password: `${repo.password}-changed` },
    });
    await post(world.standin.url, "RemoveRepo", { repoId: gone });
    await post(world.proxies.real.url, "GetSummaryDashboard", {});
    await kubeCall(world.cp, "POST", `/api/v1/namespaces/${world.cfgNs}/events`, {
      metadata: { name: "planted" },
      involvedObject: { kind: "Secret", name: "x", namespace: world.cfgNs },
      reason: "Planted",
      message: `value ${world.secrets.values()[0]}`,
      type: "Normal",
    });
    planted.state = await checker.state();
    await new Promise((r) => setTimeout(r, 500));
    planted.history = checker.history(world.lease, 0).map((f) => f.what);
    planted.leaks = await checker.leaks();
  });
  assert.deepEqual(report.violations, [], "no violation");
  assert.ok(
    Object.values(report.ops).reduce((a, b) => a + b, 0) >= 30,
    `operations were made: ${JSON.stringify(report.ops)}`,
  );
  assert.ok(Object.keys(report.faults).length >= 2, `faults were injected: ${JSON.stringify(report.faults)}`);
  assert.ok(report.segments.length >= 3, "quiet points were checked");
  assert.ok(report.calls.real > 0 && report.calls.standin > 0, "Backrest calls were judged");
  const one = (list: string[], re: RegExp) =>
    assert.equal(list.filter((p) => re.test(p)).length, 1, `${re} in ${JSON.stringify(list)}`);
  one(planted.state, /standin Backrest holds planted-orphan, which no Binding of the soak ever named/);
  one(planted.state, /standin Backrest's .* differs: password$/);
  one(planted.state, /standin Backrest lacks .* of Ready Binding/);
  assert.equal(planted.state.length, 3, JSON.stringify(planted.state));
  one(planted.history, /real \/v1\.Backrest\/GetSummaryDashboard from a process that is no replica/);
  assert.equal(planted.history.length, 1, JSON.stringify(planted.history));
  assert.ok(planted.leaks.some((l) => /^Events: /.test(l)), JSON.stringify(planted.leaks));
});
