/**
 * Leader election on a coordination.k8s.io/v1 Lease with client-go's semantics: a candidate takes the
 * Lease when it is free or when its holder has not renewed it for `leaseDuration` as observed on the
 * candidate's own clock (no trust in remote clocks); the leader renews every `retryPeriod` and gives up
 * leadership if it cannot renew within `renewDeadline`; on shutdown it releases the Lease (holder cleared,
 * duration 1 s, like client-go's ReleaseOnCancel) so a successor takes over at once.
 * Rules: the leader's work gets a signal that aborts when leadership ends, and the Lease keeps being
 * renewed until that work has finished, so two leaders never overlap. A renewal round, every request in it
 * included, ends at `renewDeadline` (as client-go bounds it with one context), however slowly the apiserver
 * answers; when it fails, the work's signal aborts with a {@linkcode LeadershipLostError} that says how
 * long the Lease still protects it, and the work must stop within that time.
 */

import { isConflict, type KubeClient, type Lease, leases, type LeaseSpec, microTime } from "../kube/mod.ts";
import { type Logger, nullLogger, type RuntimeMetrics } from "../observe/mod.ts";
import { type Clock, sleep, systemClock } from "./clock.ts";

/** The client calls leader election needs. */
export type LeaseClient = Pick<KubeClient, "get" | "create" | "update">;

/** Options of {@linkcode LeaderElector}. */
export interface LeaderElectionOptions {
  /** Reads, creates and updates the Lease. */
  client: LeaseClient;
  /** Namespace of the Lease (the operator's own). */
  namespace: string;
  /** Lease name, e.g. `backrest-volsync-operator.backrest.garethgeorge.com`. */
  name: string;
  /** This candidate (pod name plus a random suffix, as controller-runtime). */
  identity: string;
  /** Default 15 s. */
  leaseDurationMs?: number | undefined;
  /** Default 10 s. */
  renewDeadlineMs?: number | undefined;
  /** Default 2 s. */
  retryPeriodMs?: number | undefined;
  /** Release the Lease when stopped (default true). */
  releaseOnCancel?: boolean | undefined;
  /** Time source for Lease ages and retry waits (default: the system clock). */
  clock?: Clock | undefined;
  /** Logs as its `leader-election` child (default: none). */
  logger?: Logger | undefined;
  /** Sets `leader_election_master_status` (default: none). */
  metrics?: RuntimeMetrics | undefined;
  /** Source of the retry jitter in [0, 1) (default `Math.random`). */
  random?: (() => number) | undefined;
}

/** Thrown by `run()` when leadership was lost (the process should exit and start over). */
export class LeadershipLostError extends Error {
  /** Always `"LeadershipLostError"`. */
  override readonly name = "LeadershipLostError";
  /**
   * As the abort reason of the leader's work: how long (ms) until another candidate may take the Lease,
   * less a safety margin; in-flight work must end within it.
   */
  readonly graceMs: number;

  /** `options.graceMs` defaults to 0 (stop at once); negative values become 0. */
  constructor(message: string, options?: ErrorOptions & { graceMs?: number }) {
    super(message, options);
    this.graceMs = Math.max(0, options?.graceMs ?? 0);
  }
}

/** One candidate in a leader election. */
export class LeaderElector {
  readonly #o: LeaderElectionOptions;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #leaseMs: number;
  readonly #renewMs: number;
  readonly #retryMs: number;
  #observed: LeaseSpec | undefined;
  #observedJson = "";
  #observedAt = 0;
  #leader = false;
  #lost = false;

