/**
 * Experiment, not a benchmark target (`tools/deno run -A bench/experiments/status_patch_cost.ts`): what a
 * Binding's first status patch costs the real apiserver and etcd, by the status written: the operator's
 * applied status (four conditions and the applied fields, as bench/floor_calls.ts writes it) against one
 * with a single Ready condition and no `appliedRepositoryHash` (what the floor wrote before 2026-12-03).
 * Four rounds; in each, 250 new Bindings per kind, each patched once at 4 in flight, the kinds alternating
 * and measured apart (the control plane's CPU seconds over the patches only).
 */
import { createClient, kubeconfigConnection } from "../../lib/kube/mod.ts";
import { bindingType } from "../../lib/reconcile/resources.ts";
import { statusWriter } from "../../lib/reconcile/binding_status.ts";
import { cluster } from "../../tests/harness/operator.ts";
import { appliedStatus } from "../floor_calls.ts";
import { controlPlaneCpuSeconds, createBindings, parallel, say } from "../common.ts";

const PER_ROUND = 250;
const ROUNDS = 4;
const IN_FLIGHT = 4;
const URL_ = "http://backrest.invalid:9898";

const cp = await cluster();
const connection = await kubeconfigConnection({ path: cp.kubeconfigPath });
const kube = createClient(connection);
const writer = statusWriter({ kube, events: { record() {} }, now: () => new Date() });
const secretData = (i: number) => ({ RESTIC_REPOSITORY: `rest:https://x/${i}`, RESTIC_PASSWORD: `pw-${i}` });

/** The status the floor wrote before 2026-12-03: one condition. */
function oneCondition(i: number, id: string): Record<string, unknown> {
  const now = new Date().toISOString();
  return {
    observedGeneration: 1,
    repoId: id,
    backrestURL: URL_,
    resolvedRepositorySecret: `s-${i}`,
    lastAppliedInputHash: `hmac:${"0".repeat(64)}`,
    lastApplyTime: now,
    conditions: [{
      type: "Ready",
      status: "True",
      reason: "Applied",
      message: `Backrest holds repo ${id}`,
      lastTransitionTime: now,
      observedGeneration: 1,
    }],
  };
}

const kinds = [
  { kind: "one condition", short: "one", status: oneCondition },
  {
    kind: "the operator's",
    short: "four",
    status: (i: number, id: string) => appliedStatus(writer, i, id, URL_),
  },
];
const total: Record<string, { cpu: number; n: number }> = {};
for (let round = 0; round < ROUNDS; round++) {
  for (const { kind, short, status } of kinds) {
    const ns = await cp.namespace(`patch-cost-${round}-${short}`);
    await createBindings(ns, 0, PER_ROUND, URL_, secretData);
    const c0 = controlPlaneCpuSeconds();
    const t0 = performance.now();
    await parallel([...Array(PER_ROUND).keys()], IN_FLIGHT, async (i) => {
      await kube.patchStatus(bindingType, `b-${i}`, { status: status(i, `floor-${ns}-${i}`) }, {
        namespace: ns,
      });
    });
    const ms = performance.now() - t0;
    const c1 = controlPlaneCpuSeconds();
    const cpu = c1.apiserver - c0.apiserver + c1.etcd - c0.etcd;
    (total[kind] ??= { cpu: 0, n: 0 }).cpu += cpu;
    total[kind].n += PER_ROUND;
    say(
      `round ${round} ${kind}: ${PER_ROUND} patches in ${Math.round(ms)} ms; apiserver ${
        ((c1.apiserver - c0.apiserver) / PER_ROUND * 1000).toFixed(2)
      } ms, etcd ${((c1.etcd - c0.etcd) / PER_ROUND * 1000).toFixed(2)} ms CPU per patch`,
    );
  }
}
for (const [kind, t] of Object.entries(total)) {
  say(`${kind}: ${(t.cpu / t.n * 1000).toFixed(2)} ms of control-plane CPU per patch over ${t.n}`);
}
connection.close();
Deno.exit(0);
