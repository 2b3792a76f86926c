import assert from "node:assert/strict";
import type { KubeClient } from "./contract.ts";
import { EventRecorder } from "./events.ts";
import { type KubeObject, parseKubeObject } from "./object.ts";
import type { ResourceType } from "./resource.ts";

type Call = { verb: "create" | "patch"; body: unknown };

/** Only create and patch are used by the recorder; the rest of the contract throws. */
function fakeClient(calls: Call[]): KubeClient {
  const unused = () => Promise.reject(new Error("unused"));
  return {
    get: unused,
    list: unused,
    listAll: unused,
    listMetadata: unused,
    update: unused,
    apply: unused,
    updateStatus: unused,
    patchStatus: unused,
    applyStatus: unused,
    delete: unused,
    watch: () => ({ [Symbol.asyncIterator]: () => ({ next: unused }) }),
    watchMetadata: () => ({ [Symbol.asyncIterator]: () => ({ next: unused }) }),
    create<T extends KubeObject>(type: ResourceType<T>, obj: KubeObject) {
      calls.push({ verb: "create", body: obj });
      return Promise.resolve(type.parse(obj));
    },
    patch<T extends KubeObject>(type: ResourceType<T>, name: string, patch: unknown) {
      calls.push({ verb: "patch", body: patch });
      return Promise.resolve(type.parse({ metadata: { name } }));
    },
  };
}

const subject = parseKubeObject({
  apiVersion: "v1",
  kind: "ConfigMap",
  metadata: { name: "b", namespace: "n", uid: "u1" },
});

/** A recorder on a clock the test moves (`clock.now`), its calls recorded. */
function clocked(options: { aggregateWindowMs?: number; burst?: number; refillMs?: number } = {}) {
  const calls: Call[] = [];
  const clock = { now: 1_000_000 };
  const r = new EventRecorder({
    client: fakeClient(calls),
    component: "op",
    ...options,
    now: () => clock.now,
  });
  return { calls, clock, r };
}

Deno.test("events: repeats within the window patch count and lastTimestamp of one Event", async () => {
  const { calls, clock, r } = clocked();
  r.record(subject, "Warning", "Failed", "it failed");
  await r.flush();
  clock.now += 1000;
  r.record(subject, "Warning", "Failed", "it failed");
  await r.flush();
  assert.equal(calls.length, 2);
  assert.equal(calls[0]?.verb, "create");
  assert.deepEqual(calls[1], {
    verb: "patch",
    body: { count: 2, lastTimestamp: new Date(clock.now).toISOString() },
  });
});

Deno.test("events: a flapping failure is limited per object, and skipped repeats still count", async () => {
  const { calls, clock, r } = clocked({ burst: 2, refillMs: 60_000 });
  for (let i = 0; i < 100; i++) {
    r.record(subject, "Warning", "Failed", "it failed");
    await r.flush();
    clock.now += 10;
  }
  assert.equal(calls.length, 2, "burst of two writes, the rest limited");
  clock.now += 60_000;
  r.record(subject, "Warning", "Failed", "it failed");
  await r.flush();
  assert.equal(calls.length, 3);
  assert.deepEqual(calls[2]?.body, { count: 101, lastTimestamp: new Date(clock.now).toISOString() });
});

Deno.test("events: after the window a repeat starts a new Event; messages are cut to 1024 characters", async () => {
  const { calls, clock, r } = clocked({ aggregateWindowMs: 1000 });
  r.record(subject, "Normal", "Applied", "x".repeat(5000));
  await r.flush();
  clock.now += 5000;
  r.record(subject, "Normal", "Applied", "x".repeat(5000));
  await r.flush();
  assert.deepEqual(calls.map((c) => c.verb), ["create", "create"]);
  const body = calls[1]?.body;
  assert.ok(body && typeof body === "object" && "message" in body && typeof body.message === "string");
  assert.equal(body.message.length, 1024);
});

Deno.test("events: start() leaves no listener on its signal per idle spell", async () => {
  // The signal lives as long as the operator; the recorder waits on it each time it runs out of Events.
  const calls: Call[] = [];
  const stop = new AbortController();
  const signal = stop.signal;
  let listeners = 0;
  const add = signal.addEventListener.bind(signal);
  const remove = signal.removeEventListener.bind(signal);
  signal.addEventListener = ((type: string, l: EventListener, o?: AddEventListenerOptions) => {
    listeners++;
    add(type, l, o);
  }) as typeof signal.addEventListener;
  signal.removeEventListener = ((type: string, l: EventListener) => {
    listeners--;
    remove(type, l);
  }) as typeof signal.removeEventListener;
  const r = new EventRecorder({ client: fakeClient(calls), component: "op" });
  const running = r.start(signal);
  for (let i = 0; i < 50; i++) {
    r.record({ ...subject, metadata: { ...subject.metadata, name: `b-${i}` } }, "Normal", "Applied", "ok");
    while (r.pending > 0) await new Promise((resolve) => setTimeout(resolve, 0));
    await new Promise((resolve) => setTimeout(resolve, 0)); // back to waiting
  }
  assert.equal(calls.length, 50);
  assert.ok(listeners <= 2, `${listeners} listeners left on the signal after 50 idle spells`);
  stop.abort();
  await running;
});

Deno.test("events: series past their window and buckets full again are forgotten, not kept up to 4 096", async () => {
  const { calls, clock, r } = clocked({ aggregateWindowMs: 1000, refillMs: 1000, burst: 2 });
  const object = (i: number) =>
    parseKubeObject({ kind: "ConfigMap", metadata: { name: `c${i}`, namespace: "n" } });
  for (let i = 0; i < 300; i++) r.record(object(i), "Normal", "Applied", "ok");
  await r.flush();
  assert.deepEqual(r.remembered, { series: 300, buckets: 300 });
  // Within the window: a repeat still folds into its Event, and nothing is forgotten.
  clock.now += 500;
  r.record(object(0), "Normal", "Applied", "ok");
  await r.flush();
  assert.equal(calls.at(-1)?.verb, "patch");
  assert.deepEqual(r.remembered, { series: 300, buckets: 300 });
  // Past the window (and the refill): only the newest is remembered.
  clock.now += 2001;
  r.record(object(1), "Normal", "Applied", "again");
  await r.flush();
  assert.deepEqual(r.remembered, { series: 1, buckets: 1 });
  assert.equal(calls.length, 302);
});
