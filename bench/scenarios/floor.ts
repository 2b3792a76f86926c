/**
 * The floor of a cold start: a plain client makes the calls a cold start makes, and nothing else. It uses the
 * project's thin KubeClient and pooled Backrest client (the same transports), but no informer, queue, cache,
 * claim ledger or reconciler: one list of each resource the operator watches, then per Binding, at the
 * operator's concurrency, a Secret GET, the repo id's claim (one Lease created), CheckRepoExists, AddRepo, a
 * status patch and an Event. Run in the same
 * process as the cold start, against the same apiserver and Backrest, on objects made the same way in a
 * namespace the operator does not watch: a cold start's time and CPU over the floor's is what the operator
 * adds.
 */
import { backrestClient } from "../../lib/backrest/mod.ts";
import { createClient, events, kubeconfigConnection, leases, secrets } from "../../lib/kube/mod.ts";
import {
  bindingType,
  claimName,
  LABEL_REPO_CLAIM,
  operatorConfigType,
  replicationDestinationType,
  replicationSourceType,
} from "../../lib/reconcile/mod.ts";
import { ANNOTATION_HOLDER_UID, ANNOTATION_REPO_ID } from "../../lib/reconcile/claims.ts";
import { repoFor } from "../../tests/harness/backrest_fixtures.ts";
import { cluster } from "../../tests/harness/operator.ts";
import { cpuSeconds, parallel, round } from "../common.ts";

export interface FloorResult {
  /** Wall time from the first list to the last Event written. */
  ms: number;
  /** CPU seconds this process used meanwhile (its clients; the stand-in, when used, serves from its own process). */
  cpuSeconds: number;
  cpuSecondsPerBinding: number;
}

/**
 * The floor for `n` Bindings `b-i` (Secret `s-i`, ReplicationSource `rs-i`) in `ns`, whose repositories are
 * `repos[i]`, at `concurrency` in flight, against the Backrest at `url`.
 */
export async function floor(
  ns: string,
  n: number,
  url: string,
  repos: readonly { uri: string; password: string }[],
  concurrency = 4,
): Promise<FloorResult> {
  const cp = await cluster();
  const connection = await kubeconfigConnection({ path: cp.kubeconfigPath });
  const kube = createClient(connection);
  const backrest = backrestClient({ url, timeoutMs: 60_000 });
  try {
    const cpu0 = cpuSeconds();
    const t0 = performance.now();
    await Promise.all([
      ...[operatorConfigType, bindingType, replicationSourceType, replicationDestinationType].map((t) =>
        kube.listAll(t, { namespace: ns })
      ),
      kube.listMetadata(secrets, { namespace: ns }),
      kube.listAll(leases, { namespace: ns }),
    ]);
    await parallel([...Array(n).keys()], concurrency, async (i) => {
      const secret = await kube.get(secrets, `s-${i}`, { namespace: ns });
      if (!secret) throw new Error(`floor: Secret s-${i} is missing`);
      const id = `floor-${ns}-${i}`;
      await kube.create(leases, {
        apiVersion: "coordination.k8s.io/v1",
        kind: "Lease",
        metadata: {
          name: claimName(id),
          namespace: ns,
          labels: { [LABEL_REPO_CLAIM]: "true" },
          annotations: {
            [ANNOTATION_REPO_ID]: id,
            [ANNOTATION_HOLDER_UID]: "u",
          },
        },
        spec: { holderIdentity: `${ns}/b-${i}` },
      });
      const repo = await repoFor(id, repos[i]!);
      await backrest.checkRepoExists(repo);
      await backrest.addRepo(repo);
      const now = new Date().toISOString();
      const b = await kube.patchStatus(bindingType, `b-${i}`, {
        status: {
          observedGeneration: 1,
          repoId: id,
          backrestURL: url,
          resolvedRepositorySecret: `s-${i}`,
          lastAppliedInputHash: "0".repeat(64),
          lastApplyTime: now,
          conditions: [{
            type: "Ready",
            status: "True",
            reason: "Applied",
            message: `Backrest holds repo ${id}`,
            lastTransitionTime: now,
            observedGeneration: 1,
          }],
        },
      }, { namespace: ns });
      await kube.create(events, {
        apiVersion: "v1",
        kind: "Event",
        metadata: { name: `b-${i}.floor`, namespace: ns },
        involvedObject: {
          apiVersion: "backrest.garethgeorge.com/v1alpha1",
          kind: "BackrestVolSyncBinding",
          name: `b-${i}`,
          namespace: ns,
          uid: b.metadata.uid ?? "",
        },
        reason: "Applied",
        message: `Backrest holds repo ${id}`,
        type: "Normal",
        count: 1,
        firstTimestamp: now,
        lastTimestamp: now,
        source: { component: "backrest-volsync-operator" },
        reportingComponent: "backrest-volsync-operator",
        reportingInstance: "",
      });
    });
    const ms = performance.now() - t0;
    const cpu = cpuSeconds() - cpu0;
    return { ms: Math.round(ms), cpuSeconds: round(cpu, 3), cpuSecondsPerBinding: round(cpu / n, 5) };
  } finally {
    connection.close();
  }
}
