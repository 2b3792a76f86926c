import assert from "node:assert/strict";
import { FakeClock, settle } from "./clock.ts";
import { Controller, done } from "./controller.ts";
import { type Cache, Manager } from "./manager.ts";

/** A cache that syncs at once and whose loop runs until stopped, or ends early when told to. */
function cache(name: string) {
  let end: () => void = () => {};
  const c: Cache & { die(): void } = {
    name,
    hasSynced: () => true,
    waitForSync: () => Promise.resolve(true),
    start: (signal) =>
      new Promise<void>((resolve) => {
        end = resolve;
        signal.addEventListener("abort", () => resolve(), { once: true });
      }),
    die: () => end(),
  };
  return c;
}

Deno.test("manager: healthy while its loops run; a cache loop that ends turns it unhealthy", async () => {
  const c = cache("bindings");
  const idle = new Controller({ name: "idle", reconcile: () => Promise.resolve(done) });
  const m = new Manager({ caches: [c], controllers: [idle] });
  const stop = new AbortController();
  const running = m.start(stop.signal);
  await settle();
  assert.equal(m.healthy(), true);
  assert.equal(m.ready(), true);
  c.die();
  await settle();
  assert.equal(m.healthy(), false, "a dead watch loop is a reason to restart");
  stop.abort();
  await running;
  assert.equal(m.healthy(), false, "stopped");
});

Deno.test("manager: a reconcile running past stuckAfterMs turns it unhealthy until it ends", async () => {
  const clock = new FakeClock();
  let release: () => void = () => {};
  const controller = new Controller({
    name: "c",
    clock,
    stuckAfterMs: 60_000,
    reconcile: () => new Promise((resolve) => release = () => resolve(done)),
  });
  const m = new Manager({ caches: [cache("x")], controllers: [controller], clock });
  const stop = new AbortController();
  const running = m.start(stop.signal);
  await settle();
  controller.enqueue("ns/a");
  await settle();
  await clock.advance(59_000);
  assert.equal(m.healthy(), true, "slow, not stuck");
  await clock.advance(2_000);
  assert.equal(m.healthy(), false, "past stuckAfterMs");
  release();
  await settle();
  assert.equal(m.healthy(), true);
  stop.abort();
  await running;
});
