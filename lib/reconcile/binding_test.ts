/**
 * Unit tests of the Binding reconciler's own logic with fakes (the store-backed KubeClient stand-in of
 * _fakes.ts and its Backrest stand-in). The behaviour against the real apiserver and Backrest is in
 * tests/binding_test.ts; these pin what must hold call by call: idle reconciles cost nothing.
 */
import assert from "node:assert/strict";
import { BackrestError, keyedHasher, type StatusHasher } from "../backrest/mod.ts";
import { isRecord, KubeError, type KubeObject, secrets } from "../kube/mod.ts";
import { nullLogger } from "../observe/mod.ts";
import { MemoryStore } from "../runtime/mod.ts";
import { fakeKube } from "../testing/fake_apiserver.ts";
import { eventLog, fakeBackrest, reconcileContext } from "./_fakes.ts";
import { bindingReconciler, type DriftState } from "./binding.ts";
import { RetryableError } from "./pipeline.ts";
import type { Claim, ClaimLedger } from "./claims.ts";
import { HashKeyError } from "./hash_key.ts";
import { bindingIndexers, volsyncIndexers } from "./indexes.ts";
import { ConfigGate, ConfigUnknownError } from "./config_gate.ts";
import { bindingType } from "./resources.ts";
import { SettingsHolder } from "./settings.ts";

const te = new TextEncoder();
const b64 = (s: string) => btoa(String.fromCharCode(...te.encode(s)));

function fixture(
  opts: { invalidConfig?: boolean; refusing?: boolean; hasher?: StatusHasher; gated?: boolean } = {},
) {
  const bindings = new MemoryStore<KubeObject>(bindingIndexers);
  const sources = new MemoryStore<KubeObject>(volsyncIndexers("ReplicationSource"));
  const destinations = new MemoryStore<KubeObject>(volsyncIndexers("ReplicationDestination"));
  const secretStore = new MemoryStore<KubeObject>();
  // The reconciler reads Secrets and patches Binding status; the stand-in answers from these stores.
  const fake = fakeKube({ [bindingType.resource]: bindings, [secrets.resource]: secretStore });
  const kube = fake.client;
  const backrest = fakeBackrest();
  const calls = backrest.calls;
  const drift: DriftState = { isMissing: () => false, markPresent: () => {} };
  // A stand-in for the Lease ledger (claims.ts): same answers, a Map instead of the apiserver.
  const held = new Map<string, Claim>();
  const claims: ClaimLedger = {
    get: (id) => held.get(id),
    heldBy: (key) => [...held.values()].filter((c) => c.holder.key === key),
    acquire: (id, holder, url) => {
      const c = held.get(id);
      if (c && c.holder.key !== holder.key) return Promise.resolve({ ok: false, holder: c.holder });
      const claim = { id, holder, url, lease: { name: id, resourceVersion: undefined } };
      held.set(id, claim);
      return Promise.resolve({ ok: true, claim });
    },
    release: (claim) => (held.delete(claim.id), Promise.resolve()),
  };
  const inBackrest = new Set<string>();
  const log = eventLog();
  const settings = new SettingsHolder("ops", "backrest-volsync-operator");
  // No OperatorConfig: the defaults; or one invalid since the operator started.
  if (opts.invalidConfig) settings.invalid("spec.resyncPeriod: must be a duration");
  else settings.set(undefined);
  // A gate whose caches are all current: it refuses only decisions made on settings no longer in force.
  const gate = new ConfigGate({ caches: [], settings: () => settings.current, logger: nullLogger() });
  const reconcile = bindingReconciler({
    ...(opts.hasher ? { hasher: opts.hasher } : {}),
    ...(opts.gated ? { gate } : {}),
    kube,
    bindings,
    volsync: { ReplicationSource: sources, ReplicationDestination: destinations },
    settings: () => settings.current,
    backrest: backrest.connect,
    events: log.sink,
    drift,
    claims,
    ...(opts.refusing ? { backrestRefusing: () => true } : {}),
    listings: {
      ids: () => (calls.push("listRepoIds"), Promise.resolve(inBackrest)),
      remember: () => {},
    },
    now: () => new Date("2026-11-25T12:00:00Z"),
  });
  const ctx = reconcileContext();
  const addSecret = (ns: string, name: string, data: Record<string, string>) =>
    secretStore.upsert({
      metadata: { namespace: ns, name, resourceVersion: fake.nextResourceVersion() },
      data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, b64(v)])),
    });
  const addBinding = (ns: string, name: string, created: string, spec: Record<string, unknown>) =>
    bindings.upsert({
      apiVersion: "backrest.garethgeorge.com/v1alpha1",
      kind: "BackrestVolSyncBinding",
      metadata: {
        namespace: ns,
        name,
        uid: `uid-${ns}-${name}`,
        generation: 1,
        resourceVersion: fake.nextResourceVersion(),
        creationTimestamp: created,
      },
      spec,
    });
  const addSource = (ns: string, name: string, secret: string, lastSyncTime?: string) =>
    sources.upsert({
      apiVersion: "volsync.backube/v1alpha1",
      kind: "ReplicationSource",
      metadata: { namespace: ns, name, uid: `uid-${name}`, resourceVersion: fake.nextResourceVersion() },
      spec: { restic: { repository: secret } },
      ...(lastSyncTime ? { status: { lastSyncTime } } : {}),
    });
  return {
    reconcile,
    ctx,
    calls,
    applied: backrest.applied,
    get writes() {
      return fake.writes();
    },
    events: log.reasons,
    addSecret,
    addBinding,
    addSource,
    bindings,
    settings,
    held,
    inBackrest,
    secretReads: () => fake.calls.filter((c) => c.verb === "get").length,
    failSecretReads: (e: Error) => fake.fail("get", e),
    holdSecretReads: () => fake.hold("get"),
    failAddRepo: (e: Error) => backrest.failAddRepo(e),
  };
}

