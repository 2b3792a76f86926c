import assert from "node:assert/strict";
import { createLogger, createRuntimeMetrics } from "../observe/mod.ts";
import { KubeError, type KubeObject } from "../kube/mod.ts";
import { FakeClock, settle } from "./clock.ts";
import type { Informer, InformerHandler } from "./informer.ts";
import {
  type Action,
  Controller,
  done,
  type ReconcileContext,
  requeueAfter,
  TerminalError,
} from "./controller.ts";

function setup(reconcile: (key: string, ctx: ReconcileContext) => Promise<Action>, concurrency = 1) {
  const clock = new FakeClock();
  const metrics = createRuntimeMetrics();
  const lines: string[] = [];
  const c = new Controller({
    name: "test",
    reconcile,
    concurrency,
    clock,
    metrics,
    shutdownTimeoutMs: 1000,
    logger: createLogger({ write: (l) => lines.push(l) }),
    queue: { baseDelayMs: 100, maxDelayMs: 1000, qps: 1000, burst: 1000 },
  });
  const stop = new AbortController();
  const running = c.start(stop.signal);
  return {
    c,
    clock,
    metrics,
    lines,
    stop: async () => {
      stop.abort();
      await clock.advance(2000);
      await running;
    },
  };
}

Deno.test("controller: an error retries with backoff; success forgets the failures", async () => {
  let calls = 0;
  const h = setup(() => {
    calls++;
    return calls < 3 ? Promise.reject(new Error("boom")) : Promise.resolve(done);
  });
  h.c.enqueue("ns/a");
  await h.clock.advance(0);
  assert.equal(calls, 1);
  await h.clock.advance(99);
  assert.equal(calls, 1);
  await h.clock.advance(1);
  assert.equal(calls, 2);
  await h.clock.advance(200);
  assert.equal(calls, 3);
  assert.equal(h.c.queue.retries("ns/a"), 0);
  assert.equal(h.metrics.reconcileErrors.get({ controller: "test" }), 2);
  assert.equal(h.metrics.reconcileTotal.get({ controller: "test", result: "success" }), 1);
  const err = h.lines.map((l) => JSON.parse(l)).find((r) => r.msg === "Reconciler error");
  assert.equal(err.error, "boom");
  assert.equal(err.controller, "test");
  assert.equal(err.namespace, "ns");
  assert.equal(err.name, "a");
  assert.match(err.reconcileID, /^[0-9a-f-]{36}$/);
  await h.stop();
});

Deno.test("controller: a TerminalError is not retried", async () => {
  let calls = 0;
  const h = setup(() => {
    calls++;
    return Promise.reject(new TerminalError("invalid spec"));
  });
  h.c.enqueue("ns/a");
  await h.clock.advance(60_000);
  assert.equal(calls, 1);
  assert.equal(h.metrics.reconcileTerminalErrors.get({ controller: "test" }), 1);
  await h.stop();
});

Deno.test("controller: a write refused because the object's namespace is gone is not retried; any other 404 is", async () => {
  const gone = (namespace: string) =>
    new KubeError(404, "NotFound", `PATCH ...: 404 NotFound: namespaces "${namespace}" not found`, {
      subject: { kind: "namespaces", name: namespace },
    });
  const calls: Record<string, number> = {};
  const h = setup((key) => {
    calls[key] = (calls[key] ?? 0) + 1;
    // ns/a: its own namespace is gone; ns/b: another namespace (the config's) is, which may come back;
    // ns/c: the object itself is not found.
    return Promise.reject(
      key === "ns/a"
        ? gone("ns")
        : key === "ns/b"
        ? gone("cfg")
        : new KubeError(404, "NotFound", "not found", {
          subject: { kind: "backrestvolsyncbindings", name: "c" },
        }),
    );
  });
  for (const k of ["ns/a", "ns/b", "ns/c"]) h.c.enqueue(k);
  await h.clock.advance(10_000);
  assert.equal(calls["ns/a"], 1);
  assert.ok(calls["ns/b"]! > 3, `ns/b retried: ${calls["ns/b"]}`);
  assert.ok(calls["ns/c"]! > 3, `ns/c retried: ${calls["ns/c"]}`);
  assert.equal(h.metrics.reconcileTerminalErrors.get({ controller: "test" }), 1);
  const line = h.lines.map((l) => JSON.parse(l)).find((r) => r.name === "a");
  assert.match(line.msg, /namespace is gone.*not retried/);
  await h.stop();
});

Deno.test("controller: requeueAfter brings the key back after the delay", async () => {
  const times: number[] = [];
  const h = setup(() => {
    times.push(h.clock.now());
    return Promise.resolve(times.length < 3 ? requeueAfter(5000) : done);
  });
  h.c.enqueue("k");
  await h.clock.advance(20_000);
  assert.deepEqual(times.map((t) => t - (times[0] ?? 0)), [0, 5000, 10000]);
  assert.equal(h.metrics.reconcileTotal.get({ controller: "test", result: "requeue_after" }), 2);
  await h.stop();
});

Deno.test("controller: one key is never reconciled twice at once, even with many workers", async () => {
  let running = 0;
  let maxRunning = 0;
  let calls = 0;
  const gates: (() => void)[] = [];
  const h = setup(() => {
    calls++;
    running++;
    maxRunning = Math.max(maxRunning, running);
    return new Promise<Action>((resolve) =>
      gates.push(() => {
        running--;
        resolve(done);
      })
    );
  }, 4);
  h.c.enqueue("k");
  await settle();
  h.c.enqueue("k");
  h.c.enqueue("k");
  await settle();
  assert.equal(calls, 1);
  gates.shift()?.();
  await settle();
  assert.equal(calls, 2, "re-added while in flight: runs once more");
  gates.shift()?.();
  await settle();
  assert.equal(calls, 2);
  assert.equal(maxRunning, 1);
  await h.stop();
});

