/**
 * The work queue, with client-go's guarantees: a key is queued at most once however often it is added; a
 * key is processed by at most one worker at a time, and a key added while in flight is processed again
 * after `done()`; failures back off per key (exponential, capped) and all retries share a token bucket.
 * `shutDown()` stops intake at once (no new `get()`s succeed) while in-flight keys may finish
 * (`drain(timeoutMs)` waits for them). Fairness: keys fall into shards (e.g. namespaces); `get()` takes
 * from the shards in turn, and a shard never holds more than `maxInFlightPerShard` workers, so one shard
 * with thousands of queued or slow keys cannot make another shard's key wait for them.
 */

import { type Clock, systemClock } from "./clock.ts";
import { exponentialBackoff, TokenBucket } from "./rate_limit.ts";

/** Optional hooks for the `workqueue_*` metrics. */
export interface QueueMetrics {
  /** Keys now waiting (not in flight), after each change. */
  depth(n: number): void;
  /** One `add`, whether or not the key was already queued. */
  added(): void;
  /** Seconds between add and get. */
  queueLatency(seconds: number): void;
  /** Seconds between get and done. */
  workDuration(seconds: number): void;
  /** One rate-limited re-add (a failure's retry). */
  retried(): void;
}

/** Options of {@linkcode WorkQueue}. */
export interface WorkQueueOptions {
  /** Time source for delays, backoff and latencies (default: the system clock). */
  clock?: Clock | undefined;
  /** First retry delay (default 5 ms, like controller-runtime). */
  baseDelayMs?: number | undefined;
  /** Largest retry delay (default 1000 s, like controller-runtime). */
  maxDelayMs?: number | undefined;
  /** Overall retry rate (default 10/s with burst 100, like client-go). */
  qps?: number | undefined;
  /** Retries allowed at once before `qps` paces them (default 100). */
  burst?: number | undefined;
  /** Hooks for the `workqueue_*` metrics; absent: none. */
  metrics?: QueueMetrics | undefined;
  /** The shard of a key (default: one shard for all, i.e. plain FIFO). */
  shardOf?: ((key: string) => string) | undefined;
  /** Keys of one shard in flight at once (default: no limit). */
  maxInFlightPerShard?: number | undefined;
}

/** A de-duplicating, rate-limited, delaying queue of string keys. */
export class WorkQueue {
  readonly #clock: Clock;
  readonly #backoff: (attempt: number) => number;
  readonly #bucket: TokenBucket;
  readonly #metrics: QueueMetrics | undefined;
  readonly #shardOf: (key: string) => string;
  readonly #shardLimit: number;
  /** Queued keys per shard, FIFO; a shard is here only while it has keys. */
  readonly #shards = new Map<string, string[]>();
  /** Shards with queued keys in the order they get their next turn. */
  #ring: string[] = [];
  #queued = 0;
  readonly #inFlightByShard = new Map<string, number>();
  readonly #dirty = new Set<string>();
  readonly #processing = new Map<string, number>();
  readonly #addedAt = new Map<string, number>();
  readonly #waiting = new Map<string, { at: number; cancel: () => void }>();
  readonly #failures = new Map<string, number>();
  #getters: ((key: string | undefined) => void)[] = [];
  #idle: (() => void)[] = [];
  #shutDown = false;

