import assert from "node:assert/strict";
import { KubeError, type KubeObject, type ListPage, type WatchEvent } from "../kube/mod.ts";
import { FakeClock, settle } from "./clock.ts";
import { Informer } from "./informer.ts";
import type { ListWatch } from "./watcher.ts";

/** Two namespaces' list+watch: each watch opens, then fails when its namespace's `breaks` says so. */
function source() {
  const breaks = new Map<string, (e: Error) => void>();
  const lw: ListWatch<KubeObject> = {
    list: (o): Promise<ListPage<KubeObject>> =>
      Promise.resolve({ items: [], resourceVersion: `${o.namespace}-1` }),
    async *watch(o): AsyncGenerator<WatchEvent<KubeObject>> {
      o.onOpen?.();
      await new Promise<void>((_, reject) => {
        breaks.set(o.namespace ?? "", reject);
        o.signal.addEventListener("abort", () => reject(o.signal.reason), { once: true });
      });
      yield* []; // never reached: the watch ends by failing
    },
  };
  return { lw, breaks };
}

Deno.test("informer: current only while synced and every namespace's watch is open", async () => {
  const { lw, breaks } = source();
  const clock = new FakeClock();
  const informer = new Informer({
    name: "things",
    listWatch: lw,
    namespaces: ["a", "b"],
    clock,
    backoff: () => 1000,
  });
  const seen: boolean[] = [];
  informer.onCurrentChange((c) => seen.push(c));
  assert.equal(informer.isCurrent(), false);
  const stop = new AbortController();
  const running = informer.start(stop.signal);
  await settle();
  assert.ok(informer.hasSynced());
  assert.equal(informer.isCurrent(), true);
  breaks.get("b")!(new KubeError(0, "NetworkError", "stream broke"));
  await settle();
  assert.equal(informer.isCurrent(), false, "one namespace's broken watch is enough");
  assert.ok(informer.hasSynced(), "synced stays true: the cache still holds its objects");
  await clock.advance(1000);
  assert.equal(informer.isCurrent(), true);
  assert.deepEqual(seen, [true, false, true]);
  stop.abort();
  await running;
  assert.equal(informer.isCurrent(), false);
});
