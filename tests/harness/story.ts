/**
 * The user's story as one sample, shared by `task dev` and the tests that prove it: real control plane,
 * Backrest with its web UI, a REST repository, the repository Secret, a ReplicationSource, a Binding with
 * `triggerTasksOnSnapshot`, the operator as its own process (the `start` task's flags), then one VolSync
 * sync of a small PVC and Backrest's index of the snapshot it made. Plus the reads of Backrest's API that
 * show what its UI shows (the operation log, indexed snapshots, a snapshot's files).
 */

import { type BackrestInstance, createResticRepo, startBackrest } from "./backrest.ts";
import type { ControlPlane } from "./control_plane.ts";
import {
  binding,
  cluster,
  ensureOperatorConfig,
  replicationSource,
  secret,
  waitForReason,
} from "./operator.ts";
import { type OperatorProcess, startOperatorProcess, taskFlags } from "./operator_process.ts";
import { waitUntil } from "./process.ts";
import { type CompletedSync, pvcWith, volsyncSync } from "./volsync.ts";

/** One entry of Backrest's operation log (Connect JSON; only the fields tests read). */
export interface BackrestOperation {
  id: string;
  repoId?: string;
  snapshotId?: string;
  status?: string;
  operationIndexSnapshot?: { snapshot?: IndexedSnapshot };
  operationStats?: unknown;
}

/** A snapshot as Backrest indexed it. */
export interface IndexedSnapshot {
  id: string;
  hostname?: string;
  paths?: string[];
  tags?: string[];
}

/** Backrest's operation log for one repo (what its UI's repo view draws). */
export async function repoOperations(
  backrest: BackrestInstance,
  repoId: string,
): Promise<BackrestOperation[]> {
  const config = await backrest.getConfig();
  const guid = config.repos.find((r) => r.id === repoId)?.guid;
  if (!guid) throw new Error(`Backrest holds no repo ${repoId}`);
  const list = await backrest.rpc("GetOperations", { selector: { repoGuid: guid } }) as {
    operations?: BackrestOperation[];
  };
  return list.operations ?? [];
}

/** The snapshots Backrest has indexed for a repo: the ones its UI lists. */
export async function indexedSnapshots(
  backrest: BackrestInstance,
  repoId: string,
): Promise<IndexedSnapshot[]> {
  return (await repoOperations(backrest, repoId)).flatMap((op) => {
    const s = op.operationIndexSnapshot?.snapshot;
    return s ? [s] : [];
  });
}

/** Waits until Backrest lists the snapshot whose id starts with `shortId` for the repo; returns it. */
export async function waitForIndexedSnapshot(
  backrest: BackrestInstance,
  repoId: string,
  shortId: string,
  timeoutMs = 60_000,
): Promise<IndexedSnapshot> {
  let found: IndexedSnapshot | undefined;
  await waitUntil(`Backrest indexes snapshot ${shortId} of ${repoId}`, async () => {
    found = (await indexedSnapshots(backrest, repoId)).find((s) => s.id.startsWith(shortId));
    return found !== undefined;
  }, { timeoutMs, intervalMs: 200 });
  return found!;
}

/** The entries of a directory of a snapshot, through the same call the UI's snapshot browser makes. */
export async function snapshotFiles(
  backrest: BackrestInstance,
  repoId: string,
  snapshotId: string,
  path = "/",
): Promise<{ name: string; type: string; path: string }[]> {
  const res = await backrest.rpc("ListSnapshotFiles", { repoId, snapshotId, path }) as {
    entries?: { name: string; type: string; path: string }[];
  };
  return res.entries ?? [];
}

/** The sample PVC's files: what the README's screenshot shows inside the snapshot. */
export const SAMPLE_FILES: Record<string, string> = {
  "README.txt": "my-app's data volume, backed up by VolSync's restic mover\n",
  "config/app.yaml": "listen: :8080\nstorage: /data/uploads\n",
  "uploads/2026/notes.txt": "Backrest shows this file inside the snapshot.\n",
  "uploads/2026/photo.txt": "(a stand-in for a photo)\n",
};

export interface Story {
  cp: ControlPlane;
  backrest: BackrestInstance;
  operator: OperatorProcess;
  namespace: string;
  bindingName: string;
  sourceName: string;
  /** The repo id in Backrest: the default `volsync-<namespace>-replicationsource-<name>`. */
  repoId: string;
  /** The PVC directory the sync backed up. */
  pvc: string;
  /** The first sync, once Backrest has indexed its snapshot. */
  sync: CompletedSync;
  snapshot: IndexedSnapshot;
}

/**
 * Starts the whole sample and waits until Backrest lists the first sync's snapshot. `namespace` must be
 * new to the control plane (`task dev` uses `backups`; tests use a fresh one). `log` hears each step.
 */
export async function startStory(
  opts: { namespace?: string; log?: (line: string) => void } = {},
): Promise<Story> {
  const log = opts.log ?? (() => {});
  const [cp, backrest] = await Promise.all([cluster(), startBackrest()]);
  const namespace = opts.namespace ?? await cp.namespace("story");
  if (opts.namespace) {
    await cp.apply(JSON.stringify({ apiVersion: "v1", kind: "Namespace", metadata: { name: namespace } }));
  }
  const sourceName = "my-app-data";
  const bindingName = "my-app";
  const repoId = `volsync-${namespace}-replicationsource-${sourceName}`;
  const repo = await createResticRepo();
  await cp.apply(
    [
      secret("restic-my-app", { RESTIC_REPOSITORY: repo.uri, RESTIC_PASSWORD: repo.password }),
      replicationSource(sourceName, "restic-my-app"),
      binding(bindingName, {
        url: backrest.url,
        source: sourceName,
        repo: { autoUnlock: true, triggerTasksOnSnapshot: true },
      }),
    ].map((o) => JSON.stringify(o)).join("\n---\n"),
    namespace,
  );
  // The sample's storage is a rest-server on this machine's loopback: the operator refuses such a
  // repository unless its OperatorConfig admits local addresses, as this one does.
  await ensureOperatorConfig(namespace);
  log(
    "sample created: repository Secret, ReplicationSource, Binding and an OperatorConfig admitting loopback " +
      "storage (repositoryPolicy.allowLocalAddresses); starting the operator",
  );
  const operator = await startOperatorProcess({
    name: "operator",
    flags: taskFlags("start"),
    args: [
      `--kubeconfig=${cp.kubeconfigPath}`,
      `--operator-config-namespace=${namespace}`,
      "--leader-elect=false",
      "--log-format=console",
    ],
  });
  await waitForReason(cp, namespace, bindingName, "Applied", 60_000);
  log(`repo ${repoId} registered in Backrest; running a VolSync sync (restic mover backup)`);
  const pvc = await pvcWith(SAMPLE_FILES);
  const sync = await volsyncSync(cp, namespace, sourceName, pvc);
  log(`sync done (snapshot ${sync.snapshotId}); waiting for Backrest to index it`);
  const snapshot = await waitForIndexedSnapshot(backrest, repoId, sync.snapshotId);
  return { cp, backrest, operator, namespace, bindingName, sourceName, repoId, pvc, sync, snapshot };
}
