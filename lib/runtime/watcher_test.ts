import assert from "node:assert/strict";
import { KubeError, type KubeObject, type ListPage, type WatchEvent } from "../kube/mod.ts";
import { FakeClock, settle } from "./clock.ts";
import { type ListWatch, newWatcherStats, runWatcher } from "./watcher.ts";

function obj(name: string, rv: string): KubeObject {
  return { metadata: { namespace: "n", name, resourceVersion: rv } };
}

type Script = { kind: "events"; events: WatchEvent<KubeObject>[]; then?: "close" | "hang" | Error } | Error;

/** A ListWatch driven by scripts: each list call and each watch call takes the next script. */
class FakeListWatch implements ListWatch<KubeObject> {
  lists: ListPage<KubeObject>[][] = [];
  watches: Script[] = [];
  listCalls: { continue?: string | undefined }[] = [];
  watchCalls: { resourceVersion: string; timeoutSeconds: number }[] = [];

  list(o: { continue?: string | undefined }): Promise<ListPage<KubeObject>> {
    this.listCalls.push({ continue: o.continue });
    const pages = this.lists[0];
    if (!pages) return Promise.reject(new KubeError(500, "InternalError", "no script"));
    const page = pages.shift();
    if (pages.length === 0) this.lists.shift();
    if (!page) return Promise.reject(new KubeError(500, "InternalError", "no page"));
    return Promise.resolve(page);
  }

  async *watch(o: { resourceVersion: string; timeoutSeconds: number; signal: AbortSignal }) {
    this.watchCalls.push({ resourceVersion: o.resourceVersion, timeoutSeconds: o.timeoutSeconds });
    const s = this.watches.shift() ?? { kind: "events", events: [], then: "hang" };
    if (s instanceof Error) throw s;
    for (const e of s.events) yield e;
    if (s.then instanceof Error) throw s.then;
    if (s.then === "hang") {
      await new Promise((_, reject) => {
        if (o.signal.aborted) reject(o.signal.reason);
        o.signal.addEventListener("abort", () => reject(o.signal.reason), { once: true });
      });
    }
  }
}

function harness(
  lw: FakeListWatch,
  extra: { stallGraceMs?: number; transform?: (o: KubeObject) => KubeObject } = {},
) {
  const clock = new FakeClock();
  const listed: string[][] = [];
  const events: string[] = [];
  const stats = newWatcherStats();
  const stop = new AbortController();
  const running = runWatcher(
    {
      listWatch: lw,
      namespace: "n",
      clock,
      pageSize: 2,
      watchTimeoutSeconds: 60,
      watchTimeoutJitter: 0,
      stallGraceMs: extra.stallGraceMs ?? 5000,
      backoff: (attempt) => attempt * 1000,
      transform: extra.transform,
      onList: (items, rv) => listed.push([rv, ...items.map((i) => i.metadata.name ?? "")]),
      onEvent: (type, o) => events.push(`${type}:${o.metadata.name}@${o.metadata.resourceVersion}`),
    },
    stop.signal,
    stats,
  );
  return {
    clock,
    listed,
    events,
    stats,
    stop: async () => {
      stop.abort();
      await running;
    },
  };
}

Deno.test("watcher: lists every page, then watches from the list's resourceVersion", async () => {
  const lw = new FakeListWatch();
  lw.lists = [[
    { items: [obj("a", "5"), obj("b", "6")], resourceVersion: "10", continue: "t1" },
    { items: [obj("c", "7")], resourceVersion: "10" },
  ]];
  lw.watches = [{ kind: "events", events: [{ type: "ADDED", object: obj("d", "11") }], then: "hang" }];
  const h = harness(lw);
  await settle();
  await settle();
  assert.deepEqual(h.listed, [["10", "a", "b", "c"]]);
  assert.deepEqual(lw.listCalls, [{ continue: undefined }, { continue: "t1" }]);
  assert.deepEqual(lw.watchCalls, [{ resourceVersion: "10", timeoutSeconds: 60 }]);
  assert.deepEqual(h.events, ["ADDED:d@11"]);
  await h.stop();
});

