import assert from "node:assert/strict";
import { KubeError, type KubeObject, type ListPage, type WatchEvent } from "../kube/mod.ts";
import { FakeClock, settle } from "./clock.ts";
import { type ListWatch, newWatcherStats, runWatcher, WATCH_LIVED_MS, watchBackoff } from "./watcher.ts";

function obj(name: string, rv: string): KubeObject {
  return { metadata: { namespace: "n", name, resourceVersion: rv } };
}

type Script =
  | {
    kind: "events";
    events: WatchEvent<KubeObject>[];
    /** After the events: end cleanly, stay open, fail, or fail once `afterMs` passed on the clock. */
    then?: "close" | "hang" | Error | { afterMs: number; error: Error };
  }
  | Error;

/** A ListWatch driven by scripts: each list call and each watch call takes the next script. */
class FakeListWatch implements ListWatch<KubeObject> {
  clock: FakeClock | undefined;
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

  async *watch(
    o: { resourceVersion: string; timeoutSeconds: number; signal: AbortSignal; onOpen?: () => void },
  ) {
    this.watchCalls.push({ resourceVersion: o.resourceVersion, timeoutSeconds: o.timeoutSeconds });
    const s = this.watches.shift() ?? { kind: "events", events: [], then: "hang" };
    if (s instanceof Error) throw s;
    o.onOpen?.();
    for (const e of s.events) yield e;
    if (s.then instanceof Error) throw s.then;
    if (typeof s.then === "object") {
      const { afterMs, error } = s.then;
      await new Promise<void>((resolve) => this.clock!.timer(resolve, afterMs));
      throw error;
    }
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
  extra: {
    stallGraceMs?: number;
    transform?: (o: KubeObject) => KubeObject;
    backoff?: (attempt: number) => number;
    relistAfterFailure?: boolean;
  } = {},
) {
  const clock = new FakeClock();
  lw.clock = clock;
  const listed: string[][] = [];
  const events: string[] = [];
  const live: boolean[] = [];
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
      backoff: extra.backoff ?? ((attempt) => attempt * 1000),
      random: () => 0,
      relistAfterFailure: extra.relistAfterFailure,
      onLive: (v) => live.push(v),
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
    live,
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

Deno.test("watcher: live from a watch's opening to its failure; a timeout close stays live", async () => {
  const lw = new FakeListWatch();
  lw.lists = [[{ items: [], resourceVersion: "10" }]];
  lw.watches = [
    { kind: "events", events: [{ type: "BOOKMARK", resourceVersion: "11" }], then: "close" },
    { kind: "events", events: [], then: new KubeError(0, "NetworkError", "stream broke") },
    new KubeError(0, "NetworkError", "refused"),
    { kind: "events", events: [], then: "hang" },
  ];
  const h = harness(lw);
  await settle();
  assert.deepEqual(h.live, [true, false], "open, closed by the server, open again, then broke");
  await h.clock.advance(1000);
  assert.deepEqual(h.live, [true, false], "the refused retry is still down");
  await h.clock.advance(2000);
  assert.deepEqual(h.live, [true, false, true]);
  await h.stop();
  assert.deepEqual(h.live, [true, false, true, false], "a stopped watcher is not live");
});

Deno.test("watcher: a watch that lived starts the backoff over; one that failed at once does not", async () => {
  const lw = new FakeListWatch();
  lw.lists = [[{ items: [], resourceVersion: "10" }]];
  const broke = () => new KubeError(0, "NetworkError", "stream broke");
  lw.watches = [
    new KubeError(0, "NetworkError", "refused"),
    { kind: "events", events: [], then: broke() }, // open, then broke at once: still a streak
    { kind: "events", events: [{ type: "MODIFIED", object: obj("a", "12") }], then: broke() }, // lived
    { kind: "events", events: [], then: "hang" },
  ];
  const h = harness(lw);
  await settle();
  await h.clock.advance(1000); // attempt 1
  assert.equal(lw.watchCalls.length, 2);
  await h.clock.advance(1999);
  assert.equal(lw.watchCalls.length, 2, "attempt 2 waits 2 s: opening alone is not living");
  await h.clock.advance(1);
  assert.equal(lw.watchCalls.length, 3);
  await h.clock.advance(1000);
  assert.equal(lw.watchCalls.length, 4, "after a watch that delivered a change, 1 s again");
  assert.deepEqual(lw.watchCalls.map((w) => w.resourceVersion), ["10", "10", "10", "12"]);
  await h.stop();
});

Deno.test("watcher: a watch open for a while counts as lived even without events", async () => {
  const lw = new FakeListWatch();
  lw.lists = [[{ items: [], resourceVersion: "10" }]];
  const refused = () => new KubeError(0, "NetworkError", "refused");
  lw.watches = [
    refused(),
    refused(),
    { kind: "events", events: [], then: { afterMs: WATCH_LIVED_MS, error: refused() } },
    { kind: "events", events: [], then: "hang" },
  ];
  const h = harness(lw);
  await settle();
  await h.clock.advance(3000); // attempts 1 (1 s) and 2 (2 s)
  assert.equal(lw.watchCalls.length, 3);
  await h.clock.advance(WATCH_LIVED_MS);
  assert.equal(lw.watchCalls.length, 3, "the quiet watch broke");
  await h.clock.advance(1000);
  assert.equal(lw.watchCalls.length, 4, "its failure waits attempt 1's delay, not attempt 3's");
  await h.stop();
});

Deno.test("watcher: a 429 with Retry-After is waited out as asked, without growing the backoff", async () => {
  const lw = new FakeListWatch();
  lw.lists = [[{ items: [], resourceVersion: "10" }]];
  const busy = () =>
    new KubeError(429, "TooManyRequests", "storage is (re)initializing", { retryAfterSeconds: 3 });
  lw.watches = [busy(), busy(), new KubeError(0, "NetworkError", "refused"), {
    kind: "events",
    events: [],
    then: "hang",
  }];
  const h = harness(lw);
  await settle();
  await h.clock.advance(2999);
  assert.equal(lw.watchCalls.length, 1, "waits the 3 s asked for (the backoff would say 1 s)");
  await h.clock.advance(1);
  assert.equal(lw.watchCalls.length, 2);
  await h.clock.advance(3000);
  assert.equal(lw.watchCalls.length, 3);
  await h.clock.advance(1000);
  assert.equal(lw.watchCalls.length, 4, "the next failure is attempt 1 (1 s): the 429s did not count");
  await h.stop();
});

Deno.test("watcher: a 503's Retry-After is not taken: a starting apiserver asks for 5 s it does not need", async () => {
  const lw = new FakeListWatch();
  lw.lists = [[{ items: [], resourceVersion: "10" }]];
  lw.watches = [
    new KubeError(503, "ServiceUnavailable", "not all HTTP paths installed", { retryAfterSeconds: 5 }),
    { kind: "events", events: [], then: "hang" },
  ];
  const h = harness(lw);
  await settle();
  await h.clock.advance(1000);
  assert.equal(lw.watchCalls.length, 2, "attempt 1's backoff (1 s)");
  await h.stop();
});

Deno.test("watcher: relistAfterFailure lists after a failed watch instead of resuming", async () => {
  const lw = new FakeListWatch();
  lw.lists = [
    [{ items: [obj("a", "1")], resourceVersion: "10" }],
    [{ items: [obj("a", "20")], resourceVersion: "21" }],
  ];
  lw.watches = [
    { kind: "events", events: [{ type: "BOOKMARK", resourceVersion: "15" }], then: "close" },
    { kind: "events", events: [], then: new KubeError(0, "NetworkError", "stream broke") },
    { kind: "events", events: [], then: "hang" },
  ];
  const h = harness(lw, { relistAfterFailure: true });
  await h.clock.advance(1000);
  assert.deepEqual(h.listed.map((l) => l[0]), ["10", "21"], "a timeout close resumes; a failure relists");
  assert.deepEqual(lw.watchCalls.map((w) => w.resourceVersion), ["10", "15", "21"]);
  assert.deepEqual(h.live, [true, false, true]);
  await h.stop();
});

Deno.test("watchBackoff(): 500 ms doubling to 5 s, each in the upper half of its step", () => {
  const low = watchBackoff(() => 0);
  const high = watchBackoff(() => 0.999999);
  assert.deepEqual([1, 2, 3, 4, 5, 6, 20].map(low), [250, 500, 1000, 2000, 2500, 2500, 2500]);
  assert.deepEqual([1, 2, 3, 4, 5, 6, 20].map((a) => Math.round(high(a))), [
    500,
    1000,
    2000,
    4000,
    5000,
    5000,
    5000,
  ]);
});
