/**
 * The floor of a cold start: a plain client makes the calls a cold start makes, and nothing else. It uses the
 * project's thin KubeClient and pooled Backrest client (the same transports), but no informer, queue, cache,
 * claim ledger or reconciler: one list of each resource the operator watches, then per Binding, at the
 * operator's concurrency, a Secret GET, the repo id's claim (one Lease created), CheckRepoExists, AddRepo, a
 * status patch and an Event, with the operator's own bodies (floor_calls.ts). {@linkcode floor} runs it in
 * the bench's process (the cold starts, beside the in-process operator); bench/floor_process.ts runs it as
 * a separate process in-cluster mode (the small scenario, beside the operator's process). Either way against
 * the same apiserver and Backrest, on objects made the same way in a namespace the operator does not watch:
 * the operator's time and CPU over the floor's is what it adds.
 */
import { backrestClient } from "../../lib/backrest/mod.ts";
import { createClient, kubeconfigConnection } from "../../lib/kube/mod.ts";
import { floorCalls } from "../floor_calls.ts";
import { cluster } from "../../tests/harness/operator.ts";
import { cpuSeconds, round } from "../common.ts";

export interface FloorResult {
  /** Wall time from the first list to the last Event written. */
  ms: number;
  /** CPU seconds this process used meanwhile (its clients; the stand-in, when used, serves from its own process). */
  cpuSeconds: number;
  cpuSecondsPerBinding: number;
}

/**
 * The floor for `n` Bindings `b-i` (Secret `s-i`, ReplicationSource `rs-i`) in `ns`, at `concurrency` in
 * flight, against the Backrest at `url`, in this process.
 */
export async function floor(ns: string, n: number, url: string, concurrency = 4): Promise<FloorResult> {
  const cp = await cluster();
  const connection = await kubeconfigConnection({ path: cp.kubeconfigPath });
  const kube = createClient(connection);
  const backrest = backrestClient({ url, timeoutMs: 60_000 });
  try {
    const cpu0 = cpuSeconds();
    const t0 = performance.now();
    await floorCalls(kube, backrest, { ns, n, url, concurrency });
    const ms = performance.now() - t0;
    const cpu = cpuSeconds() - cpu0;
    return { ms: Math.round(ms), cpuSeconds: round(cpu, 3), cpuSecondsPerBinding: round(cpu / n, 5) };
  } finally {
    connection.close();
  }
}
