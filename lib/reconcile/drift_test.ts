import assert from "node:assert/strict";
import type { BackrestApi, BackrestConnection } from "../backrest/mod.ts";
import type { KubeObject } from "../kube/mod.ts";
import { nullLogger } from "../observe/mod.ts";
import { FakeClock, MemoryStore, settle } from "../runtime/mod.ts";
import { defaultOperatorConfigSpec } from "../api/mod.ts";
import { ConfigGate } from "./config_gate.ts";
import { DriftRepair } from "./drift.ts";
import { RepoListings } from "./repo_listings.ts";

function ready(ns: string, name: string, repoId: string, url: string): KubeObject {
  return {
    metadata: { namespace: ns, name, resourceVersion: "1" },
    status: {
      repoId,
      backrestURL: url,
      conditions: [{ type: "Ready", status: "True", reason: "Applied", message: "", lastTransitionTime: "" }],
    },
  };
}

/** Backrests that hold `held[url]`, counting listing calls per URL (a stand-in for listRepoIds). */
function fixture(held: Record<string, string[]>, gate?: ConfigGate) {
  const calls: string[] = [];
  const unused = () => Promise.reject(new Error("drift repair only lists"));
  const backrest = (c: BackrestConnection): BackrestApi => ({
    url: c.url,
    listRepoIds: () => (calls.push(c.url), Promise.resolve(held[c.url] ?? [])),
    addRepo: unused,
    removeRepo: unused,
    checkRepoExists: unused,
    doRepoTask: unused,
    probe: unused,
  });
  const listings = new RepoListings({ backrest: gate ? gate.gatedBackrest(backrest) : backrest });
  const bindings = new MemoryStore<KubeObject>();
  const enqueued: string[] = [];
  let period = 600_000;
  const clock = new FakeClock();
  const drift = new DriftRepair({
    bindings,
    listings,
    periodMs: () => period,
    active: () => true,
    ...(gate ? { whenKnown: (signal: AbortSignal) => gate.waitKnown(signal) } : {}),
    enqueue: (k) => enqueued.push(k),
    logger: nullLogger(),
    clock,
  });
  return { calls, listings, bindings, enqueued, drift, clock, setPeriod: (ms: number) => period = ms };
}

Deno.test("drift: one listing per Backrest; Ready Bindings whose repo is gone are marked and enqueued", async () => {
  const f = fixture({ "http://a:1": ["x"], "http://b:1": [] });
  f.bindings.upsert(ready("n", "bx", "x", "http://a:1"));
  f.bindings.upsert(ready("n", "by", "y", "http://a:1"));
  f.bindings.upsert(ready("m", "bz", "z", "http://b:1"));
  for (const url of ["http://a:1", "http://b:1"]) f.listings.remember({ url }, false);
  assert.deepEqual(await f.drift.check(), { listed: 2, missing: 2 });
  assert.deepEqual(f.calls.sort(), ["http://a:1", "http://b:1"]);
  assert.deepEqual(f.enqueued.sort(), ["m/bz", "n/by"]);
  assert.equal(f.drift.isMissing("n/by"), true);
  assert.equal(f.drift.isMissing("n/bx"), false);
  f.drift.markPresent("n/by");
  assert.equal(f.drift.isMissing("n/by"), false);
});

Deno.test("drift: memory follows the Bindings: gone Bindings lose their marks, unused Backrests their credentials", async () => {
  const f = fixture({ "http://a:1": [], "http://b:1": [] });
  f.bindings.upsert(ready("n", "b1", "x", "http://a:1"));
  f.bindings.upsert(ready("n", "b2", "y", "http://b:1"));
  for (const url of ["http://a:1", "http://b:1"]) f.listings.remember({ url }, false);
  await f.drift.check();
  assert.equal(f.drift.isMissing("n/b2"), true);
  f.bindings.delete(ready("n", "b2", "y", "http://b:1"));
  await f.drift.check();
  assert.equal(f.drift.isMissing("n/b2"), false, "the mark of a deleted Binding is dropped");
  assert.deepEqual(f.listings.urls(), ["http://a:1"], "no Binding uses b any more");
});

Deno.test("drift: checks once per period, and a new period applies from the change, not after the old wait", async () => {
  const f = fixture({ "http://a:1": ["x"] });
  f.bindings.upsert(ready("n", "b", "x", "http://a:1"));
  f.listings.remember({ url: "http://a:1" }, false);
  const stop = new AbortController();
  const running = f.drift.start(stop.signal);
  await f.clock.advance(599_000);
  await settle();
  assert.equal(f.calls.length, 0, "not before the period");
  await f.clock.advance(1_000);
  await settle();
  assert.equal(f.calls.length, 1, "once the period passed");
  // 5 minutes into the next 10-minute wait, the period becomes 15 s.
  await f.clock.advance(300_000);
  f.setPeriod(15_000);
  f.drift.periodChanged();
  await settle();
  await f.clock.advance(15_000);
  await settle();
  assert.equal(f.calls.length, 2, "15 s after the change, not 5 minutes later");
  await f.clock.advance(15_000);
  await settle();
  assert.equal(f.calls.length, 3);
  stop.abort();
  await running;
});

Deno.test("drift: a round due while the OperatorConfig is not known waits for it; one refused midway ends quietly", async () => {
  let current = false;
  const listeners: (() => void)[] = [];
  const gate = new ConfigGate({
    caches: [{
      name: "configs",
      isCurrent: () => current,
      onCurrentChange: (l) => listeners.push(() => l(current)),
    }],
    settings: () => ({
      configNamespace: "ops",
      configName: "c",
      spec: defaultOperatorConfigSpec(),
      found: false,
    }),
    logger: nullLogger(),
  });
  const f = fixture({ "http://a:1": [] }, gate);
  f.bindings.upsert(ready("n", "b", "x", "http://a:1"));
  f.listings.remember({ url: "http://a:1" }, false);
  assert.deepEqual(
    await f.drift.check(),
    { listed: 0, missing: 0 },
    "refused: nothing listed, nothing marked",
  );
  assert.deepEqual(f.enqueued, []);
  const stop = new AbortController();
  const running = f.drift.start(stop.signal);
  await f.clock.advance(600_000);
  await settle();
  assert.deepEqual(f.calls, [], "the round waits");
  current = true;
  listeners.forEach((l) => l());
  await settle();
  assert.deepEqual(f.calls, ["http://a:1"], "and runs once known");
  assert.deepEqual(f.enqueued, ["n/b"]);
  stop.abort();
  await running;
});
