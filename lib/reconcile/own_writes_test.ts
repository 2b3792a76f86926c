import assert from "node:assert/strict";
import type { KubeObject } from "../kube/mod.ts";
import { OwnWrites } from "./own_writes.ts";

const status = { conditions: [{ type: "Ready", status: "True", reason: "Applied" }], repoId: "r" };
const obj = (rv: string, s: unknown, meta: Record<string, unknown> = {}): KubeObject => ({
  metadata: { namespace: "ns", name: "b", resourceVersion: rv, generation: 1, ...meta },
  spec: { source: { name: "x" } },
  status: s,
});
const update = (old: KubeObject, object: KubeObject) => ({ type: "update" as const, old, object });

Deno.test("OwnWrites: the event carrying exactly our status write is an echo, once", () => {
  const own = new OwnWrites();
  own.writing("ns/b", status);
  // Same status in another key order, as the apiserver answers it.
  const back = { repoId: "r", conditions: [{ reason: "Applied", status: "True", type: "Ready" }] };
  assert.equal(own.isEcho("ns/b", update(obj("1", {}), obj("2", back))), true);
  assert.equal(own.size, 0);
  assert.equal(own.isEcho("ns/b", update(obj("2", back), obj("3", back))), false, "only once");
});

Deno.test("OwnWrites: anyone else's change is not an echo, and settles the entry", () => {
  const own = new OwnWrites();
  const cases: [string, KubeObject][] = [
    ["another status", obj("2", { ...status, repoId: "other" })],
    ["a label", obj("2", status, { labels: { a: "b" } })],
    ["a finalizer", obj("2", status, { finalizers: ["f"] })],
    ["a spec change", { ...obj("2", status, { generation: 2 }), spec: { source: { name: "y" } } }],
  ];
  for (const [what, next] of cases) {
    own.writing("ns/b", status);
    assert.equal(own.isEcho("ns/b", update(obj("1", {}), next)), false, what);
    assert.equal(own.size, 0, what);
  }
  own.writing("ns/b", status);
  assert.equal(own.isEcho("ns/b", { type: "delete", object: obj("2", status) }), false);
  assert.equal(own.size, 0);
});

Deno.test("OwnWrites: a failed write leaves nothing behind", () => {
  const own = new OwnWrites();
  own.writing("ns/b", status);
  own.failed("ns/b");
  assert.equal(own.isEcho("ns/b", update(obj("1", {}), obj("2", status))), false);
});

Deno.test("OwnWrites: a reconcile that starts before the write came back makes its event wake", () => {
  const own = new OwnWrites();
  own.writing("ns/b", status);
  own.reconciling("ns/b");
  assert.equal(own.isEcho("ns/b", update(obj("1", {}), obj("2", status))), false);
  own.writing("ns/b", status);
  own.reconciling("ns/other");
  assert.equal(
    own.isEcho("ns/b", update(obj("2", {}), obj("3", status))),
    true,
    "other keys' reconciles do not",
  );
});

Deno.test("OwnWrites: our last write is what a reconcile reads until the cache holds it or something newer", () => {
  const own = new OwnWrites();
  const answer = obj("5", status);
  own.wrote("ns/b", answer);
  assert.equal(own.latest("ns/b", obj("4", {})), answer, "the cache is older");
  assert.equal(
    own.latest("ns/other", obj("4", {}))?.metadata.resourceVersion,
    "4",
    "other keys read the cache",
  );
  // An older event reaching the cache leaves the write in force; one as new settles it.
  assert.equal(own.isEcho("ns/b", update(obj("3", {}), obj("4", {}))), false);
  assert.equal(own.latest("ns/b", obj("4", {})), answer);
  own.isEcho("ns/b", update(obj("4", {}), obj("5", status)));
  assert.equal(own.latest("ns/b", obj("4", {}))?.metadata.resourceVersion, "4", "settled: the cache again");

  own.wrote("ns/b", obj("7", status));
  assert.equal(own.latest("ns/b", obj("10", {}))?.metadata.resourceVersion, "10", "a newer cache wins");
  assert.equal(own.latest("ns/b", obj("6", {}))?.metadata.resourceVersion, "6", "and settles the write");

  own.wrote("ns/b", obj("7", status));
  own.isEcho("ns/b", { type: "delete", object: obj("6", status) });
  assert.equal(own.latest("ns/b", obj("6", {}))?.metadata.resourceVersion, "6", "a deletion settles it");
  own.wrote("ns/b", obj("7", status));
  assert.equal(own.latest("ns/b", undefined), undefined, "gone from the cache: gone");
});

Deno.test("OwnWrites: resourceVersions that cannot be ordered leave the cache in charge", () => {
  const own = new OwnWrites();
  own.wrote("ns/b", obj("b7", status));
  assert.equal(own.latest("ns/b", obj("a1", {}))?.metadata.resourceVersion, "a1");
  own.wrote("ns/b", obj("07", status));
  assert.equal(own.latest("ns/b", obj("6", {}))?.metadata.resourceVersion, "6");
});
