/**
 * The calls of the floor (bench/scenarios/floor.ts). It imports the clients and the few names it writes,
 * neither the test harness nor the reconcilers: bench/floor_process.ts runs it in a process that loads only
 * what a plain client needs.
 */
import { BACKENDS, type BackrestApi, DEFAULT_REPOSITORY_POLICY, desiredRepo } from "../lib/backrest/mod.ts";
import { events, type KubeClient, leases, secrets } from "../lib/kube/mod.ts";
import { bindingType, operatorConfigType, volsyncTypes } from "../lib/reconcile/resources.ts";
import {
  ANNOTATION_BACKREST_URL,
  ANNOTATION_HOLDER_UID,
  ANNOTATION_REPO_ID,
  claimName,
  LABEL_REPO_CLAIM,
} from "../lib/reconcile/claims.ts";
import { appliedMessage, type StatusWriter, statusWriter } from "../lib/reconcile/binding_status.ts";
import { type BindingStatus, Reason } from "../lib/api/mod.ts";
import { parallel } from "./parallel.ts";

/**
 * The floor's calls for `n` Bindings `b-i` (Secret `s-i`, ReplicationSource `rs-i`) in `ns`: the lists,
 * then per Binding its Secret GET, the claim Lease, CheckRepoExists and AddRepo of the repository the
 * Secret names (repo id `floor-<ns>-<i>`), the status patch and the Event. The Lease and the status are
 * the operator's own (its annotations; its four conditions and applied fields, built by its status code):
 * the control plane's cost of a status patch grows with the status (bench/experiments/status_patch_cost.ts:
 * a first patch with one condition costs it about 1.3 ms of CPU less than with the operator's).
 */
export async function floorCalls(
  kube: KubeClient,
  backrest: BackrestApi,
  o: { ns: string; n: number; url: string; concurrency: number },
): Promise<void> {
  const { ns, n, url, concurrency } = o;
  const status = statusWriter({ kube, events: { record() {} }, now: () => new Date() });
  await Promise.all([
    ...[operatorConfigType, bindingType, ...Object.values(volsyncTypes)].map((t) =>
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
          [ANNOTATION_HOLDER_UID]: crypto.randomUUID(),
          [ANNOTATION_BACKREST_URL]: url,
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
      // Anything goes, loopback storage included (the test repositories live there).
      policy: {
        ...DEFAULT_REPOSITORY_POLICY,
        allowedBackends: BACKENDS,
        allowAmbientCredentials: true,
        allowLocalAddresses: true,
      },
    });
    await backrest.checkRepoExists(repo);
    await backrest.addRepo(repo);
    const b = await kube.patchStatus(bindingType, `b-${i}`, { status: appliedStatus(status, i, id, url) }, {
      namespace: ns,
    });
    const now = new Date().toISOString();
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
      message: appliedMessage([]),
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

/**
 * The status the operator writes when it applies a Binding (built by its own status code): four conditions
 * and the applied fields, so the floor's patch costs the apiserver what the operator's does.
 */
export function appliedStatus(writer: StatusWriter, i: number, id: string, url: string): BindingStatus {
  const status = writer.statusWith({ metadata: { generation: 1 }, status: { conditions: [] } }, {
    ready: true,
    reason: Reason.Applied,
    message: appliedMessage([]),
    sourceResolved: true,
    secretResolved: true,
    applied: true,
  });
  return {
    ...status,
    resolvedRepositorySecret: `s-${i}`,
    repoId: id,
    backrestURL: url,
    lastAppliedInputHash: `hmac:${"0".repeat(64)}`,
    appliedRepositoryHash: `hmac:${"1".repeat(64)}`,
    lastApplyTime: status.conditions[0]!.lastTransitionTime,
  };
}

/** A Secret's `data` (base64 values) as bytes. */
function decoded(data: unknown): Record<string, Uint8Array> {
  const out: Record<string, Uint8Array> = {};
  for (const [k, v] of Object.entries(data && typeof data === "object" ? data : {})) {
    if (typeof v === "string") out[k] = Uint8Array.from(atob(v), (c) => c.charCodeAt(0));
  }
  return out;
}
