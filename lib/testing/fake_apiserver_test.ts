/**
 * The stand-in apiserver of _fakes.ts answers list and watch as the informers rely on (the operator's
 * wiring tests stand on it): a watch continues a list at its resourceVersion, selectors filter both,
 * metadata-only answers carry no data, and what it does not implement rejects.
 */
import assert from "node:assert/strict";
import { KubeError, type KubeObject, secrets, type WatchEvent } from "../kube/mod.ts";
import { MemoryStore } from "../runtime/mod.ts";
import { fakeKube } from "./fake_apiserver.ts";
import { bindingType } from "../reconcile/resources.ts";

function stand() {
  const fake = fakeKube({ secrets: new MemoryStore(), [bindingType.resource]: new MemoryStore() });
  const secret = (namespace: string, name: string, labels: Record<string, string> = {}, value = "c2VjcmV0") =>
    fake.put(secrets, {
      apiVersion: "v1",
      kind: "Secret",
      metadata: { namespace, name, labels },
      data: { k: value },
    });
  return { fake, secret };
}

/** Collects a watch's events until `count` arrived, then aborts it and checks that it ended. */
async function events(stream: AsyncIterable<WatchEvent<KubeObject>>, stop: AbortController, count: number) {
  const seen: string[] = [];
  for await (const e of stream) {
    seen.push(e.type === "BOOKMARK" || e.type === "ERROR" ? e.type : `${e.type} ${e.object.metadata.name}`);
    if (seen.length === count) stop.abort();
  }
  return seen;
}

Deno.test("fakeKube: a watch continues its list at the list's resourceVersion, hears nothing while it lags, and ends when its signal aborts", async () => {
  const { fake, secret } = stand();
  secret("a", "before");
  const page = await fake.client.list(secrets, { namespace: "a" });
  assert.deepEqual(page.items.map((o) => o.metadata.name), ["before"]);
  secret("a", "after"); // written between the list and the watch: still heard
  secret("a", "before", {}, "bmV3");
  fake.remove(secrets, "a", "after");
  const stop = new AbortController();
  const watched = events(
    fake.client.watch(secrets, {
      namespace: "a",
      resourceVersion: page.resourceVersion,
      signal: stop.signal,
    }),
    stop,
    4,
  );
  await Promise.resolve();
  assert.equal(fake.openWatches, 1);
  secret("b", "elsewhere"); // another namespace: not this watch's
  secret("a", "late");
  assert.deepEqual(await watched, ["ADDED after", "MODIFIED before", "DELETED after", "ADDED late"]);
  assert.equal(fake.openWatches, 0);
  // A lagging watch hears nothing until it catches up, then everything in order.
  const lagging = new AbortController();
  const from = (await fake.client.list(secrets)).resourceVersion;
  const heard: string[] = [];
  const catchUp = fake.lag(secrets);
  const done = events(
    fake.client.watch(secrets, { resourceVersion: from, signal: lagging.signal }),
    lagging,
    2,
  )
    .then((e) => heard.push(...e));
  secret("a", "one");
  secret("a", "two");
  await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(heard, []);
  catchUp();
  await done;
  assert.deepEqual(heard, ["ADDED one", "ADDED two"]);
  // An idle watch ends on abort too.
  const idle = new AbortController();
  const rv = (await fake.client.list(secrets)).resourceVersion;
  const ended = events(fake.client.watch(secrets, { resourceVersion: rv, signal: idle.signal }), idle, 99);
  idle.abort();
  assert.deepEqual(await ended, []);
});

Deno.test("fakeKube: selectors filter lists and watches; an object that leaves a selector is DELETED for that watch", async () => {
  const { fake, secret } = stand();
  secret("a", "x", { claim: "true" });
  secret("a", "y", { claim: "false" });
  const names = async (o: object) => (await fake.client.list(secrets, o)).items.map((s) => s.metadata.name);
  assert.deepEqual(await names({ labelSelector: "claim=true" }), ["x"]);
  assert.deepEqual(await names({ labelSelector: "claim!=true" }), ["y"]);
  assert.deepEqual(await names({ fieldSelector: "metadata.name=y" }), ["y"]);
  assert.deepEqual(await names({ limit: 1 }), ["x"], "a page of at most `limit`");
  const page = await fake.client.list(secrets, { limit: 1 });
  assert.deepEqual(await names({ limit: 1, continue: page.continue }), ["y"]);
  await assert.rejects(names({ labelSelector: "claim in (true)" }), /not understood/);
  await assert.rejects(names({ fieldSelector: "spec.x=1" }), /not understood/);

  const stop = new AbortController();
  const rv = (await fake.client.list(secrets)).resourceVersion;
  const watched = events(
    fake.client.watch(secrets, { labelSelector: "claim=true", resourceVersion: rv, signal: stop.signal }),
    stop,
    2,
  );
  secret("a", "y", { claim: "true" });
  secret("a", "x", { claim: "false" });
  assert.deepEqual(await watched, ["ADDED y", "DELETED x"]);
});

Deno.test("fakeKube: metadata-only lists and watches carry no data; unimplemented verbs reject", async () => {
  const { fake, secret } = stand();
  secret("a", "s");
  const [listed] = (await fake.client.listMetadata(secrets)).items;
  assert.equal(listed!.metadata.name, "s");
  assert.equal("data" in listed!, false);
  const stop = new AbortController();
  const rv = (await fake.client.list(secrets)).resourceVersion;
  const stream = fake.client.watchMetadata(secrets, { resourceVersion: rv, signal: stop.signal });
  secret("a", "s", {}, "b3RoZXI=");
  for await (const e of stream) {
    assert.ok(e.type === "MODIFIED" && !("data" in e.object));
    stop.abort();
  }
  await assert.rejects(fake.client.apply(secrets, { metadata: { name: "s" } }, { fieldManager: "m" }));
  await assert.rejects(
    fake.client.patch(secrets, "s", [], { namespace: "a", patchType: "json" }),
    /json patch/,
  );
  // A merge patch with a stale resourceVersion conflicts, as the apiserver's does.
  await assert.rejects(
    fake.client.patch(secrets, "s", { metadata: { resourceVersion: "1" } }, { namespace: "a" }),
    (e) => e instanceof KubeError && e.status === 409,
  );
});
