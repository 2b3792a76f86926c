/**
 * The calls of the floor (bench/scenarios/floor.ts). It imports the clients and the few names it writes,
 * neither the test harness nor the reconcilers: bench/floor_process.ts runs it in a process that loads only
 * what a plain client needs.
 */
import { BACKENDS, type BackrestApi, desiredRepo } from "../lib/backrest/mod.ts";
import { events, type KubeClient, leases, secrets } from "../lib/kube/mod.ts";
import {
  bindingType,
  operatorConfigType,
  replicationDestinationType,
  replicationSourceType,
} from "../lib/reconcile/resources.ts";
import {
  ANNOTATION_HOLDER_UID,
  ANNOTATION_REPO_ID,
  claimName,
  LABEL_REPO_CLAIM,
} from "../lib/reconcile/claims.ts";
import { parallel } from "./parallel.ts";

/**
 * The floor's calls for `n` Bindings `b-i` (Secret `s-i`, ReplicationSource `rs-i`) in `ns`: the lists,
 * then per Binding its Secret GET, the claim Lease, CheckRepoExists and AddRepo of the repository the
 * Secret names (repo id `floor-<ns>-<i>`), the status patch and the Event.
 */
export async function floorCalls(
  kube: KubeClient,
  backrest: BackrestApi,
  o: { ns: string; n: number; url: string; concurrency: number },
): Promise<void> {
  const { ns, n, url, concurrency } = o;
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
    const repo = await desiredRepo({
      namespace: ns,
      kind: "ReplicationSource",
      name: `rs-${i}`,
      secretData: decoded(secret.data),
      settings: { idOverride: id, extraFlags: [] },
      policy: { allowedBackends: BACKENDS, allowAmbientCredentials: true, allowAdoption: false },
    });
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
}

/** A Secret's `data` (base64 values) as bytes. */
function decoded(data: unknown): Record<string, Uint8Array> {
  const out: Record<string, Uint8Array> = {};
  for (const [k, v] of Object.entries(data && typeof data === "object" ? data : {})) {
    if (typeof v === "string") out[k] = Uint8Array.from(atob(v), (c) => c.charCodeAt(0));
  }
  return out;
}
