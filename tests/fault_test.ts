/**
 * Faults on real peers, with the operator in-process: kube-apiserver restarted, etcd restarted, watches
 * expired by compaction, Backrest down then back, Backrest restarted on an empty data dir, and the network
 * path to Backrest hanging. After each, every Binding is Ready and Backrest holds exactly the desired
 * repos, compared field by field, with nothing duplicated, and no Secret value reached the operator's logs,
 * its metrics, a status or an Event. (Killing the operator process and leader
 * failover are in the end-to-end suites, which run it as a separate process.)
 */
import assert from "node:assert/strict";
import { createResticRepo, waitForRepo } from "./harness/backrest.ts";
import { BINDINGS, cluster, replaceSecret, sharedOperator, waitForReason } from "./harness/operator.ts";
import {
  assertConverged,
  assertNoSecretLeak,
  type Desired,
  populate,
  secretValues,
} from "./harness/scenario.ts";
import { waitUntil } from "./harness/process.ts";
import { silentListener } from "./harness/silent_listener.ts";

const env = sharedOperator({ operator: { backrestTimeoutMs: 5_000 } });

/** The leak sweep over the in-process operator's log lines and metrics. */
async function assertNothingLeaked(...desired: Desired[][]): Promise<void> {
  const { op } = await env();
  await assertNoSecretLeak(secretValues(desired.flat()), {
    logs: op.logs.join("\n"),
    metrics: op.metrics.registry.render(),
  });
}

Deno.test("fault: kube-apiserver restarted; changes made after it reach Backrest", async () => {
  const { backrest } = await env();
  const cp = await cluster();
  const { ns, desired } = await populate(backrest.url, 2, "f-api");
  await assertConverged(backrest, ns, desired);
  await cp.restartApiserver();
  // A change after the restart proves the watches came back.
  const repo = await createResticRepo();
  await replaceSecret(ns, "s0", {
    RESTIC_REPOSITORY: repo.uri,
    RESTIC_PASSWORD: repo.password,
    AWS_ACCESS_KEY_ID: desired[0]!.env[0]!.split("=")[1]!,
  });
  const before = desired[0]!;
  desired[0] = { ...before, uri: repo.uri, password: repo.password };
  await waitForRepo(backrest, desired[0]!.id, {
    what: "rotated Secret reached Backrest",
    until: (r) => r.uri === repo.uri,
    timeoutMs: 60_000,
    intervalMs: 200,
  });
  await assertConverged(backrest, ns, desired);
  await assertNothingLeaked(desired, [before]);
});

Deno.test("fault: etcd restarted and the watch expired by compaction; nothing lost", async () => {
  const { backrest } = await env();
  const cp = await cluster();
  const { ns, desired } = await populate(backrest.url, 2, "f-etcd");
  await assertConverged(backrest, ns, desired);
  await cp.restartEtcd();
  await cp.compactEtcd();
  await cp.restartApiserver(); // drops every watch: they must resume past the compaction (410 -> relist)
  const more = await populate(backrest.url, 1, "f-etcd2");
  await assertConverged(backrest, more.ns, more.desired);
  await assertConverged(backrest, ns, desired);
  await assertNothingLeaked(desired, more.desired);
});

Deno.test("fault: Backrest down, then back: Bindings go Unreachable and recover with no duplicates", async () => {
  const { backrest } = await env();
  const cp = await cluster();
  const { ns, desired } = await populate(backrest.url, 2, "f-down");
  await assertConverged(backrest, ns, desired);
  await backrest.stop();
  const more = await populate(backrest.url, 1, "f-down2");
  await waitForReason(cp, more.ns, "b0", "BackrestUnreachable");
  await backrest.restart();
  await assertConverged(backrest, more.ns, more.desired);
  await assertConverged(backrest, ns, desired);
  await assertNothingLeaked(desired, more.desired);
});