const spec = (source: string, repo: Record<string, unknown> = {}) => ({
  backrest: { url: "http://backrest:9898" },
  source: { kind: "ReplicationSource", name: source },
  repo,
});

/** A fixture holding Binding app/b for ReplicationSource app/data, whose Secret `restic` has password `pw`. */
function oneBinding(opts: Parameters<typeof fixture>[0] = {}) {
  const f = fixture(opts);
  f.addSecret("app", "restic", { RESTIC_REPOSITORY: "rest:http://r/x", RESTIC_PASSWORD: "pw" });
  f.addSource("app", "data", "restic");
  f.addBinding("app", "b", "2026-01-01T00:00:00Z", spec("data"));
  return f;
}

Deno.test("reconcile() applies once; an idle reconcile makes no Backrest call and no write", async () => {
  const f = oneBinding();
  await f.reconcile("app/b", f.ctx);
  assert.deepEqual(f.calls, ["checkRepoExists", "addRepo"]);
  assert.equal(f.writes.length, 1);
  assert.equal(f.applied[0]!.id, "volsync-app-replicationsource-data");
  assert.deepEqual(f.events, ["Applied"]);
  for (let i = 0; i < 3; i++) await f.reconcile("app/b", f.ctx);
  assert.deepEqual(f.calls, ["checkRepoExists", "addRepo"], "no Backrest call while nothing changed");
  assert.equal(f.writes.length, 1, "no status write while nothing changed");
  assert.deepEqual(f.events, ["Applied"], "no Event while nothing changed");
});

Deno.test("reconcile() sends nothing and writes nothing once the settings it read are replaced under it", async () => {
  const f = oneBinding({ gated: true });
  // The settings change while the reconcile reads its Secret: a tighter policy, say.
  const release = f.holdSecretReads();
  const running = f.reconcile("app/b", f.ctx);
  await new Promise((r) => setTimeout(r, 0)); // every step up to the held Secret read has run
  f.settings.set({
    ...f.settings.current.spec,
    repositoryPolicy: { ...f.settings.current.spec.repositoryPolicy, allowAdoption: true },
  });
  release();
  await assert.rejects(running, ConfigUnknownError);
  assert.deepEqual(f.calls, [], "no Backrest call on settings no longer in force");
  assert.equal(f.writes.length, 0, "no status write: the controller holds the key (config_gate.ts)");
  await f.reconcile("app/b", f.ctx);
  assert.deepEqual(f.calls, ["checkRepoExists", "addRepo"], "the next reconcile reads the new settings");
});

Deno.test("reconcile() re-applies when the Secret rotates, and only then", async () => {
  const f = oneBinding();
  await f.reconcile("app/b", f.ctx);
  f.addSecret("app", "restic", { RESTIC_REPOSITORY: "rest:http://r/x", RESTIC_PASSWORD: "pw2" });
  await f.reconcile("app/b", f.ctx);
  assert.equal(f.calls.filter((c) => c === "addRepo").length, 2);
  assert.equal(f.applied[1]!.password.reveal(), "pw2");
  await f.reconcile("app/b", f.ctx);
  assert.equal(f.calls.filter((c) => c === "addRepo").length, 2);
});

