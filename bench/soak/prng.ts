/**
 * The soak's one source of randomness: mulberry32, a 32-bit generator small enough to read at a glance.
 * Rule: every choice the driver makes (which operation, which object, which fault, how long) is drawn from
 * one instance, in step order, and never from a draw whose outcome depends on timing; so a seed and a step
 * number name the same sequence of operations and faults on every run.
 */

/** A seeded generator with the helpers the driver draws from. */
export class Prng {
  #state: number;

  /** `seed` is taken modulo 2^32. */
  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [lo, hi], both included. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  /** One element of a non-empty list. */
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError("pick from an empty list");
    return items[Math.floor(this.next() * items.length)]!;
  }

  /** One key of `weights` with probability proportional to its weight (weights ≤ 0 never); undefined if none. */
  weighted<K extends string>(weights: Readonly<Partial<Record<K, number>>>): K | undefined {
    const entries = (Object.entries(weights) as [K, number][]).filter(([, w]) => w > 0);
    const total = entries.reduce((sum, [, w]) => sum + w, 0);
    if (total <= 0) return undefined;
    let x = this.next() * total;
    for (const [k, w] of entries) {
      x -= w;
      if (x < 0) return k;
    }
    return entries.at(-1)![0];
  }
}
