/**
 * Retry pacing: capped exponential backoff with jitter per key, and a token bucket for an overall rate.
 * Rules: delays never exceed the cap; jitter only ever shortens nothing (it adds up to `jitter` × delay).
 */

import type { Clock } from "./clock.ts";

/** Options of {@linkcode exponentialBackoff}. */
export interface BackoffOptions {
  /** First delay (ms). */
  baseMs: number;
  /** Largest delay (ms). */
  maxMs: number;
  /** Growth per attempt (default 2). */
  factor?: number | undefined;
  /** Extra random share added to each delay, 0..1 (default 0). */
  jitter?: number | undefined;
  /** Random source in [0, 1) (tests pass a fixed one). */
  random?: (() => number) | undefined;
}

/** `attempt` (1-based) → delay in ms: base × factor^(attempt-1), jittered, capped. */
export function exponentialBackoff(options: BackoffOptions): (attempt: number) => number {
  const factor = options.factor ?? 2;
  const jitter = options.jitter ?? 0;
  const random = options.random ?? Math.random;
  return (attempt) => {
    const exp = Math.min(options.maxMs, options.baseMs * Math.pow(factor, Math.max(0, attempt - 1)));
    return Math.min(options.maxMs, exp * (1 + jitter * random()));
  };
}

/** A token bucket: `qps` tokens per second, at most `burst` saved. */
export class TokenBucket {
  readonly #clock: Clock;
  readonly #qps: number;
  readonly #burst: number;
  #tokens: number;
  #at: number;

  /** Starts full (`burst` tokens); throws `RangeError` unless `qps > 0` and `burst >= 1`. */
  constructor(options: { qps: number; burst: number; clock: Clock }) {
    if (!(options.qps > 0) || !(options.burst >= 1)) {
      throw new RangeError("TokenBucket needs qps > 0, burst >= 1");
    }
    this.#clock = options.clock;
    this.#qps = options.qps;
    this.#burst = options.burst;
    this.#tokens = options.burst;
    this.#at = options.clock.now();
  }

  /** Takes a token now or in the future; returns how long to wait (ms) until it is ours. */
  reserve(): number {
    const now = this.#clock.now();
    this.#tokens = Math.min(this.#burst, this.#tokens + ((now - this.#at) / 1000) * this.#qps);
    this.#at = now;
    this.#tokens -= 1;
    return this.#tokens >= 0 ? 0 : (-this.#tokens / this.#qps) * 1000;
  }
}
