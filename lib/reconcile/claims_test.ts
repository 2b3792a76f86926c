/**
 * The claim ledger against the KubeClient stand-in (`_fakes.ts`): what it asks the apiserver, and that the
 * apiserver's answer, not the cache, decides who holds an id.
 */
import assert from "node:assert/strict";
import { type KubeObject, type Lease, leases } from "../kube/mod.ts";
import { MemoryStore } from "../runtime/mod.ts";
import { fakeKube } from "../testing/fake_apiserver.ts";
import { claimIndexers, claimName, RepoClaims } from "./claims.ts";

const NS = "operator";
const signal = new AbortController().signal;
const a = { key: "tenant-a/b", uid: "uid-a" };
const b = { key: "tenant-b/b", uid: "uid-b" };

/** A ledger whose cache starts empty, over the stand-in apiserver's store of Leases. */
function ledger() {
  const apiserver = new MemoryStore<Lease>(claimIndexers);
  // The stand-in keeps any KubeObject; Leases are KubeObjects.
  const fake = fakeKube({ [leases.resource]: apiserver as unknown as MemoryStore<KubeObject> });
  const claims = new RepoClaims(fake.client, new MemoryStore<Lease>(claimIndexers), NS);
  return { claims, fake, apiserver };
}

Deno.test("claims: a new claim is one create, no read first", async () => {
  const { claims, fake, apiserver } = ledger();
  const got = await claims.acquire("repo-1", a, "http://backrest:9898", signal);
  assert.equal(got.ok, true);
  assert.deepEqual(fake.calls.map((c) => c.verb), ["create"]);
  assert.ok(apiserver.getByName(NS, claimName("repo-1")));
});

Deno.test("claims: a claim the cache has not seen yet is not taken: AlreadyExists, then the Lease is read", async () => {
  const { claims, fake } = ledger();
  assert.equal((await claims.acquire("repo-2", b, undefined, signal)).ok, true);
  // The ledger's cache is empty (its informer lags): the create is refused and the Lease read decides.
  fake.calls.length = 0;
  const got = await claims.acquire("repo-2", a, undefined, signal);
  assert.deepEqual(got, { ok: false, holder: b });
  assert.deepEqual(fake.calls.map((c) => c.verb), ["create", "get"]);
});

Deno.test("claims: of two Bindings asking at once, exactly one holds the id", async () => {
  const { claims } = ledger();
  const [x, y] = await Promise.all([
    claims.acquire("repo-3", a, undefined, signal),
    claims.acquire("repo-3", b, undefined, signal),
  ]);
  assert.equal([x, y].filter((r) => r.ok).length, 1);
  const [winner, loser] = x.ok ? [a, y] : [b, x];
  assert.deepEqual(loser, { ok: false, holder: winner });
});

Deno.test("claims: a Binding recreated under the same name takes its claim over; a stale cache costs one read", async () => {
  const { claims, fake, apiserver } = ledger();
  assert.equal((await claims.acquire("repo-4", a, "http://backrest:9898", signal)).ok, true);
  // The cache holds the Lease at an older resourceVersion than the apiserver's.
  const cached = structuredClone(apiserver.getByName(NS, claimName("repo-4"))!);
  const lagging = new MemoryStore<Lease>(claimIndexers);
  lagging.upsert({ ...cached, metadata: { ...cached.metadata, resourceVersion: "1" } });
  const ledger2 = new RepoClaims(fake.client, lagging, NS);
  fake.calls.length = 0;
  const got = await ledger2.acquire("repo-4", { key: a.key, uid: "uid-a2" }, undefined, signal);
  assert.equal(got.ok, true);
  assert.deepEqual(fake.calls.map((c) => c.verb), ["update", "get", "update"]);
  assert.equal(got.ok && got.claim.holder.uid, "uid-a2");
  assert.equal(got.ok && got.claim.url, "http://backrest:9898", "the applied URL stays with the claim");
});
