import assert from "node:assert/strict";
import { KubeError, type KubeObject, parseKubeObject, type ResourceType } from "../kube/mod.ts";
import { FakeClock, settle } from "./clock.ts";
import { LeaderElector, LeadershipLostError, type LeaseClient } from "./leader_election.ts";

/** One Lease in memory, with optimistic concurrency like the apiserver. */
class FakeLeases implements LeaseClient {
  stored: KubeObject | undefined;
  rv = 0;
  failing = false;
  /** Requests get no answer until their signal aborts (an apiserver behind a stalled proxy). */
  hanging = false;
  /** Timeouts the caller asked for, per request. */
  timeouts: number[] = [];

  #check(): void {
    if (this.failing) throw new KubeError(0, "NetworkError", "apiserver unreachable");
  }

  get<T extends KubeObject>(
    type: ResourceType<T>,
    _name?: string,
    o?: { signal?: AbortSignal | undefined; timeoutMs?: number | undefined },
  ): Promise<T | null> {
    if (o?.timeoutMs !== undefined) this.timeouts.push(o.timeoutMs);
    if (this.hanging) {
      return new Promise((_, reject) => {
        o?.signal?.addEventListener("abort", () => reject(o.signal?.reason), { once: true });
      });
    }
    this.#check();
    return Promise.resolve(this.stored ? type.parse(structuredClone(this.stored)) : null);
  }

  create<T extends KubeObject>(type: ResourceType<T>, obj: KubeObject): Promise<T> {
    this.#check();
    if (this.stored) return Promise.reject(new KubeError(409, "AlreadyExists", "exists"));
    this.stored = parseKubeObject(
      structuredClone({ ...obj, metadata: { ...obj.metadata, resourceVersion: `${++this.rv}` } }),
    );
    return Promise.resolve(type.parse(structuredClone(this.stored)));
  }

  update<T extends KubeObject>(type: ResourceType<T>, obj: KubeObject): Promise<T> {
    this.#check();
    if (obj.metadata.resourceVersion !== this.stored?.metadata.resourceVersion) {
      return Promise.reject(new KubeError(409, "Conflict", "stale"));
    }
    this.stored = parseKubeObject(
      structuredClone({ ...obj, metadata: { ...obj.metadata, resourceVersion: `${++this.rv}` } }),
    );
    return Promise.resolve(type.parse(structuredClone(this.stored)));
  }

  get holder(): unknown {
    const spec = this.stored?.spec;
    return spec && typeof spec === "object" && "holderIdentity" in spec ? spec.holderIdentity : undefined;
  }
}

function candidate(client: LeaseClient, clock: FakeClock, identity: string, releaseOnCancel = true) {
  const elector = new LeaderElector({
    client,
    clock,
    namespace: "ns",
    name: "lock",
    identity,
    releaseOnCancel,
    random: () => 0,
  });
  const stop = new AbortController();
  const led: { started: number; ended?: number; reason?: unknown }[] = [];
  const result = elector.run(stop.signal, (signal) => {
    const entry: { started: number; ended?: number; reason?: unknown } = { started: clock.now() };
    led.push(entry);
    return new Promise<void>((resolve) => {
      signal.addEventListener("abort", () => {
        entry.ended = clock.now();
        entry.reason = signal.reason;
        resolve();
      }, { once: true });
    });
  }).then(() => undefined, (e: unknown) => e);
  return { elector, led, stop: () => stop.abort(), result };
}

Deno.test("leader election: the first candidate acquires; a second waits while the leader renews", async () => {
  const clock = new FakeClock();
  const leases = new FakeLeases();
  const a = candidate(leases, clock, "a");
  await clock.advance(0);
  assert.ok(a.elector.isLeader());
  const b = candidate(leases, clock, "b");
  await clock.advance(60_000);
  assert.ok(a.elector.isLeader());
  assert.ok(!b.elector.isLeader());
  assert.equal(leases.holder, "a");
  a.stop();
  b.stop();
  await clock.advance(10);
  assert.equal(await a.result, undefined);
});

Deno.test("leader election: a dead leader is replaced once its lease expires on the follower's clock", async () => {
  const clock = new FakeClock();
  const leases = new FakeLeases();
  const a = candidate(leases, clock, "a", false);
  await clock.advance(0);
  const b = candidate(leases, clock, "b");
  await clock.advance(1000);
  a.stop(); // stops renewing; no release (as a crash)
  await clock.advance(0);
  const diedAt = clock.now();
  while (!b.elector.isLeader()) await clock.advance(100);
  const took = clock.now() - diedAt;
  assert.ok(took >= 13_000 && took <= 15_000 + 2_000, `took ${took}`);
  const spec = leases.stored?.spec;
  assert.ok(spec && typeof spec === "object" && "leaseTransitions" in spec && spec.leaseTransitions === 1);
  b.stop();
  await clock.advance(10);
});

