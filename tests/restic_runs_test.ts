/**
 * What Backrest pays per change, counted on the real Backrest: every restic run it makes goes through a
 * wrapper that records its arguments. Counts, not times: a change costs one restic run when the repository
 * is known to exist (AddRepo), two when it must be asked first (CheckRepoExists, then AddRepo), and an
 * unchanged resync none.
 */
import assert from "node:assert/strict";
import { stretchedHasher } from "../lib/backrest/mod.ts";
import { type BackrestInstance, backrestRepo, createResticRepo, startBackrest } from "./harness/backrest.ts";
import {
  binding,
  BINDINGS,
  cluster,
  create,
  replaceSecret,
  replicationSource,
  secret,
  startOperator,
  waitForReason,
} from "./harness/operator.ts";
import { peer } from "./harness/peers.ts";
import { tempDir, waitUntil } from "./harness/process.ts";

/**
 * The runs that open a repository: `cat config` (CheckRepoExists, and AddRepo before it would initialize)
 * and `init`. After each AddRepo Backrest also indexes the repository's snapshots on its own schedule; that
 * run is Backrest's, the same whoever calls AddRepo, and is not counted here.
 */
function opens(runs: string[]): string[] {
  return runs.flatMap((r) => r.match(/^(cat config|init)\b/)?.[1] ?? []);
}

/** A function that returns the runs of `backrest` that opened a repository since it was last called. */
function opensSince(backrest: BackrestInstance): () => Promise<string[]> {
  let seen = 0;
  return async () => {
    const all = await backrest.resticRuns();
    const fresh = all.slice(seen);
    seen = all.length;
    return opens(fresh);
  };
}