Deno.test("reconcile() gives a repo id to the Binding that claims it first; later ones, however old, get RepoIdConflict", async () => {
  const f = fixture();
  f.addSecret("a", "restic", { RESTIC_REPOSITORY: "rest:http://r/a", RESTIC_PASSWORD: "pw" });
  f.addSecret("b", "restic", { RESTIC_REPOSITORY: "rest:http://r/b", RESTIC_PASSWORD: "pw" });
  f.addSource("a", "data", "restic");
  f.addSource("b", "data", "restic");
  f.addBinding("b", "young", "2026-02-01T00:00:00Z", spec("data", { idOverride: "shared" }));
  f.addBinding("a", "old", "2026-01-01T00:00:00Z", spec("data", { idOverride: "shared" }));
  await f.reconcile("b/young", f.ctx);
  await f.reconcile("a/old", f.ctx);
  assert.equal(f.applied.length, 1);
  assert.equal(f.applied[0]!.uri.reveal(), "rest:http://r/b");
  assert.deepEqual(f.events, ["Applied", "RepoIdConflict"]);
  assert.equal(f.held.get("shared")?.holder.key, "b/young");
});

Deno.test("reconcile() leaves an id that Backrest holds and no Binding applied, unless adoption is allowed", async () => {
  const f = fixture();
  f.addSecret("a", "restic", { RESTIC_REPOSITORY: "rest:http://r/a", RESTIC_PASSWORD: "pw" });
  f.addSource("a", "data", "restic");
  f.inBackrest.add("made-in-the-ui");
  f.addBinding("a", "b", "2026-01-01T00:00:00Z", spec("data", { idOverride: "made-in-the-ui", adopt: true }));
  await f.reconcile("a/b", f.ctx);
  assert.deepEqual(f.calls, ["listRepoIds"]);
  assert.deepEqual(f.events, ["RepoExistsInBackrest"]);
  f.settings.set({
    ...f.settings.current.spec,
    repositoryPolicy: { ...f.settings.current.spec.repositoryPolicy, allowAdoption: true },
  });
  await f.reconcile("a/b", f.ctx);
  assert.deepEqual(f.calls, ["listRepoIds", "checkRepoExists", "addRepo"]);
  assert.deepEqual(f.events, ["RepoExistsInBackrest", "Applied"]);
});

Deno.test("reconcile() refuses an idOverride shaped like another namespace's default id", async () => {
  const f = fixture();
  f.addSecret("a", "restic", { RESTIC_REPOSITORY: "rest:http://r/a", RESTIC_PASSWORD: "pw" });
  f.addSource("a", "data", "restic");
  f.addBinding(
    "a",
    "b",
    "2026-01-01T00:00:00Z",
    spec("data", { idOverride: "volsync-victim-replicationsource-db" }),
  );
  await f.reconcile("a/b", f.ctx);
  assert.deepEqual(f.calls, []);
  assert.deepEqual(f.events, ["InvalidSpec"]);
  assert.equal(f.held.size, 0, "nothing claimed");
});

Deno.test("reconcile() halts everything while the OperatorConfig has been invalid since start", async () => {
  const f = oneBinding({ invalidConfig: true });
  await f.reconcile("app/b", f.ctx);
  assert.deepEqual(f.calls, []);
  assert.deepEqual(f.events, ["OperatorConfigInvalid"]);
  assert.match(JSON.stringify(f.bindings.get("app/b")?.status), /ops\/backrest-volsync-operator is invalid/);
  // Valid once, a later invalid edit keeps the last valid settings.
  f.settings.set(undefined);
  f.settings.invalid("again");
  assert.equal(f.settings.current.halted, undefined);
  await f.reconcile("app/b", f.ctx);
  assert.deepEqual(f.calls, ["checkRepoExists", "addRepo"]);
  assert.match(new SettingsHolder("ops", "cfg").current.halted ?? "", /not been read yet/);
});

Deno.test("reconcile() while paused makes no Backrest call", async () => {
  const f = oneBinding();
  f.settings.set({ ...f.settings.current.spec, paused: true });
  await f.reconcile("app/b", f.ctx);
  assert.deepEqual(f.calls, []);
  assert.deepEqual(f.events, ["Paused"]);
});

Deno.test("reconcile() reports a Secret it may not read, and retries", async () => {
  const f = fixture();
  f.addSource("app", "data", "restic");
  f.addBinding("app", "b", "2026-01-01T00:00:00Z", spec("data"));
  f.failSecretReads(new KubeError(403, "Forbidden", 'secrets "restic" is forbidden'));
  await assert.rejects(f.reconcile("app/b", f.ctx), RetryableError);
  assert.deepEqual(f.calls, []);
  assert.deepEqual(f.events, ["SecretUnreadable"]);
  const status = f.bindings.get("app/b")?.status;
  assert.match(JSON.stringify(status), /cannot read Secret app\/restic: 403 Forbidden/);
});

