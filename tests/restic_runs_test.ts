/**
 * What Backrest pays per change, counted on the real Backrest: every restic run it makes goes through a
 * wrapper that records its arguments. Counts, not times: a change costs one restic run when the repository
 * is known to exist (AddRepo), two when it must be asked first (CheckRepoExists, then AddRepo), and an
 * unchanged resync none.
 */
import assert from "node:assert/strict";
import { createResticRepo, startBackrest } from "./harness/backrest.ts";
import {
  binding,
  BINDINGS,
  cluster,
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
    startOperator({ configNamespace: configNs, backrestTimeoutMs: 30_000 }),
  ]);
  const apply = async (obj: Record<string, unknown>) => await cp.apply(JSON.stringify(obj), ns);
  const putSecret = async (name: string, obj: Record<string, unknown>) =>
    await cp.json("PUT", `/api/v1/namespaces/${ns}/secrets/${name}`, obj);
  let seen = 0;
  const newOpens = async () => {
    const all = await backrest.resticRuns();
    const fresh = all.slice(seen);
    seen = all.length;
    return opens(fresh);
  };
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
  await apply(secret("synced", { RESTIC_REPOSITORY: synced.uri, RESTIC_PASSWORD: synced.password }));
  await apply(replicationSource("synced", "synced"));
  await cp.json("PATCH", `/apis/volsync.backube/v1alpha1/namespaces/${ns}/replicationsources/synced/status`, {
    status: { lastSyncTime: "2026-11-25T10:00:00Z" },
  }, { "content-type": "application/merge-patch+json" });
  await new Promise((r) => setTimeout(r, 500)); // the status reaches the cache before the Binding exists
  await newOpens();
  await apply(binding("synced", { url: backrest.url, source: "synced" }));
  await waitForReason(cp, ns, "synced", "Applied");
  assert.deepEqual(await newOpens(), ["cat config"], "synced: AddRepo only");

  // One that has not synced yet: asked first (CheckRepoExists), then AddRepo.
  const fresh = await createResticRepo();
  await apply(secret("fresh", { RESTIC_REPOSITORY: fresh.uri, RESTIC_PASSWORD: fresh.password }));
  await apply(replicationSource("fresh", "fresh"));
  await new Promise((r) => setTimeout(r, 500));
  await newOpens();
  await apply(binding("fresh", { url: backrest.url, source: "fresh" }));
  await waitForReason(cp, ns, "fresh", "Applied");
  assert.deepEqual(
    await newOpens(),
    ["cat config", "cat config"],
    "not synced: CheckRepoExists, then AddRepo",
  );

  // A rotated password at a location this Binding applied before: AddRepo only.
  const before = await hashOf("fresh");
  await addKey(fresh.uri, fresh.password, "rotated-password");
  await putSecret(
    "fresh",
    secret("fresh", { RESTIC_REPOSITORY: fresh.uri, RESTIC_PASSWORD: "rotated-password" }),
  );
  await appliedAgain("fresh", before);
  assert.deepEqual(await newOpens(), ["cat config"], "rotated: AddRepo only");
  const inBackrest = (await backrest.getConfig()).repos.find((r) =>
    r.id === `volsync-${ns}-replicationsource-fresh`
  );
  assert.equal(inBackrest?.password, "rotated-password");

  // An unchanged resync: the Secret is touched (a label), the Binding reconciled, nothing runs.
  const gets = op.calls.length;
  await putSecret("fresh", {
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
