import assert from "node:assert/strict";
import { FakeClock } from "./clock.ts";
import { WorkQueue } from "./queue.ts";

Deno.test("queue: adding a queued key again does not duplicate it", async () => {
  const q = new WorkQueue({ clock: new FakeClock() });
  q.add("a");
  q.add("b");
  q.add("a");
  assert.equal(q.length, 2);
  assert.equal(await q.get(), "a");
  assert.equal(await q.get(), "b");
});

Deno.test("queue: a key re-added while in flight runs again after, never concurrently", async () => {
  const q = new WorkQueue({ clock: new FakeClock() });
  q.add("a");
  const key = await q.get();
  assert.equal(key, "a");
  q.add("a");
  assert.equal(q.length, 0, "not handed out while in flight");
  q.add("a");
  q.done("a");
  assert.equal(q.length, 1, "queued once after done");
  assert.equal(await q.get(), "a");
  q.done("a");
  assert.equal(q.length, 0);
});

Deno.test("queue: a waiting get() receives the next added key", async () => {
  const q = new WorkQueue({ clock: new FakeClock() });
  const pending = q.get();
  q.add("x");
  assert.equal(await pending, "x");
});

Deno.test("queue: addAfter delays, and the earliest request for a key wins", async () => {
  const clock = new FakeClock();
  const q = new WorkQueue({ clock });
  q.addAfter("a", 1000);
  q.addAfter("a", 300);
  q.addAfter("a", 5000);
  await clock.advance(299);
  assert.equal(q.length, 0);
  await clock.advance(1);
  assert.equal(q.length, 1);
  await clock.advance(10_000);
  assert.equal(q.length, 1, "the later requests were folded");
});

Deno.test("queue: per-key backoff grows exponentially to the cap and resets on forget", async () => {
  const clock = new FakeClock();
  const q = new WorkQueue({ clock, baseDelayMs: 10, maxDelayMs: 100, qps: 1000, burst: 1000 });
  const delays: number[] = [];
  for (let i = 0; i < 6; i++) {
    q.addRateLimited("k");
    const t0 = clock.now();
    while (q.length === 0) await clock.advance(1);
    delays.push(clock.now() - t0);
    assert.equal(await q.get(), "k");
    q.done("k");
  }
  assert.deepEqual(delays, [10, 20, 40, 80, 100, 100]);
  assert.equal(q.retries("k"), 6);
  q.forget("k");
  assert.equal(q.retries("k"), 0);
});

Deno.test("queue: the token bucket paces retries across keys", async () => {
  const clock = new FakeClock();
  const q = new WorkQueue({ clock, baseDelayMs: 1, maxDelayMs: 1, qps: 10, burst: 2 });
  for (const k of ["a", "b", "c", "d"]) q.addRateLimited(k);
  await clock.advance(1);
  assert.equal(q.length, 2, "burst of two");
  await clock.advance(100);
  assert.equal(q.length, 3);
  await clock.advance(100);
  assert.equal(q.length, 4);
});

Deno.test("queue: shutDown stops intake and drain waits for in-flight keys within a bound", async () => {
  const clock = new FakeClock();
  const q = new WorkQueue({ clock });
  q.add("a");
  q.add("b");
  assert.equal(await q.get(), "a");
  assert.equal(await q.get(), "b");
  const waiting = q.get();
  q.shutDown();
  assert.equal(await waiting, undefined, "a blocked get() is released");
  assert.equal(await q.get(), undefined);
  q.add("c");
  assert.equal(q.length, 0, "no intake after shutdown");
  q.done("b");
  let drained: boolean | undefined;
  const d = q.drain(1000).then((v) => (drained = v));
  await clock.advance(500);
  assert.equal(drained, undefined);
  q.done("a");
  await d;
  assert.equal(drained, true);
  q.add("z");
  assert.equal(await q.get(), undefined);
});

Deno.test("queue: drain gives up after its bound", async () => {
  const clock = new FakeClock();
  const q = new WorkQueue({ clock });
  q.add("a");
  await q.get();
  q.shutDown();
  const d = q.drain(1000);
  await clock.advance(1000);
  assert.equal(await d, false);
});

Deno.test("queue: metrics hooks see adds, depth, latency and retries", async () => {
  const clock = new FakeClock();
  const seen = { adds: 0, depth: -1, latency: -1, work: -1, retries: 0 };
  const q = new WorkQueue({
    clock,
    metrics: {
      added: () => seen.adds++,
      depth: (n) => (seen.depth = n),
      queueLatency: (s) => (seen.latency = s),
      workDuration: (s) => (seen.work = s),
      retried: () => seen.retries++,
    },
  });
  q.add("a");
  assert.equal(seen.depth, 1);
  await clock.advance(2000);
  await q.get();
  assert.equal(seen.latency, 2);
  await clock.advance(500);
  q.done("a");
  assert.equal(seen.work, 0.5);
  q.addRateLimited("a");
  assert.equal(seen.retries, 1);
  assert.equal(seen.adds, 1);
});

Deno.test("queue: shards take turns, so a key of a quiet shard does not wait behind a busy one", async () => {
  const q = new WorkQueue({ clock: new FakeClock(), shardOf: (k) => k.split("/")[0]! });
  for (let i = 0; i < 100; i++) q.add(`busy/${i}`);
  q.add("quiet/1");
  q.add("other/1");
  const order: string[] = [];
  for (let i = 0; i < 5; i++) {
    const k = (await q.get())!;
    order.push(k);
    q.done(k);
  }
  assert.deepEqual(order, ["busy/0", "quiet/1", "other/1", "busy/1", "busy/2"]);
  assert.equal(q.length, 97);
});

Deno.test("queue: a shard never holds more than maxInFlightPerShard workers", async () => {
  const q = new WorkQueue({
    clock: new FakeClock(),
    shardOf: (k) => k.split("/")[0]!,
    maxInFlightPerShard: 2,
  });
  for (let i = 0; i < 10; i++) q.add(`busy/${i}`);
  const a = await q.get();
  const b = await q.get();
  assert.deepEqual([a, b], ["busy/0", "busy/1"]);
  let third: string | undefined = "none yet";
  const waiting = q.get().then((k) => third = k);
  await Promise.resolve();
  assert.equal(third, "none yet", "a third worker waits: the shard is at its limit");
  q.add("quiet/1");
  await waiting;
  assert.equal(third, "quiet/1", "another shard's key runs at once");
  const fourth = q.get();
  q.done(a!);
  assert.equal(await fourth, "busy/2", "a freed slot lets the busy shard go on");
});

Deno.test("queue: addUnlessBackingOff leaves a key waiting out its backoff alone", async () => {
  const clock = new FakeClock();
  const q = new WorkQueue({ clock, baseDelayMs: 1000 });
  q.add("a");
  q.done((await q.get())!);
  q.addRateLimited("a");
  q.addUnlessBackingOff("a");
  assert.equal(q.length, 0, "a resync does not cut the backoff short");
  q.add("a");
  assert.equal(q.length, 1, "a real change does");
  q.addUnlessBackingOff("b");
  assert.equal(q.length, 2, "a key without failures is added");
});
