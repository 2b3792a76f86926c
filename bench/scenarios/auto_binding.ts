/**
 * (issue 6) auto-binding: the operator runs with an OperatorConfig (policy Annotated, the stand-in as
 * defaultBackrest); N annotated ReplicationSources and their Secrets are created at once; we measure the
 * time from the first create until N managed Bindings exist and are all Ready, and the apiserver writes per
 * Binding (creating it included). Backrest is the instant stand-in: this measures the operator.
 */
import { startBackrestStandin } from "../../tests/harness/backrest_standin.ts";
import { cluster, putOperatorConfig, replicationSource, secret } from "../../tests/harness/operator.ts";
import { benchOperator, isReady, parallel, post, round, say, type ScenarioResult, sleep } from "../common.ts";

export async function autoBinding(n: number, targetMs = 30_000): Promise<ScenarioResult> {
  const cp = await cluster();
  const ns = await cp.namespace(`bench-auto-${n}`);
  const standin = startBackrestStandin();
  const op = await benchOperator({ namespaces: [ns] });
  try {
    await putOperatorConfig(op.configNamespace, {
      defaultBackrest: { url: standin.url },
      bindingGeneration: { policy: "Annotated" },
    });
    await op.start();
    await sleep(500); // the config is reconciled and in force
    const before = op.counts.snapshot();
    const t0 = performance.now();
    await parallel([...Array(n).keys()], 16, async (i) => {
      await post(
        `/api/v1/namespaces/${ns}/secrets`,
        secret(`s-${i}`, {
          RESTIC_REPOSITORY: `rest:https://rest.example/bucket/auto-${i}`,
          RESTIC_PASSWORD: `pw-${i}`,
        }),
      );
      await post(
        `/apis/volsync.backube/v1alpha1/namespaces/${ns}/replicationsources`,
        replicationSource(`rs-${i}`, `s-${i}`, {
          annotations: { "backrest.garethgeorge.com/binding": "true" },
        }),
      );
    });
    const createdMs = performance.now() - t0;
    let ready = 0;
    let managed = 0;
    const deadline = t0 + Math.max(120_000, n * 100);
    while (performance.now() < deadline) {
      const all = op.operator.bindings.store.list();
      managed = all.length;
      ready = all.filter(isReady).length;
      if (managed === n && ready === n) break;
      await sleep(20);
    }
    const allReadyMs = performance.now() - t0;
    await sleep(2000); // let the tail of the burst (no-op reconciles, Events) be counted
    const after = op.counts.snapshot();
    const writes = after.writes - before.writes;
    // Not a Binding's: the status hash key Secret, made once by the first reconcile of a new installation.
    const installWrites = (after.byVerbResource["create:secrets"] ?? 0) -
      (before.byVerbResource["create:secrets"] ?? 0);
    const writesPerBinding = round((writes - installWrites) / n, 3);
    say(`auto-binding ${n}: ${ready}/${n} Ready in ${Math.round(allReadyMs)} ms; ${writes} writes`);
    return {
      scenario: `auto-binding-${n}`,
      backrest: "stand-in (tests/harness/backrest_standin.ts)",
      params: { n, policy: "Annotated", concurrency: 4 },
      results: {
        objectsCreatedMs: Math.round(createdMs),
        allReadyMs: Math.round(allReadyMs),
        managedBindings: managed,
        ready,
        apiserverWrites: writes,
        writesPerBinding,
        installWrites,
        byVerbResource: after.byVerbResource,
        standinRequests: { ...standin.calls },
      },
      targets: {
        allReady: {
          target: `<= ${targetMs / 1000} s`,
          measured: Math.round(allReadyMs),
          pass: ready === n && allReadyMs <= targetMs,
        },
        writesPerBinding: { target: "<= 3", measured: writesPerBinding, pass: writesPerBinding <= 3 },
      },
    };
  } finally {
    await op.stop();
    await standin.stop();
  }
}
