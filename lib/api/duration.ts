/**
 * Go-style durations (`10m`, `1h30m`, `1.5s`) as the OperatorConfig's `resyncPeriod` spells them. Rule: the
 * accepted language is exactly the CRD's pattern (no sign, a unit on every number), so whatever admission
 * lets through parses here to the same value Go's time.ParseDuration gives.
 */

/** The CRD's pattern for `resyncPeriod`. */
export const DURATION_PATTERN = /^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$/;

const UNIT_NS: Record<string, bigint> = {
  ns: 1n,
  us: 1_000n,
  "µs": 1_000n,
  ms: 1_000_000n,
  s: 1_000_000_000n,
  m: 60_000_000_000n,
  h: 3_600_000_000_000n,
};
/** Go's time.Duration limit: longer durations fail to parse there. */
const MAX_NS = (1n << 63n) - 1n;

/**
 * Nanoseconds in `text` computed as Go's time.ParseDuration computes them (integer nanoseconds; a fraction
 * goes through float64 and is truncated), or `undefined` when Go refuses it. Exactness matters at the
 * CRD's bounds: `24h0.5ns` is 24h for the apiserver's CEL rule, so it must be 24h here too.
 */
export function parseDurationNs(text: string): bigint | undefined {
  if (!DURATION_PATTERN.test(text)) return undefined;
  let total = 0n;
  for (const m of text.matchAll(/([0-9]+)(?:\.([0-9]+))?(ns|us|µs|ms|s|m|h)/g)) {
    const [, whole, frac, unit] = m;
    const factor = unit === undefined ? undefined : UNIT_NS[unit];
    if (whole === undefined || factor === undefined) return undefined;
    let v = BigInt(whole) * factor;
    if (frac) {
      let f = 0n;
      let scale = 1;
      for (const digit of frac) {
        if (f > MAX_NS / 10n) break; // Go stops reading fraction digits that would overflow
        f = f * 10n + BigInt(digit);
        scale *= 10;
      }
      v += BigInt(Math.trunc(Number(f) * (Number(factor) / scale)));
    }
    total += v;
    if (v > MAX_NS || total > MAX_NS) return undefined;
  }
  return total;
}

/** Milliseconds in `text`, or `undefined` when it is not a duration of the accepted form. */
export function parseDuration(text: string): number | undefined {
  const ns = parseDurationNs(text);
  return ns === undefined ? undefined : Number(ns) / 1e6;
}

/** Formats milliseconds the way Go prints a duration (`10m0s`, `1h30m0s`, `1.5s`, `250ms`). */
export function formatDuration(ms: number): string {
  if (ms === 0) return "0s";
  if (ms < 1000) return `${ms}ms`;
  const hours = Math.floor(ms / 3_600_000);
  const minutes = Math.floor((ms % 3_600_000) / 60_000);
  const seconds = (ms % 60_000) / 1000;
  let out = "";
  if (hours > 0) out += `${hours}h`;
  if (hours > 0 || minutes > 0) out += `${minutes}m`;
  return `${out}${seconds}s`;
}