Deno.test("leader election: on shutdown the lease is released and a successor takes over at once", async () => {
  const clock = new FakeClock();
  const leases = new FakeLeases();
  const a = candidate(leases, clock, "a");
  await clock.advance(0);
  const b = candidate(leases, clock, "b");
  await clock.advance(500);
  a.stop();
  await clock.advance(0);
  assert.equal(leases.holder, "");
  const t0 = clock.now();
  while (!b.elector.isLeader()) await clock.advance(100);
  assert.ok(clock.now() - t0 <= 2_000, "within one retry period");
  assert.equal(a.led[0]?.ended, t0);
  b.stop();
  await clock.advance(10);
});

Deno.test("leader election: no renewal within renewDeadline ends leadership with LeadershipLostError", async () => {
  const clock = new FakeClock();
  const leases = new FakeLeases();
  const a = candidate(leases, clock, "a");
  await clock.advance(0);
  assert.ok(a.elector.isLeader());
  leases.failing = true;
  const t0 = clock.now();
  await clock.advance(13_000);
  await settle();
  assert.ok(!a.elector.isLeader());
  const ended = a.led[0]?.ended ?? Infinity;
  assert.ok(ended - t0 <= 12_000, `lost after ${ended - t0} ms`);
  assert.ok(a.led[0]?.reason instanceof LeadershipLostError);
  assert.ok((await a.result) instanceof LeadershipLostError);
});

Deno.test("leader election: a renewal round ends at renewDeadline however slowly the apiserver answers; the work gets only the Lease's remaining time", async () => {
  const clock = new FakeClock();
  const leases = new FakeLeases();
  const a = candidate(leases, clock, "a");
  await clock.advance(0);
  assert.ok(a.elector.isLeader());
  const lastRenewal = clock.now();
  leases.hanging = true;
  leases.timeouts = [];
  for (let t = 0; t < 30_000 && a.elector.isLeader(); t += 500) await clock.advance(500);
  await settle();
  assert.ok(!a.elector.isLeader(), "leadership ended although no answer ever came");
  const ended = a.led[0]?.ended ?? Infinity;
  // Renewals every 2 s, a round of 10 s: lost no later than 12 s after the last renewal, before the 15 s
  // Lease could pass to another candidate.
  assert.ok(ended - lastRenewal <= 12_000, `lost ${ended - lastRenewal} ms after the last renewal`);
  const reason = a.led[0]?.reason;
  assert.ok(reason instanceof LeadershipLostError);
  assert.ok(
    reason.graceMs > 0 && ended + reason.graceMs <= lastRenewal + 15_000,
    `grace ${reason.graceMs} ms ends before the Lease could be taken`,
  );
  assert.ok(leases.timeouts.every((t) => t <= 10_000), "no request gets more than the round's time");
  assert.ok((await a.result) instanceof LeadershipLostError);
});

Deno.test("leader election: the lease keeps being renewed while the leader's work finishes", async () => {
  const clock = new FakeClock();
  const leases = new FakeLeases();
  const stop = new AbortController();
  const elector = new LeaderElector({
    client: leases,
    clock,
    namespace: "ns",
    name: "lock",
    identity: "a",
    random: () => 0,
  });
  let finish: () => void = () => {};
  const result = elector.run(stop.signal, (signal) =>
    new Promise<void>((resolve) => {
      signal.addEventListener("abort", () => (finish = resolve), { once: true });
    }));
  await clock.advance(0);
  stop.abort();
  const rvAtStop = leases.rv;
  await clock.advance(20_000);
  assert.ok(leases.rv > rvAtStop + 5, "renewed during the drain");
  assert.equal(leases.holder, "a");
  finish();
  await clock.advance(10);
  await result;
  assert.equal(leases.holder, "");
});

Deno.test("leader election: rejects inconsistent timings", () => {
  assert.throws(
    () =>
      new LeaderElector({
        client: new FakeLeases(),
        namespace: "n",
        name: "l",
        identity: "i",
        leaseDurationMs: 5000,
        renewDeadlineMs: 6000,
      }),
    RangeError,
  );
});