Deno.test("watcher: each listed page is slimmed as it arrives, before the next page is asked for", async () => {
  const lw = new FakeListWatch();
  lw.lists = [[
    { items: [obj("a", "5"), obj("b", "6")], resourceVersion: "10", continue: "t1" },
    { items: [obj("c", "7")], resourceVersion: "10" },
  ]];
  const slimmed: string[] = [];
  const h = harness(lw, {
    transform: (o) => {
      slimmed.push(`${o.metadata.name} after ${lw.listCalls.length} page(s)`);
      return { metadata: { name: `${o.metadata.name}'` } };
    },
  });
  await settle();
  await settle();
  assert.deepEqual(slimmed, ["a after 1 page(s)", "b after 1 page(s)", "c after 2 page(s)"]);
  assert.deepEqual(h.listed, [["10", "a'", "b'", "c'"]], "onList gets the slimmed objects");
  await h.stop();
});

Deno.test("watcher: resumes from the last bookmark after the server closes the watch", async () => {
  const lw = new FakeListWatch();
  lw.lists = [[{ items: [], resourceVersion: "10" }]];
  lw.watches = [
    {
      kind: "events",
      events: [{ type: "MODIFIED", object: obj("a", "12") }, { type: "BOOKMARK", resourceVersion: "20" }],
      then: "close",
    },
    { kind: "events", events: [], then: "hang" },
  ];
  const h = harness(lw);
  await h.clock.advance(10);
  assert.deepEqual(lw.watchCalls.map((w) => w.resourceVersion), ["10", "20"]);
  assert.equal(lw.listCalls.length, 1, "no relist for a normal close");
  await h.stop();
});

Deno.test("watcher: an HTTP 410 and an ERROR event with code 410 both relist", async () => {
  const lw = new FakeListWatch();
  lw.lists = [
    [{ items: [obj("a", "1")], resourceVersion: "10" }],
    [{ items: [obj("a", "1"), obj("b", "30")], resourceVersion: "31" }],
    [{ items: [obj("b", "30")], resourceVersion: "40" }],
  ];
  lw.watches = [
    new KubeError(410, "Expired", "too old resource version"),
    { kind: "events", events: [{ type: "ERROR", status: { code: 410, reason: "Expired" } }] },
    { kind: "events", events: [], then: "hang" },
  ];
  const h = harness(lw);
  await h.clock.advance(10);
  assert.deepEqual(h.listed.map((l) => l[0]), ["10", "31", "40"]);
  assert.deepEqual(lw.watchCalls.map((w) => w.resourceVersion), ["10", "31", "40"]);
  assert.equal(h.stats.expired, 2);
  await h.stop();
});

Deno.test("watcher: failures back off, then the watch resumes from the same resourceVersion", async () => {
  const lw = new FakeListWatch();
  lw.lists = [[{ items: [], resourceVersion: "10" }]];
  lw.watches = [
    new KubeError(0, "NetworkError", "refused"),
    new KubeError(503, "ServiceUnavailable", "starting"),
    { kind: "events", events: [], then: "hang" },
  ];
  const h = harness(lw);
  await settle();
  assert.equal(lw.watchCalls.length, 1);
  await h.clock.advance(999);
  assert.equal(lw.watchCalls.length, 1, "waits the first backoff (1 s)");
  await h.clock.advance(1);
  assert.equal(lw.watchCalls.length, 2);
  await h.clock.advance(1999);
  assert.equal(lw.watchCalls.length, 2, "the second backoff is longer (2 s)");
  await h.clock.advance(1);
  assert.equal(lw.watchCalls.length, 3);
  assert.deepEqual(lw.watchCalls.map((w) => w.resourceVersion), ["10", "10", "10"]);
  assert.equal(lw.listCalls.length, 1);
  await h.stop();
});

Deno.test("watcher: a watch open past its timeout plus grace is aborted as stalled and restarted", async () => {
  const lw = new FakeListWatch();
  lw.lists = [[{ items: [], resourceVersion: "10" }]];
  lw.watches = [
    { kind: "events", events: [{ type: "BOOKMARK", resourceVersion: "15" }], then: "hang" },
    { kind: "events", events: [], then: "hang" },
  ];
  const h = harness(lw, { stallGraceMs: 5000 });
  await h.clock.advance(64_999);
  assert.equal(lw.watchCalls.length, 1);
  await h.clock.advance(1);
  assert.equal(h.stats.stalls, 1);
  assert.deepEqual(lw.watchCalls.map((w) => w.resourceVersion), ["10", "15"]);
  await h.stop();
});

Deno.test("watcher: stops promptly when its signal aborts mid-backoff", async () => {
  const lw = new FakeListWatch();
  lw.lists = [];
  const h = harness(lw);
  await settle();
  assert.equal(h.stats.errors, 1);
  await h.stop();
  assert.equal(lw.listCalls.length, 1);
});