  /** Throws `RangeError` unless leaseDuration > renewDeadline > 1.2 × retryPeriod. */
  constructor(options: LeaderElectionOptions) {
    this.#o = options;
    this.#clock = options.clock ?? systemClock;
    this.#log = (options.logger ?? nullLogger()).named("leader-election");
    this.#leaseMs = options.leaseDurationMs ?? 15_000;
    this.#renewMs = options.renewDeadlineMs ?? 10_000;
    this.#retryMs = options.retryPeriodMs ?? 2_000;
    if (!(this.#leaseMs > this.#renewMs && this.#renewMs > this.#retryMs * 1.2)) {
      throw new RangeError("Leader election needs leaseDuration > renewDeadline > 1.2 × retryPeriod");
    }
  }

  /** Whether this candidate currently holds the Lease. */
  isLeader(): boolean {
    return this.#leader;
  }

  /**
   * False once this candidate lost the Lease it led on (until the process starts over), or while it leads
   * on a Lease it last renewed more than `leaseDuration` ago; a follower's is always current.
   */
  leaseCurrent(): boolean {
    if (this.#lost) return false;
    return !this.#leader || this.#clock.now() - this.#observedAt < this.#leaseMs;
  }

  /** The holder this candidate last observed (may be itself or ""). */
  get observedHolder(): string | undefined {
    return this.#observed?.holderIdentity;
  }

  #setLeader(v: boolean): void {
    this.#leader = v;
    this.#o.metrics?.leaderElectionMasterStatus.set({ name: this.#o.name }, v ? 1 : 0);
  }

  #observe(spec: LeaseSpec): void {
    const json = JSON.stringify(spec);
    if (json !== this.#observedJson) {
      this.#observed = spec;
      this.#observedJson = json;
      this.#observedAt = this.#clock.now();
    }
  }

