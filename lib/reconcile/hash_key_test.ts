import assert from "node:assert/strict";
import { type HashKey, keyedHasher } from "../backrest/mod.ts";
import { KubeError, type KubeObject, secrets } from "../kube/mod.ts";
import { MemoryStore } from "../runtime/mod.ts";
import { fakeKube } from "../testing/fake_apiserver.ts";
import { HASH_KEY_SECRET, HashKeyError, hashKeyLoader } from "./hash_key.ts";

const NS = "backups";
const input = new TextEncoder().encode("inputs of an apply");
const hashWith = async (load: () => Promise<HashKey>) => await keyedHasher(load).hash(input);
const apiserver = () => {
  const store = new MemoryStore<KubeObject>();
  return { store, fake: fakeKube({ [secrets.resource]: store }) };
};
const stored = (store: MemoryStore<KubeObject>) => store.get(`${NS}/${HASH_KEY_SECRET}`);

Deno.test("hash key: the first start makes the Secret (32 random bytes), a restart reads it and hashes alike", async () => {
  const { store, fake } = apiserver();
  const first = await hashWith(hashKeyLoader(fake.client, NS));
  const secret = stored(store);
  assert.ok(secret, "the key Secret was made");
  assert.equal(secret.type, "Opaque");
  assert.equal(secret.metadata.labels?.["app.kubernetes.io/managed-by"], "backrest-volsync-operator");
  const key = atob((secret.data as Record<string, string>).key!);
  assert.equal(key.length, 32);
  assert.equal(fake.writes().length, 1);
  // A restart (a new loader) reads the same key: the hashes in status stay valid.
  assert.equal(await hashWith(hashKeyLoader(fake.client, NS)), first);
  assert.equal(fake.writes().length, 1, "nothing made twice");
  // Another installation (its own Secret) hashes differently.
  assert.notEqual(await hashWith(hashKeyLoader(apiserver().fake.client, NS)), first);
});

Deno.test("hash key: loaded once, however many reconciles ask at once", async () => {
  const { fake } = apiserver();
  const load = hashKeyLoader(fake.client, NS);
  const hashes = await Promise.all(Array.from({ length: 20 }, () => hashWith(load)));
  assert.equal(new Set(hashes).size, 1);
  assert.equal(fake.calls.filter((c) => c.resource === "secrets").length, 2, "one get, one create");
});

Deno.test("hash key: two replicas starting together both end up with the one key that was made", async () => {
  const { fake } = apiserver();
  const release = fake.hold("create");
  const a = hashWith(hashKeyLoader(fake.client, NS));
  const b = hashWith(hashKeyLoader(fake.client, NS));
  // Both found no Secret and both try to make one (held: the fake records a held call once let go); the
  // apiserver keeps the first.
  const tick = () => new Promise((r) => setTimeout(r, 0));
  while (fake.calls.filter((c) => c.verb === "get").length < 2) await tick();
  await tick();
  release();
  assert.equal(await a, await b);
  assert.equal(fake.writes().filter((w) => w.verb === "create").length, 2);
});

Deno.test("hash key: a Secret without a usable key is an error naming it and the fix, never replaced silently", async () => {
  for (const data of [{}, { key: "c2hvcnQ=" }, { key: "not base64 !!" }]) {
    const { store, fake } = apiserver();
    fake.put(secrets, {
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: HASH_KEY_SECRET, namespace: NS },
      data,
    });
    const e = await hashWith(hashKeyLoader(fake.client, NS)).catch((e) => e);
    assert.ok(e instanceof HashKeyError, String(e));
    assert.match(
      e.message,
      /Secret backups\/backrest-volsync-operator-hash-key holds no 32-byte "key": delete it/,
    );
    assert.doesNotMatch(e.message, /c2hvcnQ|short|base64 !!/);
    assert.deepEqual(stored(store)?.data, data, "left as it was");
    assert.equal(fake.writes().length, 0);
  }
});

Deno.test("hash key: forbidden says which Role needs what; an error is retried, but at most every 5 s", async () => {
  const { fake } = apiserver();
  let now = 1_000_000;
  const load = hashKeyLoader(fake.client, NS, undefined, () => now);
  fake.fail(
    "create",
    new KubeError(403, "Forbidden", 'secrets is forbidden: cannot create resource "secrets"'),
  );
  const e = await hashWith(load).catch((e) => e);
  assert.ok(e instanceof HashKeyError, String(e));
  assert.equal(
    e.message,
    "cannot create the status hash key Secret backups/backrest-volsync-operator-hash-key: 403 Forbidden; the operator's Role in backups must allow get and create on secrets",
  );
  const asked = () => fake.calls.length;
  const before = asked();
  // Many Bindings retrying within the next seconds: the same error, no new request.
  await assert.rejects(hashWith(load), HashKeyError);
  now += 4_999;
  await assert.rejects(hashWith(load), HashKeyError);
  assert.equal(asked(), before);
  // Then the next attempt asks again, and works once the Role allows it.
  fake.fail("create", undefined);
  now += 1;
  assert.match(await hashWith(load), /^hmac:[0-9a-f]{64}$/);
  assert.equal(asked(), before + 2);
  // A transient failure is retried the same way.
  const other = apiserver().fake;
  other.fail("get", new KubeError(503, "ServiceUnavailable", "etcd leader changed"));
  await assert.rejects(
    hashWith(hashKeyLoader(other.client, NS, undefined, () => now)),
    /cannot read the status hash key Secret backups\/backrest-volsync-operator-hash-key: 503 ServiceUnavailable; retrying/,
  );
});
