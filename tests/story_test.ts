/**
 * The user's story on the real peers, up to what Backrest's UI shows: a VolSync sync (restic's mover
 * backup of a PVC, then the ReplicationSource's status as VolSync writes it) makes the operator ask
 * Backrest to index the repo, and Backrest's own API then lists that snapshot, with VolSync's host and
 * path, and the files inside it. Indexing is asked for once per completed sync, not once per reconcile.
 * The operator runs as its own process with the `start` task's flags, as in `task dev`; its /metrics
 * must serve what the chart's alerts and dashboard query.
 */
import assert from "node:assert/strict";
import { BINDINGS } from "./harness/operator.ts";
import { waitUntil } from "./harness/process.ts";
import {
  indexedSnapshots,
  repoOperations,
  snapshotFiles,
  startStory,
  type Story,
  waitForIndexedSnapshot,
} from "./harness/story.ts";
import { volsyncSync } from "./harness/volsync.ts";
import { chartMetricNames, exposedFamilies, PROPOSED_METRICS } from "./harness/monitoring.ts";

let shared: Promise<Story> | undefined;
const story = () => shared ??= startStory();

/** Lines of the operator's log saying it asked Backrest for the snapshot tasks. */
function triggers(s: Story): number {
  return s.operator.logs().split("\n").filter((l) => l.includes("Backrest repo tasks triggered")).length;
}

/** The Binding controller's reconciles so far, from the operator's /metrics. */
async function bindingReconciles(s: Story): Promise<number> {
  const text = await (await fetch(`${s.operator.metricsUrl}/metrics`)).text();
  let total = 0;
  for (const line of text.split("\n")) {
    const m = /^controller_runtime_reconcile_total\{([^}]*)\} (\d+)/.exec(line);
    if (m && m[1]!.includes('controller="backrestvolsyncbinding"')) total += Number(m[2]);
  }
  return total;
}

async function statsRuns(s: Story): Promise<number> {
  return (await repoOperations(s.backrest, s.repoId)).filter((op) => op.operationStats !== undefined).length;
}

Deno.test("story: a VolSync sync is indexed in Backrest with VolSync's host and path, and its files listed", async () => {
  const s = await story();
  assert.equal(s.snapshot.hostname, "volsync", "the mover's --host");
  assert.deepEqual(s.snapshot.paths, ["/data"], "the mover backs up . from /data");
  assert.deepEqual(s.snapshot.tags ?? [], [], "the mover sets no tags");

  const rs = await s.cp.json(
    "GET",
    `/apis/volsync.backube/v1alpha1/namespaces/${s.namespace}/replicationsources/${s.sourceName}`,
  ) as { status: { lastSyncTime: string; latestMoverStatus: { result: string; logs: string } } };
  assert.equal(rs.status.lastSyncTime, s.sync.lastSyncTime);
  assert.equal(rs.status.latestMoverStatus.result, "Successful");
  assert.match(rs.status.latestMoverStatus.logs, new RegExp(`^snapshot ${s.sync.snapshotId} saved$`, "m"));

  // The Binding records the sync it asked Backrest to index (written right after the request).
  const bindingPath = `${BINDINGS}/namespaces/${s.namespace}/backrestvolsyncbindings/${s.bindingName}`;
  await waitUntil("the Binding records the indexed sync", async () => {
    const b = await s.cp.json("GET", bindingPath) as { status: Record<string, string> };
    return b.status.lastIndexedSnapshotMarker === `lastSyncTime=${s.sync.lastSyncTime}`;
  }, { timeoutMs: 30_000 });

  const root = await snapshotFiles(s.backrest, s.repoId, s.snapshot.id);
  assert.deepEqual(root.map((e) => `${e.type} ${e.path}`).sort(), [
    "dir /config",
    "dir /uploads",
    "file /README.txt",
  ]);
  // restic's listing of a directory starts with the directory itself
  const inner = await snapshotFiles(s.backrest, s.repoId, s.snapshot.id, "/uploads/2026");
  assert.deepEqual(inner.map((e) => `${e.type} ${e.path}`).sort(), [
    "dir /uploads/2026",
    "file /uploads/2026/notes.txt",
    "file /uploads/2026/photo.txt",
  ]);
});