/** Adds `next` as a key of the repository (as an admin rotating VolSync's password would), keeping `old`. */
async function addKey(uri: string, old: string, next: string): Promise<void> {
  const restic = await peer("restic");
  const dir = await tempDir("restic-key");
  await Deno.writeTextFile(`${dir}/new`, next);
  const out = await new Deno.Command(restic.path, {
    args: ["key", "add", "--repo", uri, "--new-password-file", `${dir}/new`],
    env: { RESTIC_PASSWORD: old, XDG_CACHE_HOME: `${dir}/cache` },
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(`restic key add failed: ${new TextDecoder().decode(out.stderr)}`);
}

Deno.test("restic runs: one per change when the repository is known to exist, two when it must be asked, none when idle", async () => {
  const cp = await cluster();
  const configNs = await cp.namespace("cfg");
  const ns = await cp.namespace("runs");
  const [backrest, op] = await Promise.all([
    startBackrest({ recordResticRuns: true }),
    // Only its namespace: the operator of another test here must not be the one applying.
    startOperator({ configNamespace: configNs, backrestTimeoutMs: 30_000, namespaces: [ns] }),
  ]);
  const newOpens = opensSince(backrest);
  const appliedAgain = async (name: string, after: string | undefined) =>
    await waitUntil(`${name} applied again`, async () => {
      const b = await cp.json("GET", `${BINDINGS}/namespaces/${ns}/backrestvolsyncbindings/${name}`) as {
        status?: { lastAppliedInputHash?: string; conditions?: { type: string; reason: string }[] };
      };
      const ready = b.status?.conditions?.find((c) => c.type === "Ready");
      return ready?.reason === "Applied" && b.status?.lastAppliedInputHash !== after;
    }, { timeoutMs: 30_000 });
  const hashOf = async (name: string) =>
    ((await cp.json("GET", `${BINDINGS}/namespaces/${ns}/backrestvolsyncbindings/${name}`)) as {
      status?: { lastAppliedInputHash?: string };
    }).status?.lastAppliedInputHash;

  // A VolSync object that has synced: its repository exists, AddRepo is the only run.
  const synced = await createResticRepo();
  await create(ns, secret("synced", { RESTIC_REPOSITORY: synced.uri, RESTIC_PASSWORD: synced.password }));
  await create(ns, replicationSource("synced", "synced"));
  await cp.json("PATCH", `/apis/volsync.backube/v1alpha1/namespaces/${ns}/replicationsources/synced/status`, {
    status: { lastSyncTime: "2026-11-25T10:00:00Z" },
  }, { "content-type": "application/merge-patch+json" });
  await new Promise((r) => setTimeout(r, 500)); // the status reaches the cache before the Binding exists
  await newOpens();
  await create(ns, binding("synced", { url: backrest.url, source: "synced" }));
  await waitForReason(cp, ns, "synced", "Applied");
  assert.deepEqual(await newOpens(), ["cat config"], "synced: AddRepo only");

  // One that has not synced yet: asked first (CheckRepoExists), then AddRepo.
  const fresh = await createResticRepo();
  await create(ns, secret("fresh", { RESTIC_REPOSITORY: fresh.uri, RESTIC_PASSWORD: fresh.password }));
  await create(ns, replicationSource("fresh", "fresh"));
  await new Promise((r) => setTimeout(r, 500));
  await newOpens();
  await create(ns, binding("fresh", { url: backrest.url, source: "fresh" }));
  await waitForReason(cp, ns, "fresh", "Applied");
  assert.deepEqual(
    await newOpens(),
    ["cat config", "cat config"],
    "not synced: CheckRepoExists, then AddRepo",
  );

  // A rotated password at a location this Binding applied before: AddRepo only.
  const before = await hashOf("fresh");
  await addKey(fresh.uri, fresh.password, "rotated-password");
  await replaceSecret(ns, "fresh", { RESTIC_REPOSITORY: fresh.uri, RESTIC_PASSWORD: "rotated-password" });
  await appliedAgain("fresh", before);
  assert.deepEqual(await newOpens(), ["cat config"], "rotated: AddRepo only");
  assert.equal(
    (await backrestRepo(backrest, `volsync-${ns}-replicationsource-fresh`))?.password,
    "rotated-password",
  );

  // An unchanged resync: the Secret is touched (a label), the Binding reconciled, nothing runs.
  const gets = op.calls.length;
  await cp.json("PUT", `/api/v1/namespaces/${ns}/secrets/fresh`, {
    ...secret("fresh", { RESTIC_REPOSITORY: fresh.uri, RESTIC_PASSWORD: "rotated-password" }),
    metadata: { name: "fresh", labels: { touched: "yes" } },
  });
  await waitUntil(
    "the Binding re-read its Secret",
    () => Promise.resolve(op.calls.slice(gets).some((c) => c.verb === "get" && c.args[1] === "fresh")),
    { timeoutMs: 30_000 },
  );
  await new Promise((r) => setTimeout(r, 1000)); // whatever that reconcile would call, it has called by now
  assert.deepEqual(await newOpens(), [], "idle: no restic run");
});

Deno.test("restic runs: an upgrade over the stretched hashes of builds before keys runs nothing; a lost key costs one apply each", async () => {
  const cp = await cluster();
  const configNs = await cp.namespace("cfg");
  const ns = await cp.namespace("upgrade");
  const backrest = await startBackrest({ recordResticRuns: true });
  const nextOpens = opensSince(backrest);
  const newOpens = async () => (await nextOpens()).sort();
  type Status = { lastAppliedInputHash?: string; appliedRepositoryHash?: string };
  const statusOf = async (name: string) =>
    ((await cp.json("GET", `${BINDINGS}/namespaces/${ns}/backrestvolsyncbindings/${name}`)) as {
      status?: Status;
    }).status ?? {};
  const repos = { synced: await createResticRepo(), fresh: await createResticRepo() };
  for (const [name, repo] of Object.entries(repos)) {
    await create(ns, secret(name, { RESTIC_REPOSITORY: repo.uri, RESTIC_PASSWORD: repo.password }));
    await create(ns, replicationSource(name, name));
  }
  await cp.json("PATCH", `/apis/volsync.backube/v1alpha1/namespaces/${ns}/replicationsources/synced/status`, {
    status: { lastSyncTime: "2026-11-25T10:00:00Z" },
  }, { "content-type": "application/merge-patch+json" });

  // A build before keys applies both and writes its stretched hashes.
  let op = await startOperator({
    configNamespace: configNs,
    backrestTimeoutMs: 30_000,
    namespaces: [ns],
    statusHasher: stretchedHasher(),
  });
  for (const name of Object.keys(repos)) await create(ns, binding(name, { url: backrest.url, source: name }));
  for (const name of Object.keys(repos)) await waitForReason(cp, ns, name, "Applied");
  const stretched = { synced: await statusOf("synced"), fresh: await statusOf("fresh") };
  assert.match(stretched.synced.lastAppliedInputHash ?? "", /^[0-9a-f]{64}$/);
  assert.match(stretched.fresh.appliedRepositoryHash ?? "", /^[0-9a-f]{64}$/);
  await op.stop();
  await newOpens();

  // This one starts over them: it makes its key, recognises every stretched hash, and rewrites the
  // input hashes in its keyed form without a single restic run.
  op = await startOperator({ configNamespace: configNs, backrestTimeoutMs: 30_000, namespaces: [ns] });
  const keyed = /^hmac:[0-9a-f]{64}$/;
  await waitUntil("both input hashes rewritten keyed", async () => {
    const [a, b] = [await statusOf("synced"), await statusOf("fresh")];
    return keyed.test(a.lastAppliedInputHash ?? "") && keyed.test(b.lastAppliedInputHash ?? "");
  }, { timeoutMs: 30_000 });
  await new Promise((r) => setTimeout(r, 1000)); // whatever those reconciles would call, they have by now
  assert.deepEqual(await newOpens(), [], "upgrade: no restic run");
  const key = await cp.json(
    "GET",
    `/api/v1/namespaces/${configNs}/secrets/backrest-volsync-operator-hash-key`,
  ) as {
    data?: { key?: string };
  };
  assert.equal(atob(key.data?.key ?? "").length, 32);
  assert.ok(op.logs.some((l) => l.includes("Made the status hash key")));
  assert.ok(!op.logs.some((l) => l.includes(key.data!.key!)), "the key is never logged");
  // The location hash an earlier build recorded still spares CheckRepoExists on a rotation.
  const rotatedFrom = (await statusOf("fresh")).lastAppliedInputHash;
  await addKey(repos.fresh.uri, repos.fresh.password, "rotated-password");
  await replaceSecret(ns, "fresh", {
    RESTIC_REPOSITORY: repos.fresh.uri,
    RESTIC_PASSWORD: "rotated-password",
  });
  await waitUntil("fresh applied again", async () => {
    const s = await statusOf("fresh");
    return keyed.test(s.lastAppliedInputHash ?? "") && s.lastAppliedInputHash !== rotatedFrom;
  }, { timeoutMs: 30_000 });
  assert.deepEqual(await newOpens(), ["cat config"], "rotated after the upgrade: AddRepo only");
  await op.stop();

  // A restart reads the same key: nothing to do.
  const before = { synced: await statusOf("synced"), fresh: await statusOf("fresh") };
  op = await startOperator({ configNamespace: configNs, backrestTimeoutMs: 30_000, namespaces: [ns] });
  await waitUntil("both reconciled after the restart", () =>
    Promise.resolve(
      ["synced", "fresh"].every((name) => op.calls.some((c) => c.verb === "get" && c.args[1] === name)),
    ), { timeoutMs: 30_000 });
  await new Promise((r) => setTimeout(r, 1000));
  assert.deepEqual(await newOpens(), [], "restart: no restic run");
  assert.deepEqual({ synced: await statusOf("synced"), fresh: await statusOf("fresh") }, before);
  await op.stop();

  // A deleted key: the next start makes a new one, and each Binding is applied once more (the one that
  // has not synced is asked first: its recorded location can no longer be recognised).
  await cp.json("DELETE", `/api/v1/namespaces/${configNs}/secrets/backrest-volsync-operator-hash-key`);
  op = await startOperator({ configNamespace: configNs, backrestTimeoutMs: 30_000, namespaces: [ns] });
  try {
    await waitUntil("both applied under the new key", async () => {
      const [a, b] = [await statusOf("synced"), await statusOf("fresh")];
      return a.lastAppliedInputHash !== before.synced.lastAppliedInputHash &&
        b.lastAppliedInputHash !== before.fresh.lastAppliedInputHash &&
        keyed.test(a.lastAppliedInputHash ?? "") && keyed.test(b.lastAppliedInputHash ?? "");
    }, { timeoutMs: 30_000 });
    await new Promise((r) => setTimeout(r, 1000));
    assert.deepEqual(
      await newOpens(),
      ["cat config", "cat config", "cat config"],
      "lost key: one apply each",
    );
  } finally {
    await op.stop();
    await backrest.stop();
  }
});
