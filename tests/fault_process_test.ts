/**
 * Faults that need the operator as its own process (kubeconfig mode, the `start` task's flags): killed with
 * SIGKILL in the middle of reconciling and started again, and a leader killed while a second replica waits.
 * After each, every Binding is Ready and Backrest holds exactly the desired repos, nothing duplicated, and
 * no Secret value reached any replica's output or metrics, a status or an Event.
 */
import assert from "node:assert/strict";
import { startBackrest } from "./harness/backrest.ts";
import { cluster, ensureOperatorConfig } from "./harness/operator.ts";
import { type OperatorProcess, startOperatorProcess, taskFlags } from "./harness/operator_process.ts";
import { waitUntil } from "./harness/process.ts";
import {
  assertConverged,
  assertNoSecretLeak,
  type Desired,
  populate,
  secretValues,
} from "./harness/scenario.ts";

/** The leak sweep over every replica's output (the killed ones too) and the live ones' /metrics. */
async function assertNothingLeaked(replicas: OperatorProcess[], live: OperatorProcess[], desired: Desired[]) {
  let metrics = "";
  for (const r of live) metrics += await (await fetch(`${r.metricsUrl}/metrics`)).text();
  assert.ok(metrics.includes("controller_runtime_reconcile_total"), "metrics were read");
  await assertNoSecretLeak(secretValues(desired), {
    logs: replicas.map((r) => r.logs()).join("\n"),
    metrics,
  });
}

Deno.test("fault: the operator killed with SIGKILL mid-reconcile and restarted converges, nothing duplicated", async () => {
  const cp = await cluster();
  const backrest = await startBackrest();
  const configNs = await cp.namespace("kill-cfg");
  const args = [
    `--kubeconfig=${cp.kubeconfigPath}`,
    `--operator-config-namespace=${configNs}`,
    "--leader-elect=false",
  ];
  await ensureOperatorConfig(configNs);
  const first = await startOperatorProcess({ flags: taskFlags("start"), args, name: "killed" });
  try {
    const { ns, desired } = await populate(backrest.url, 4, "kill");
    // Kill as soon as the first repo lands: the others are queued or in flight.
    await waitUntil("first apply", async () => (await backrest.getConfig()).repos.length > 0, {
      timeoutMs: 60_000,
      intervalMs: 20,
    });
    first.proc.child.kill("SIGKILL");
    const status = await first.proc.exited;
    assert.equal(status.signal, "SIGKILL");
    const second = await startOperatorProcess({ flags: taskFlags("start"), args, name: "restarted" });
    try {
      await assertConverged(backrest, ns, desired);
      await assertNothingLeaked([first, second], [second], desired);
    } finally {
      assert.equal((await second.stop()).code, 0);
    }
  } finally {
    await first.proc.kill();
    await backrest.stop();
  }
});

Deno.test("fault: the leader killed with two replicas: the other takes over and applies", async () => {
  const cp = await cluster();
  const backrest = await startBackrest();
  const configNs = await cp.namespace("ha-cfg");
  const args = [`--kubeconfig=${cp.kubeconfigPath}`, `--operator-config-namespace=${configNs}`];
  await ensureOperatorConfig(configNs);
  const replicas = [
    await startOperatorProcess({ flags: taskFlags("start"), args, name: "replica-a" }),
    await startOperatorProcess({ flags: taskFlags("start"), args, name: "replica-b" }),
  ];
  const leasePath =
    `/apis/coordination.k8s.io/v1/namespaces/${configNs}/leases/backrest-volsync-operator.backrest.garethgeorge.com`;
  try {
    const { ns, desired } = await populate(backrest.url, 2, "ha");
    await assertConverged(backrest, ns, desired);
    const lease = await cp.json("GET", leasePath) as { spec: { holderIdentity: string } };
    const leader = replicas.findIndex((r) => r.logs().includes("Successfully acquired lease"));
    assert.ok(leader >= 0, "one replica acquired the Lease");
    assert.equal(
      replicas.filter((r) => r.logs().includes("Successfully acquired lease")).length,
      1,
      "only one",
    );
    replicas[leader]!.proc.child.kill("SIGKILL");
    await replicas[leader]!.proc.exited;
    const more = await populate(backrest.url, 2, "ha2");
    // The successor waits out the dead leader's lease (15 s), then applies.
    await assertConverged(backrest, more.ns, more.desired, 90_000);
    await assertConverged(backrest, ns, desired);
    const after = await cp.json("GET", leasePath) as { spec: { holderIdentity: string } };
    assert.notEqual(after.spec.holderIdentity, lease.spec.holderIdentity, "the Lease changed hands");
    await assertNothingLeaked(replicas, replicas.filter((_, i) => i !== leader), [
      ...desired,
      ...more.desired,
    ]);
  } finally {
    for (const r of replicas) await r.proc.kill();
    await backrest.stop();
  }
});
