import assert from "node:assert/strict";
import type { KubeObject } from "../kube/mod.ts";
import { MemoryStore } from "./store.ts";

function obj(ns: string, name: string, rv: string, secret?: string): KubeObject {
  return { metadata: { namespace: ns, name, resourceVersion: rv, uid: `${ns}-${name}` }, spec: { secret } };
}

const bySecret = (o: KubeObject): string[] => {
  const spec = o.spec;
  return spec && typeof spec === "object" && "secret" in spec && typeof spec.secret === "string"
    ? [`${o.metadata.namespace}/${spec.secret}`]
    : [];
};

Deno.test("store: upsert reports add, update, and nothing for the same resourceVersion", () => {
  const s = new MemoryStore<KubeObject>();
  assert.equal(s.upsert(obj("n", "a", "1"))?.type, "add");
  assert.equal(s.upsert(obj("n", "a", "1")), undefined);
  const c = s.upsert(obj("n", "a", "2"));
  assert.equal(c?.type, "update");
  assert.equal(c?.type === "update" ? c.old.metadata.resourceVersion : "", "1");
  assert.equal(s.get("n/a")?.metadata.resourceVersion, "2");
  assert.equal(s.getByName("n", "a")?.metadata.resourceVersion, "2");
});

Deno.test("store: secondary indexes follow updates and deletes", () => {
  const s = new MemoryStore<KubeObject>({ secret: bySecret });
  s.upsert(obj("n", "a", "1", "s1"));
  s.upsert(obj("n", "b", "1", "s1"));
  assert.deepEqual(s.keysByIndex("secret", "n/s1").sort(), ["n/a", "n/b"]);
  s.upsert(obj("n", "a", "2", "s2"));
  assert.deepEqual(s.keysByIndex("secret", "n/s1"), ["n/b"]);
  assert.deepEqual(s.byIndex("secret", "n/s2").map((o) => o.metadata.name), ["a"]);
  s.delete(obj("n", "b", "3"));
  assert.deepEqual(s.keysByIndex("secret", "n/s1"), []);
  assert.throws(() => s.byIndex("nope", "x"), RangeError);
});

Deno.test("store: replace yields only the differences, scoped to a namespace", () => {
  const s = new MemoryStore<KubeObject>();
  s.upsert(obj("n", "a", "1"));
  s.upsert(obj("n", "b", "1"));
  s.upsert(obj("m", "z", "1"));
  const changes = s.replace([obj("n", "a", "1"), obj("n", "b", "2"), obj("n", "c", "1")], "n");
  assert.deepEqual(
    changes.map((c) => `${c.type}:${c.object.metadata.name}`).sort(),
    ["add:c", "update:b"],
  );
  const gone = s.replace([obj("n", "c", "1")], "n");
  assert.deepEqual(gone.map((c) => `${c.type}:${c.object.metadata.name}`).sort(), ["delete:a", "delete:b"]);
  assert.ok(s.get("m/z"), "other namespaces untouched");
  assert.deepEqual(s.replace([]).map((c) => c.type), ["delete", "delete"]);
  assert.equal(s.size, 0);
});

Deno.test("store: an index value shared by one, three, then one key again, and a value yielded twice", () => {
  const twice = (o: KubeObject): string[] => [...bySecret(o), ...bySecret(o)];
  const s = new MemoryStore<KubeObject>({ secret: bySecret, twice });
  s.upsert(obj("n", "a", "1", "s"));
  assert.deepEqual(s.keysByIndex("twice", "n/s"), ["n/a"]);
  s.upsert(obj("n", "b", "1", "s"));
  s.upsert(obj("n", "c", "1", "s"));
  assert.deepEqual(s.keysByIndex("secret", "n/s").sort(), ["n/a", "n/b", "n/c"]);
  s.delete(obj("n", "a", "2"));
  s.upsert(obj("n", "b", "2", "other"));
  assert.deepEqual(s.keysByIndex("secret", "n/s"), ["n/c"]);
  assert.deepEqual(s.keysByIndex("twice", "n/s"), ["n/c"]);
  assert.deepEqual(s.keysByIndex("secret", "n/other"), ["n/b"]);
  s.upsert(obj("n", "c", "2"));
  assert.deepEqual(s.keysByIndex("secret", "n/s"), []);
  assert.deepEqual(s.keysByIndex("twice", "n/s"), []);
  s.upsert(obj("n", "d", "1", "s"));
  assert.deepEqual(s.byIndex("twice", "n/s").map((o) => o.metadata.name), ["d"]);
});