  /**
   * One attempt to acquire or renew; true when this candidate holds the Lease afterwards. With `deadline`
   * (a clock time), no request of the attempt outlives it.
   */
  async tryAcquireOrRenew(signal?: AbortSignal, deadline?: number): Promise<boolean> {
    const { client, namespace, name, identity } = this.#o;
    const now = this.#clock.now();
    const left = () => Math.max(1, Math.min(this.#renewMs, (deadline ?? Infinity) - this.#clock.now()));
    // Each request gets what is left of the round, not a full renewDeadline of its own.
    const call = () => ({ namespace, signal, timeoutMs: left() });
    const fresh: LeaseSpec = {
      holderIdentity: identity,
      leaseDurationSeconds: Math.round(this.#leaseMs / 1000) || 1,
      acquireTime: microTime(now),
      renewTime: microTime(now),
      leaseTransitions: 0,
    };
    // A write that lands makes `spec` the Lease this candidate last saw; one that conflicts lost the race.
    const held = async (write: Promise<unknown>, spec: LeaseSpec) => {
      try {
        await write;
      } catch (e) {
        if (isConflict(e)) return false;
        throw e;
      }
      this.#observe(spec);
      this.#observedAt = now;
      return true;
    };
    const lease = await client.get(leases, name, call());
    if (!lease) {
      const created = client.create(leases, {
        apiVersion: "coordination.k8s.io/v1",
        kind: "Lease",
        metadata: { name, namespace },
        spec: fresh,
      }, call());
      return await held(created, fresh);
    }
    const spec = lease.spec ?? {};
    this.#observe(spec);
    const holder = spec.holderIdentity ?? "";
    const durationMs = (spec.leaseDurationSeconds ?? this.#leaseMs / 1000) * 1000;
    if (holder !== "" && holder !== identity && this.#observedAt + durationMs > now) return false;
    const next: LeaseSpec = holder === identity
      ? {
        ...fresh,
        acquireTime: spec.acquireTime ?? fresh.acquireTime,
        leaseTransitions: spec.leaseTransitions ?? 0,
      }
      : { ...fresh, leaseTransitions: (spec.leaseTransitions ?? 0) + 1 };
    return await held(client.update(leases, withSpec(lease, next), call()), next);
  }

  async #attempt(signal: AbortSignal, deadline?: number): Promise<boolean> {
    try {
      return await this.tryAcquireOrRenew(signal, deadline);
    } catch (e) {
      if (!signal.aborted) {
        this.#log.error("Error acquiring or renewing the lease", e, { lease: this.#o.name });
      }
      return false;
    }
  }

  #jittered(): number {
    return this.#retryMs * (1 + 0.2 * (this.#o.random ?? Math.random)());
  }

  /**
   * Campaigns until leader, runs `lead(signal)` while leading, and returns after `signal` aborts and
   * `lead` has finished (releasing the Lease). Throws {@linkcode LeadershipLostError} when a renewal
   * failed for `renewDeadline` (after `lead` has finished).
   */
  async run(signal: AbortSignal, lead: (signal: AbortSignal) => Promise<void>): Promise<void> {
    this.#setLeader(false);
    this.#log.info("Attempting to acquire leader lease", { lease: `${this.#o.namespace}/${this.#o.name}` });
    while (!signal.aborted) {
      if (await this.#attempt(signal)) break;
      await sleep(this.#clock, this.#jittered(), signal);
    }
    if (signal.aborted) return;
    this.#setLeader(true);
    this.#log.info("Successfully acquired lease", {
      lease: `${this.#o.namespace}/${this.#o.name}`,
      identity: this.#o.identity,
    });

    const leading = new AbortController();
    const stopLeading = () => leading.abort(signal.reason);
    signal.addEventListener("abort", stopLeading, { once: true });
    let work = true;
    const workDone = lead(leading.signal).finally(() => {
      work = false;
      leading.abort();
    });
    // Renew while leading or while the leader's work is still finishing.
    const renewals = new AbortController();
    workDone.catch(() => {}).then(() => renewals.abort());
    let lost = false;
    // The Lease we last wrote says we renewed then; a follower counts leaseDuration from when it saw it.
    let renewedAt = this.#observedAt;
    while (work) {
      const started = this.#clock.now();
      const round = this.#renewRound(renewals.signal, started + this.#renewMs, () => work);
      const renewed = await round;
      if (!work) break;
      if (!renewed) {
        lost = true;
        this.#lost = true;
        this.#setLeader(false);
        const graceMs = renewedAt + this.#leaseMs - this.#retryMs - this.#clock.now();
        this.#log.error("Leader lease lost", new Error(`no renewal within ${this.#renewMs} ms`), {
          lease: this.#o.name,
          graceMs,
        });
        leading.abort(new LeadershipLostError("Leader election lost", { graceMs }));
        break;
      }
      renewedAt = this.#observedAt;
      await sleep(this.#clock, this.#retryMs, renewals.signal);
    }
    signal.removeEventListener("abort", stopLeading);
    let workError: unknown;
    try {
      await workDone;
    } catch (e) {
      workError = e;
    }
    if (!lost && this.#leader && (this.#o.releaseOnCancel ?? true)) await this.release();
    this.#setLeader(false);
    if (lost) throw new LeadershipLostError("Leader election lost", { cause: workError });
    if (workError !== undefined) throw workError;
  }

  /**
   * Tries to renew every `retryPeriod` until it works or `deadline` (a clock time) passes; every request of
   * the round is cut off at the deadline. False when the round ended without a renewal.
   */
  async #renewRound(stop: AbortSignal, deadline: number, working: () => boolean): Promise<boolean> {
    const round = new AbortController();
    const cancel = this.#clock.timer(
      () => round.abort(new DOMException("renew deadline passed", "TimeoutError")),
      deadline - this.#clock.now(),
    );
    const onStop = () => round.abort(stop.reason);
    stop.addEventListener("abort", onStop, { once: true });
    try {
      while (working() && !round.signal.aborted) {
        if (await this.#attempt(round.signal, deadline)) return true;
        if (!working()) return false;
        await sleep(this.#clock, this.#retryMs, round.signal);
      }
      return false;
    } finally {
      cancel();
      stop.removeEventListener("abort", onStop);
    }
  }

  /** Clears the holder (if this candidate holds the Lease) so a successor can take it at once. */
  async release(): Promise<boolean> {
    const { client, namespace, name, identity } = this.#o;
    const call = { namespace, timeoutMs: this.#renewMs };
    try {
      const lease = await client.get(leases, name, call);
      if (!lease || lease.spec?.holderIdentity !== identity) return false;
      const now = microTime(this.#clock.now());
      await client.update(
        leases,
        withSpec(lease, {
          holderIdentity: "",
          leaseDurationSeconds: 1,
          acquireTime: now,
          renewTime: now,
          leaseTransitions: lease.spec?.leaseTransitions ?? 0,
        }),
        call,
      );
      this.#log.info("Released leader lease", { lease: name });
      return true;
    } catch (e) {
      this.#log.error("Failed to release the leader lease", e, { lease: name });
      return false;
    }
  }
}

function withSpec(lease: Lease, spec: LeaseSpec): Lease {
  return { ...lease, spec };
}