Deno.test("controller: shutdown lets in-flight reconciles finish, then aborts stragglers after the bound", async () => {
  const clock = new FakeClock();
  const seen: string[] = [];
  const c = new Controller({
    name: "t",
    clock,
    concurrency: 2,
    shutdownTimeoutMs: 1000,
    reconcile: (key, ctx) =>
      new Promise<Action>((resolve) => {
        let settled = false;
        if (key === "quick") {
          clock.timer(() => {
            settled = true;
            resolve(done);
          }, 500);
        }
        ctx.signal.addEventListener("abort", () => {
          if (settled) return;
          seen.push(`${key} aborted`);
          resolve(done);
        });
      }).then((a) => {
        seen.push(`${key} finished`);
        return a;
      }),
  });
  const stop = new AbortController();
  const running = c.start(stop.signal);
  c.enqueue("quick");
  c.enqueue("slow");
  await settle();
  stop.abort();
  c.enqueue("late");
  await clock.advance(600);
  assert.deepEqual(seen, ["quick finished"]);
  await clock.advance(500);
  await running;
  assert.deepEqual(seen, ["quick finished", "slow aborted", "slow finished"]);
});

Deno.test("controller: a key mapped twice from one event is reconciled once, even with an idle worker", async () => {
  let runs = 0;
  const { c, stop } = setup(() => {
    runs++;
    return Promise.resolve(done);
  }, 2);
  await settle(); // the workers are waiting for keys
  let handler: InformerHandler<KubeObject> | undefined;
  const informer = { addHandler: (h: InformerHandler<KubeObject>) => handler = h } as unknown as Informer<
    KubeObject
  >;
  // E.g. a Binding's own key and the Bindings claiming its repo, which include itself.
  c.watch(informer, (e) => [`n/${e.object.metadata.name}`, "n/a", "n/a"]);
  handler!({ type: "add", object: { metadata: { namespace: "n", name: "a" } } });
  await settle();
  assert.equal(runs, 1);
  await stop();
});

Deno.test("controller: log lines name what the key stands for (ns/name by default, or as the controller says)", async () => {
  const clock = new FakeClock();
  const lines: string[] = [];
  const make = (name: string, logFields?: (key: string) => Record<string, string>) =>
    new Controller({
      name,
      clock,
      reconcile: (_key, ctx) => (ctx.log.info("reconciled"), Promise.resolve(done)),
      logger: createLogger({ write: (l) => lines.push(l) }),
      ...(logFields ? { logFields } : {}),
    });
  const plain = make("plain");
  const typed = make("typed", (key) => {
    const [namespace, kind, name] = key.split("/");
    return { namespace: namespace!, kind: kind!, name: name! };
  });
  const stop = new AbortController();
  const running = [plain.start(stop.signal), typed.start(stop.signal)];
  plain.enqueue("app/b");
  typed.enqueue("app/ReplicationSource/data");
  await clock.advance(0);
  await settle();
  const logged = lines.map((l) => JSON.parse(l)).filter((l) => l.msg === "reconciled");
  const of = (c: string) => logged.find((l) => l.controller === c);
  assert.equal(of("plain")?.namespace, "app");
  assert.equal(of("plain")?.name, "b");
  assert.equal(of("typed")?.namespace, "app");
  assert.equal(of("typed")?.kind, "ReplicationSource");
  assert.equal(of("typed")?.name, "data");
  stop.abort();
  await clock.advance(60_000);
  await Promise.all(running);
});

Deno.test("controller: before it starts nothing is queued; starting queues every cached object once", async () => {
  const clock = new FakeClock();
  const reconciled: string[] = [];
  const c = new Controller({
    name: "t",
    clock,
    reconcile: (key) => (reconciled.push(key), Promise.resolve(done)),
  });
  const cached = new Map<string, KubeObject>();
  let handler: InformerHandler<KubeObject> | undefined;
  const informer = {
    addHandler: (h: InformerHandler<KubeObject>) => handler = h,
    store: { list: () => [...cached.values()] },
  } as unknown as Informer<KubeObject>;
  c.watch(informer);
  const obj = (name: string): KubeObject => ({ metadata: { namespace: "n", name } });
  // While another replica leads, objects come and go, and someone asks for a key directly.
  for (const name of ["kept", "gone"]) {
    cached.set(name, obj(name));
    handler!({ type: "add", object: obj(name) });
  }
  cached.delete("gone");
  handler!({ type: "delete", object: obj("gone") });
  handler!({ type: "resync", object: obj("kept") });
  c.enqueue("n/also-gone");
  assert.equal(c.queue.length, 0, "a controller that has not started holds no keys");
  const stop = new AbortController();
  const running = c.start(stop.signal);
  await clock.advance(0);
  await settle();
  assert.deepEqual(reconciled, ["n/kept"], "what the cache holds, once; nothing for objects gone");
  handler!({ type: "add", object: obj("new") });
  await clock.advance(0);
  await settle();
  assert.deepEqual(reconciled, ["n/kept", "n/new"], "started, events queue keys");
  stop.abort();
  await clock.advance(2000);
  await running;
});