Deno.test("fault: Backrest restarted on an empty data dir: drift repair re-applies every repo", async () => {
  const { op, backrest } = await env();
  const { ns, desired } = await populate(backrest.url, 3, "f-empty");
  await assertConverged(backrest, ns, desired);
  await backrest.restart({ emptyData: true });
  assert.equal((await backrest.getConfig()).repos.length, 0, "Backrest lost everything");
  const repairs = () =>
    Number(
      op.metrics.registry.render().match(
        new RegExp(`^backrest_volsync_drift_repairs_total\\{backrest="${backrest.url}"\\} (\\d+)$`, "m"),
      )?.[1] ?? 0,
    );
  const before = repairs();
  const round = await op.operator.drift.check();
  assert.ok(round.missing >= desired.length, `drift found ${round.missing} missing`);
  assert.equal(repairs() - before, round.missing, "each repo found missing is counted for its Backrest");
  await waitUntil("re-applied", async () => {
    const ids = new Set((await backrest.getConfig()).repos.map((r) => r.id));
    return desired.every((d) => ids.has(d.id));
  }, { timeoutMs: 60_000, intervalMs: 200 });
  await assertConverged(backrest, ns, desired);
  await assertNothingLeaked(desired);
});

Deno.test("fault: the network path to Backrest hangs; the deadline reports it, and it recovers", async () => {
  const { backrest } = await env();
  const cp = await cluster();
  // A loopback proxy that accepts connections and never answers, until it forwards to Backrest.
  const path = silentListener();
  try {
    const { ns, desired } = await populate(`http://127.0.0.1:${path.port}`, 1, "f-hang");
    const c = await waitForReason(cp, ns, "b0", "BackrestUnreachable", 60_000);
    assert.match(c.message, /deadline|unavailable/);
    path.forwardTo(backrest.url);
    // The operator retries with backoff; the Binding points at the proxy, so compare by id.
    await waitForReason(cp, ns, "b0", "Applied", 90_000);
    const held = (await backrest.getConfig()).repos.filter((r) => r.id === desired[0]!.id);
    assert.equal(held.length, 1);
    await assertNothingLeaked(desired);
  } finally {
    await path.close();
  }
});

Deno.test("fault: the leak sweep finds a value planted in output, metrics, an Event or a status", async () => {
  await env(); // the CRDs' storage is ready once the operator's caches have synced
  const cp = await cluster();
  const ns = await cp.namespace("f-sweep");
  const planted = (place: string) => `planted-${place}-${crypto.randomUUID()}`;
  const clean = { logs: '{"msg":"nothing here"}', metrics: "x_total 1\n" };
  const inLogs = planted("log");
  await assert.rejects(
    assertNoSecretLeak([inLogs], { ...clean, logs: `{"msg":"${inLogs}"}` }),
    /operator output/,
  );
  const inMetrics = planted("metric");
  await assert.rejects(
    assertNoSecretLeak([inMetrics], { ...clean, metrics: `x{v="${btoa(inMetrics)}"} 1\n` }),
    /\/metrics/,
  );
  const inEvent = planted("event");
  await cp.json("POST", `/api/v1/namespaces/${ns}/events`, {
    metadata: { name: "planted" },
    involvedObject: { kind: "Secret", name: "x", namespace: ns },
    reason: "Planted",
    message: inEvent,
    type: "Normal",
  });
  await assert.rejects(assertNoSecretLeak([inEvent], clean), /Events/);
  // An OperatorConfig the operator does not own (another namespace), with a status written as admin.
  const inStatus = planted("status");
  await cp.apply(
    JSON.stringify({
      apiVersion: "backrest.garethgeorge.com/v1alpha1",
      kind: "BackrestVolSyncOperatorConfig",
      metadata: { name: "planted" },
      spec: {},
    }),
    ns,
  );
  await cp.json(
    "PATCH",
    `${BINDINGS}/namespaces/${ns}/backrestvolsyncoperatorconfigs/planted/status`,
    {
      status: {
        conditions: [{
          type: "Ready",
          status: "False",
          reason: "Planted",
          message: inStatus,
          lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
        }],
      },
    },
    { "content-type": "application/merge-patch+json" },
  );
  await assert.rejects(assertNoSecretLeak([inStatus], clean), /OperatorConfig status/);
  await assertNoSecretLeak([planted("nowhere")], clean);
});