Deno.test("reconcile() without the status hash key says so on the Binding, calls no Backrest, and retries", async () => {
  const why =
    "cannot create the status hash key Secret ops/backrest-volsync-operator-hash-key: 403 Forbidden";
  const f = oneBinding({ hasher: keyedHasher(() => Promise.reject(new HashKeyError(why))) });
  await assert.rejects(f.reconcile("app/b", f.ctx), RetryableError);
  assert.deepEqual(f.calls, []);
  assert.deepEqual(f.events, ["SecretUnreadable"]);
  assert.match(
    JSON.stringify(f.bindings.get("app/b")?.status),
    /"reason":"SecretUnreadable","message":"cannot create the status hash key Secret ops\/backrest-volsync-operator-hash-key: 403 Forbidden"/,
  );
});

Deno.test("reconcile() for a Backrest that stopped answering reads nothing, claims nothing, and retries", async () => {
  const f = oneBinding({ refusing: true });
  await assert.rejects(f.reconcile("app/b", f.ctx), RetryableError);
  await assert.rejects(f.reconcile("app/b", f.ctx), RetryableError);
  assert.deepEqual(f.calls, [], "no Backrest call");
  assert.equal(f.secretReads(), 0, "no Secret read");
  assert.equal(f.held.size, 0, "no claim taken");
  assert.deepEqual(f.events, ["BackrestUnreachable"], "one Event, on the transition");
  assert.equal(f.writes.length, 1, "the second retry writes nothing: the status says the same");
});

Deno.test("reconcile() takes a failed AddRepo as failed, whatever Backrest's text says (a tenant can write that text)", async () => {
  const f = fixture();
  // The repository URI is the tenant's, and Backrest echoes it in its error text.
  const uri = "rest:http://r/x/repository-already-initialized";
  f.addSecret("app", "restic", { RESTIC_REPOSITORY: uri, RESTIC_PASSWORD: "pw" });
  f.addSource("app", "data", "restic");
  f.addBinding("app", "b", "2026-01-01T00:00:00Z", spec("data"));
  f.failAddRepo(
    new BackrestError("failed", "AddRepo", `restic init ${uri}: repository already initialized`, {
      code: "unknown",
      fromServer: true,
    }),
  );
  await assert.rejects(f.reconcile("app/b", f.ctx), RetryableError);
  assert.deepEqual(f.events, ["BackrestAddRepoFailed"]);
  const status = f.bindings.get("app/b")?.status;
  assert.ok(isRecord(status));
  assert.equal(status.lastAppliedInputHash, undefined, "nothing recorded as applied");
  assert.doesNotMatch(
    JSON.stringify(status),
    /already initialized|repository-already/,
    "Backrest's text stays out",
  );
});

Deno.test("reconcile() asks Backrest whether the repository exists only when nobody knows", async () => {
  const f = fixture();
  const repo = { RESTIC_REPOSITORY: "rest:http://r/x", RESTIC_PASSWORD: "pw" };
  f.addSecret("app", "restic", repo);
  f.addSecret("app", "synced", { ...repo, RESTIC_REPOSITORY: "rest:http://r/synced" });
  f.addSource("app", "fresh", "restic");
  f.addSource("app", "done", "synced", "2026-11-25T11:00:00Z");
  f.addBinding("app", "fresh", "2026-01-01T00:00:00Z", spec("fresh"));
  f.addBinding("app", "done", "2026-01-01T00:00:00Z", spec("done"));
  await f.reconcile("app/done", f.ctx);
  assert.deepEqual(
    f.calls,
    ["addRepo"],
    "the VolSync object reports a completed sync: the repository exists",
  );
  const synced = f.bindings.get("app/done")?.status;
  assert.ok(isRecord(synced) && typeof synced.lastAppliedInputHash === "string");
  assert.equal(synced.appliedRepositoryHash, undefined, "the reported sync tells later reconciles as much");
  f.calls.length = 0;
  await f.reconcile("app/fresh", f.ctx);
  assert.deepEqual(f.calls, ["checkRepoExists", "addRepo"], "not synced, not applied before: ask first");
  f.calls.length = 0;
  f.addSecret("app", "restic", { ...repo, RESTIC_PASSWORD: "pw2" });
  await f.reconcile("app/fresh", f.ctx);
  assert.deepEqual(f.calls, ["addRepo"], "a rotated password at a location applied before: no need to ask");
  f.calls.length = 0;
  f.addSecret("app", "restic", { ...repo, RESTIC_PASSWORD: "pw2", RESTIC_REPOSITORY: "rest:http://r/moved" });
  await f.reconcile("app/fresh", f.ctx);
  assert.deepEqual(f.calls, ["checkRepoExists", "addRepo"], "a new location: ask again");
  const status = f.bindings.get("app/fresh")?.status;
  assert.ok(isRecord(status) && typeof status.appliedRepositoryHash === "string");
  assert.doesNotMatch(JSON.stringify(status), /moved|r\/x/, "the location is kept as a hash only");
});