Deno.test("story: reconciles without a new sync ask Backrest for nothing; the next sync is indexed once", async () => {
  const s = await story();
  await waitUntil("the first sync's stats run listed", async () => await statsRuns(s) >= 1, {
    timeoutMs: 60_000,
  });
  assert.equal(triggers(s), 1);

  // Wake the Binding's reconciler without a sync, one change at a time (a key queued twice runs once): its
  // own metadata, the source's metadata, and a status write by VolSync that leaves lastSyncTime alone (as
  // its periodic condition updates do).
  const merge = { "content-type": "application/merge-patch+json" };
  const rsPath =
    `/apis/volsync.backube/v1alpha1/namespaces/${s.namespace}/replicationsources/${s.sourceName}`;
  const bindingPath = `${BINDINGS}/namespaces/${s.namespace}/backrestvolsyncbindings/${s.bindingName}`;
  const changes: [string, unknown][] = [
    [bindingPath, { metadata: { annotations: { "example.com/touched": "1" } } }],
    [rsPath, { metadata: { labels: { "example.com/touched": "1" } } }],
    [`${rsPath}/status`, {
      status: {
        conditions: [{
          type: "Synchronizing",
          status: "False",
          reason: "WaitingForSchedule",
          message: "Waiting for next scheduled synchronization (again)",
          lastTransitionTime: s.sync.lastSyncTime,
        }],
      },
    }],
  ];
  for (const [path, patch] of changes) {
    const before = await bindingReconciles(s);
    await s.cp.json("PATCH", path, patch, merge);
    await waitUntil(`a Binding reconcile after ${path}`, async () => await bindingReconciles(s) > before, {
      timeoutMs: 30_000,
    });
  }
  assert.equal(triggers(s), 1, "no new sync, no new request");

  await Deno.writeTextFile(`${s.pvc}/uploads/2026/later.txt`, "written after the first sync\n");
  const second = await volsyncSync(s.cp, s.namespace, s.sourceName, s.pvc);
  assert.notEqual(second.lastSyncTime, s.sync.lastSyncTime);
  await waitForIndexedSnapshot(s.backrest, s.repoId, second.snapshotId);
  await waitUntil("the second sync's stats run listed", async () => await statsRuns(s) >= 2, {
    timeoutMs: 60_000,
  });

  assert.equal(triggers(s), 2, "one request per completed sync");
  assert.equal(await statsRuns(s), 2, "Backrest ran the tasks once per sync");
  const ids = (await indexedSnapshots(s.backrest, s.repoId)).map((x) =>
    x.id.slice(0, second.snapshotId.length)
  );
  assert.deepEqual(ids.sort(), [s.sync.snapshotId, second.snapshotId].sort());
});

Deno.test("story: the operator serves the metrics the chart's alerts and dashboard use, with the story's series", async () => {
  const s = await story();
  const text = await (await fetch(`${s.operator.metricsUrl}/metrics`)).text();
  const served = exposedFamilies(text);
  assert.match(
    text,
    new RegExp(
      `^backrest_volsync_binding_ready\\{binding_namespace="${s.namespace}",binding="[^"]+",reason="Applied"\\} 1$`,
      "m",
    ),
  );
  assert.match(
    text,
    /^backrest_volsync_backrest_requests_total\{backrest="http:[^"]+",method="AddRepo",code="ok"\} [1-9]/m,
  );
  const used = await chartMetricNames();
  assert.ok(
    used.includes("controller_runtime_reconcile_errors_total") &&
      used.includes("leader_election_master_status"),
  );
  assert.deepEqual(
    used.filter((name) => !served.includes(name)),
    [...PROPOSED_METRICS].sort(),
    "a metric the chart uses is missing, or a proposed one arrived: update PROPOSED_METRICS in tests/harness/monitoring.ts",
  );
});