  /** An empty queue; the defaults are in {@linkcode WorkQueueOptions}. */
  constructor(options: WorkQueueOptions = {}) {
    this.#clock = options.clock ?? systemClock;
    this.#backoff = exponentialBackoff({
      baseMs: options.baseDelayMs ?? 5,
      maxMs: options.maxDelayMs ?? 1_000_000,
    });
    this.#bucket = new TokenBucket({
      qps: options.qps ?? 10,
      burst: options.burst ?? 100,
      clock: this.#clock,
    });
    this.#metrics = options.metrics;
    this.#shardOf = options.shardOf ?? (() => "");
    this.#shardLimit = Math.max(1, options.maxInFlightPerShard ?? Infinity);
  }

  /** Keys waiting to be processed (not counting in-flight or delayed ones). */
  get length(): number {
    return this.#queued;
  }

  /** Keys currently being processed. */
  get inFlight(): number {
    return this.#processing.size;
  }

  /** How long the longest-running key has been in flight (0 when none is). */
  oldestInFlightMs(): number {
    let oldest = Infinity;
    for (const started of this.#processing.values()) oldest = Math.min(oldest, started);
    return oldest === Infinity ? 0 : this.#clock.now() - oldest;
  }

  /** Whether `shutDown()` was called. */
  get shuttingDown(): boolean {
    return this.#shutDown;
  }

  /** Queues `key` unless it is already queued (or, if in flight, marks it to run again after). */
  add(key: string): void {
    if (this.#shutDown) return;
    this.#metrics?.added();
    if (this.#dirty.has(key)) return;
    this.#dirty.add(key);
    this.#addedAt.set(key, this.#clock.now());
    if (this.#processing.has(key)) return;
    this.#push(key);
  }

  #push(key: string): void {
    const shard = this.#shardOf(key);
    const keys = this.#shards.get(shard);
    if (keys) keys.push(key);
    else {
      this.#shards.set(shard, [key]);
      this.#ring.push(shard);
    }
    this.#queued++;
    this.#metrics?.depth(this.#queued);
    this.#dispatch();
  }

  /** Hands queued keys to waiting getters while some shard may run one more. */
  #dispatch(): void {
    while (this.#getters.length > 0) {
      const key = this.#next();
      if (key === undefined) return;
      this.#getters.shift()!(key);
    }
  }

  /** Takes the next key in shard turn order, skipping shards at their limit; undefined when none may run. */
  #next(): string | undefined {
    for (let i = 0; i < this.#ring.length; i++) {
      const shard = this.#ring[i]!;
      if ((this.#inFlightByShard.get(shard) ?? 0) >= this.#shardLimit) continue;
      const keys = this.#shards.get(shard)!;
      const key = keys.shift()!;
      this.#ring.splice(i, 1);
      if (keys.length > 0) this.#ring.push(shard);
      else this.#shards.delete(shard);
      this.#queued--;
      this.#metrics?.depth(this.#queued);
      this.#take(key);
      return key;
    }
    return undefined;
  }

  #take(key: string): void {
    this.#dirty.delete(key);
    const now = this.#clock.now();
    this.#processing.set(key, now);
    const shard = this.#shardOf(key);
    this.#inFlightByShard.set(shard, (this.#inFlightByShard.get(shard) ?? 0) + 1);
    const added = this.#addedAt.get(key);
    this.#addedAt.delete(key);
    if (added !== undefined) this.#metrics?.queueLatency((now - added) / 1000);
  }

  /**
   * Like `add`, unless `key` is waiting out a failure's backoff: a periodic resync must not turn a key that
   * keeps failing (a dead Backrest) into a busy loop; the backoff's own add brings it back.
   */
  addUnlessBackingOff(key: string): void {
    if (this.#failures.has(key) && this.#waiting.has(key)) return;
    this.add(key);
  }

  /** Queues `key` after `ms` (an earlier pending request for the same key wins). */
  addAfter(key: string, ms: number): void {
    if (this.#shutDown) return;
    if (ms <= 0) return this.add(key);
    const at = this.#clock.now() + ms;
    const existing = this.#waiting.get(key);
    if (existing && existing.at <= at) return;
    existing?.cancel();
    const cancel = this.#clock.timer(() => {
      this.#waiting.delete(key);
      this.add(key);
    }, ms);
    this.#waiting.set(key, { at, cancel });
  }

  /** Queues `key` after its backoff (grows with each call until `forget`), paced by the token bucket. */
  addRateLimited(key: string): void {
    const attempt = (this.#failures.get(key) ?? 0) + 1;
    this.#failures.set(key, attempt);
    this.#metrics?.retried();
    this.addAfter(key, Math.max(this.#backoff(attempt), this.#bucket.reserve()));
  }

  /** Clears `key`'s failure count (after a success or a terminal error). */
  forget(key: string): void {
    this.#failures.delete(key);
  }

  /** How many times `key` has been retried since its last `forget`. */
  retries(key: string): number {
    return this.#failures.get(key) ?? 0;
  }

  /** The next key to process, or `undefined` once shut down (or when `signal` aborts). */
  get(signal?: AbortSignal): Promise<string | undefined> {
    if (this.#shutDown || signal?.aborted) return Promise.resolve(undefined);
    const key = this.#next();
    if (key !== undefined) return Promise.resolve(key);
    return new Promise((resolve) => {
      const getter = (k: string | undefined) => {
        signal?.removeEventListener("abort", onAbort);
        resolve(k);
      };
      const onAbort = () => {
        this.#getters = this.#getters.filter((g) => g !== getter);
        resolve(undefined);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#getters.push(getter);
    });
  }

  /** Marks `key` finished; re-queues it if it was added while in flight. */
  done(key: string): void {
    const started = this.#processing.get(key);
    if (started === undefined) return;
    this.#processing.delete(key);
    const shard = this.#shardOf(key);
    const running = (this.#inFlightByShard.get(shard) ?? 1) - 1;
    if (running > 0) this.#inFlightByShard.set(shard, running);
    else this.#inFlightByShard.delete(shard);
    this.#metrics?.workDuration((this.#clock.now() - started) / 1000);
    if (this.#dirty.has(key) && !this.#shutDown) this.#push(key);
    else this.#dispatch(); // a shard at its limit may take another key now
    if (this.#processing.size === 0) {
      const idle = this.#idle;
      this.#idle = [];
      idle.forEach((f) => f());
    }
  }

  /** Stops intake: pending and future `get()`s return `undefined`, delayed adds are dropped. */
  shutDown(): void {
    if (this.#shutDown) return;
    this.#shutDown = true;
    for (const w of this.#waiting.values()) w.cancel();
    this.#waiting.clear();
    const getters = this.#getters;
    this.#getters = [];
    getters.forEach((g) => g(undefined));
  }

  /** Resolves `true` once nothing is in flight, or `false` after `timeoutMs`. */
  drain(timeoutMs: number): Promise<boolean> {
    if (this.#processing.size === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const cancel = this.#clock.timer(() => {
        this.#idle = this.#idle.filter((f) => f !== onIdle);
        resolve(false);
      }, timeoutMs);
      const onIdle = () => {
        cancel();
        resolve(true);
      };
      this.#idle.push(onIdle);
    });
  }
}
