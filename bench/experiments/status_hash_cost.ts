/**
 * Experiment, not a benchmark target (`tools/deno run -A bench/experiments/status_hash_cost.ts`): the CPU one
 * status hash costs this process, keyed (HMAC-SHA256 under the installation's key, what the operator writes)
 * against stretched (PBKDF2, 2 048 rounds, what builds before the key wrote and what it still recognises),
 * 4 000 distinct inputs of a desired repo's size at 4 in flight, by thread: a new Binding makes two.
 */
import { importHashKey, keyedHasher, newHashKeyBytes, stretchedHasher } from "../../lib/backrest/mod.ts";
import { cpuByThread, cpuSeconds, say } from "../common.ts";

const N = 4000;
const key = importHashKey(newHashKeyBytes());
const hashers = { keyed: keyedHasher(() => Promise.resolve(key)), stretched: stretchedHasher() };
const rows: Record<string, unknown>[] = [];
for (const name of ["keyed", "stretched", "keyed", "stretched"] as const) {
  const cpu0 = cpuSeconds();
  const threads0 = cpuByThread();
  const t0 = performance.now();
  const inFlight: Promise<string>[] = [];
  for (let i = 0; i < N; i++) {
    // Distinct inputs: the stretched hasher remembers results by input.
    const input = new TextEncoder().encode(`${name}-${i}-${crypto.randomUUID()}`.padEnd(300, "x"));
    inFlight.push(hashers[name].hash(input));
    if (inFlight.length >= 4) await Promise.all(inFlight.splice(0));
  }
  await Promise.all(inFlight);
  const threads1 = cpuByThread();
  const each = (s: number) => Math.round(s / N * 1e6) / 1e3;
  rows.push({
    hasher: name,
    cpuMsEach: each(cpuSeconds() - cpu0),
    mainThreadMsEach: each(threads1.main - threads0.main),
    otherThreadsMsEach: each(threads1.other - threads0.other),
    wallMsEach: each((performance.now() - t0) / 1000),
  });
}
say(`status hash cost (${N} hashes each, 4 in flight):\n${rows.map((r) => JSON.stringify(r)).join("\n")}`);
