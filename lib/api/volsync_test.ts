import assert from "node:assert/strict";
import { VOLSYNC_GROUP, VOLSYNC_KIND_INFO, VOLSYNC_KINDS } from "./constants.ts";
import { completedSyncMarker, hasCustomCA, parseVolSyncObject, repositorySecretName } from "./volsync.ts";

const RS = {
  apiVersion: "volsync.backube/v1alpha1",
  kind: "ReplicationSource",
  metadata: { name: "my-app-data", namespace: "backups", uid: "uid-1", generation: 1 },
  spec: {
    sourcePVC: "data",
    trigger: { schedule: "0 * * * *" },
    restic: {
      repository: "restic-secret",
      copyMethod: "Snapshot",
      customCA: { secretName: "ca", key: "ca.crt" },
    },
  },
  status: {
    lastSyncTime: "2024-05-01T10:00:00Z",
    lastManualSync: "once",
    latestMoverStatus: { result: "Successful", logs: "done" },
    conditions: [{ type: "Synchronizing", status: "False" }],
  },
};

Deno.test("parseVolSyncObject() reads uid, the restic repository Secret, customCA and status", () => {
  const r = parseVolSyncObject(RS, "ReplicationSource");
  assert.ok(r.ok);
  assert.equal(r.value.metadata.uid, "uid-1");
  assert.equal(repositorySecretName(r.value), "restic-secret");
  assert.equal(hasCustomCA(r.value), true);
  assert.equal(r.value.status.lastManualSync, "once");
  assert.deepEqual(r.value.status.latestMoverStatus, { result: "Successful", logs: "done" });
});

Deno.test("parseVolSyncObject() reports other movers as restic undefined", () => {
  const r = parseVolSyncObject({ ...RS, spec: { rclone: { rcloneConfig: "x" } } }, "ReplicationSource");
  assert.ok(r.ok);
  assert.equal(r.value.restic, undefined);
  assert.equal(repositorySecretName(r.value), undefined);
  assert.equal(hasCustomCA(r.value), false);
});

Deno.test("parseVolSyncObject() treats an empty repository and an empty customCA as unset", () => {
  const r = parseVolSyncObject(
    { ...RS, spec: { restic: { repository: "", customCA: { key: "k" } } } },
    "ReplicationSource",
  );
  assert.ok(r.ok);
  assert.notEqual(r.value.restic, undefined);
  assert.equal(repositorySecretName(r.value), undefined);
  assert.equal(hasCustomCA(r.value), false);
});

Deno.test("parseVolSyncObject() accepts list items without kind and refuses a contradicting kind", () => {
  const { kind: _kind, ...item } = RS;
  assert.ok(parseVolSyncObject(item, "ReplicationSource").ok);
  assert.equal(parseVolSyncObject(RS, "ReplicationDestination").ok, false);
  assert.equal(parseVolSyncObject({ metadata: {} }, "ReplicationSource").ok, false);
});

Deno.test("parseVolSyncObject() reads a ReplicationDestination's latestImage", () => {
  const r = parseVolSyncObject({
    kind: "ReplicationDestination",
    metadata: { name: "restore" },
    spec: { restic: { repository: "s" } },
    status: { latestImage: { apiGroup: "snapshot.storage.k8s.io", kind: "VolumeSnapshot", name: "snap-1" } },
  }, "ReplicationDestination");
  assert.ok(r.ok);
  assert.equal(r.value.status.latestImageName, "snap-1");
});

Deno.test("completedSyncMarker() follows lastSyncTime, not the sticky lastManualSync", () => {
  const r = parseVolSyncObject(RS, "ReplicationSource");
  assert.ok(r.ok);
  assert.deepEqual(completedSyncMarker(r.value), {
    marker: "lastSyncTime=2024-05-01T10:00:00Z",
    syncTime: "2024-05-01T10:00:00Z",
  });
  const fresh = parseVolSyncObject({ ...RS, status: {} }, "ReplicationSource");
  assert.ok(fresh.ok);
  assert.equal(completedSyncMarker(fresh.value), undefined);
});

Deno.test("VOLSYNC_KIND_INFO: every kind has its entry, naming its own resource and a distinct generated prefix", () => {
  const prefixes = new Set<string>();
  for (const kind of VOLSYNC_KINDS) {
    const info = VOLSYNC_KIND_INFO[kind];
    assert.equal(info.resource.kind, kind);
    assert.equal(info.resource.group, VOLSYNC_GROUP);
    prefixes.add(info.generatedPrefix);
  }
  assert.equal(prefixes.size, VOLSYNC_KINDS.length);
  assert.deepEqual(Object.keys(VOLSYNC_KIND_INFO).sort(), [...VOLSYNC_KINDS].sort());
});
