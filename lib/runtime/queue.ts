/**
 * The work queue, with client-go's guarantees: a key is queued at most once however often it is added; a
 * key is processed by at most one worker at a time, and a key added while in flight is processed again
 * after `done()`; failures back off per key (exponential, capped) and all retries share a token bucket.
 * `shutDown()` stops intake at once (no new `get()`s succeed) while in-flight keys may finish
 * (`drain(timeoutMs)` waits for them).
 */

import { type Clock, systemClock } from "./clock.ts";
import { exponentialBackoff, TokenBucket } from "./rate_limit.ts";

/** Optional hooks for the `workqueue_*` metrics. */
export interface QueueMetrics {
  depth(n: number): void;
  added(): void;
  /** Seconds between add and get. */
  queueLatency(seconds: number): void;
  /** Seconds between get and done. */
  workDuration(seconds: number): void;
  retried(): void;
}

/** Options of {@linkcode WorkQueue}. */
export interface WorkQueueOptions {
  clock?: Clock | undefined;
  /** First retry delay (default 5 ms, like controller-runtime). */
  baseDelayMs?: number | undefined;
  /** Largest retry delay (default 1000 s, like controller-runtime). */
  maxDelayMs?: number | undefined;
  /** Overall retry rate (default 10/s with burst 100, like client-go). */
  qps?: number | undefined;
  burst?: number | undefined;
  metrics?: QueueMetrics | undefined;
}

/** A de-duplicating, rate-limited, delaying queue of string keys. */
export class WorkQueue {
  readonly #clock: Clock;
  readonly #backoff: (attempt: number) => number;
  readonly #bucket: TokenBucket;
  readonly #metrics: QueueMetrics | undefined;
  readonly #queue: string[] = [];
  readonly #dirty = new Set<string>();
  readonly #processing = new Map<string, number>();
  readonly #addedAt = new Map<string, number>();
  readonly #waiting = new Map<string, { at: number; cancel: () => void }>();
  readonly #failures = new Map<string, number>();
  #getters: ((key: string | undefined) => void)[] = [];
  #idle: (() => void)[] = [];
  #shutDown = false;

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
  }

  /** Keys waiting to be processed (not counting in-flight or delayed ones). */
  get length(): number {
    return this.#queue.length;
  }

  /** Keys currently being processed. */
  get inFlight(): number {
    return this.#processing.size;
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
    const getter = this.#getters.shift();
    if (getter) {
      this.#take(key);
      getter(key);
      return;
    }
    this.#queue.push(key);
    this.#metrics?.depth(this.#queue.length);
  }

  #take(key: string): void {
    this.#dirty.delete(key);
    const now = this.#clock.now();
    this.#processing.set(key, now);
    const added = this.#addedAt.get(key);
    this.#addedAt.delete(key);
    if (added !== undefined) this.#metrics?.queueLatency((now - added) / 1000);
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
    const key = this.#queue.shift();
    if (key !== undefined) {
      this.#metrics?.depth(this.#queue.length);
      this.#take(key);
      return Promise.resolve(key);
    }
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
    this.#metrics?.workDuration((this.#clock.now() - started) / 1000);
    if (this.#dirty.has(key) && !this.#shutDown) this.#push(key);
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
