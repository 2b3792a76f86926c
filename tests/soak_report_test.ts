/**
 * The soak's memory verdict (bench/soak/report.ts) on made-up samples: a climb to a plateau after each start
 * or takeover is not a leak, a steady climb is, and too little data after the warm-up is not judged.
 */
import assert from "node:assert/strict";
import { DEFAULT_TOLERANCE, judgeReplica } from "../bench/soak/report.ts";
import type { ReplicaSample } from "../bench/soak/sampler.ts";

const MIN = 60_000;

/** Samples every 10 s of one process in one role for `minutes`, RSS from `rss(minutes since start)`. */
function run(pid: number, leader: boolean, fromMin: number, minutes: number, rss: (m: number) => number) {
  const out: ReplicaSample[] = [];
  for (let s = 0; s <= minutes * 6; s++) {
    const m = s / 6;
    // A little deterministic noise, as V8's heap has.
    const noise = ((s * 7919) % 13) / 13 - 0.5;
    out.push({
      at: (fromMin + m) * MIN,
      slot: "a",
      n: 0,
      pid,
      leader,
      rssMB: rss(m) + noise,
      fds: 35 + (s % 3),
      queueDepth: 0,
    });
  }
  return out;
}

/** A climb of 15 MB over the first 9 minutes, then level. */
const plateau = (m: number) => 66 + 15 * Math.min(1, m / 9);

Deno.test("soak report: a climb to a plateau after each start and takeover is flat", () => {
  const samples = [
    ...run(1, false, 0, 25, plateau),
    ...run(1, true, 25, 30, (m) => plateau(m) + 4),
    ...run(2, false, 55, 25, plateau),
  ];
  const v = judgeReplica(samples, "a", DEFAULT_TOLERANCE);
  assert.equal(v.flat, true, JSON.stringify(v));
  assert.ok(Math.abs(v.rssSlope.perHour!) < 2, JSON.stringify(v.rssSlope));
  // Judged from 10 minutes into each run: 15 + 20 + 15 minutes.
  assert.ok(Math.abs(v.rssSlope.hours * 60 - 50) < 1, JSON.stringify(v.rssSlope));
  // Without the warm-up the climbs read as a leak: the rule is what makes this flat.
  assert.equal(judgeReplica(samples, "a", { ...DEFAULT_TOLERANCE, warmupS: 0 }).flat, false);
});

Deno.test("soak report: a steady climb of 20 MB/h is not flat, nor a descriptor leak; descriptors closing are", () => {
  const leak = judgeReplica(run(1, true, 0, 60, (m) => plateau(m) + m / 3), "a", DEFAULT_TOLERANCE);
  assert.equal(leak.flat, false);
  assert.ok(Math.abs(leak.rssSlope.perHour! - 20) < 2, JSON.stringify(leak.rssSlope));
  const fds = run(1, true, 0, 60, plateau).map((s, i) => ({ ...s, fds: 35 + Math.floor(i / 18) }));
  const fdLeak = judgeReplica(fds, "a", DEFAULT_TOLERANCE);
  assert.equal(fdLeak.flat, false);
  assert.ok(Math.abs(fdLeak.fdSlope.perHour! - 20) < 2, JSON.stringify(fdLeak.fdSlope));
  // Idle connections closing: the count falls, which is no leak.
  const closing = run(1, true, 0, 60, plateau).map((s, i) => ({ ...s, fds: 55 - Math.floor(i / 18) }));
  const fall = judgeReplica(closing, "a", DEFAULT_TOLERANCE);
  assert.ok(fall.fdSlope.perHour! < -15, JSON.stringify(fall.fdSlope));
  assert.equal(fall.flat, true);
});

Deno.test("soak report: runs too short to outlive the warm-up are not judged", () => {
  const samples = Array.from({ length: 8 }, (_, i) => run(i + 1, i % 2 === 0, i * 12, 12, plateau)).flat();
  const v = judgeReplica(samples, "a", DEFAULT_TOLERANCE);
  // 8 runs of 12 minutes leave 16 minutes after warm-up in all: judged; 6 of them would not be.
  assert.equal(v.flat, true, JSON.stringify(v));
  assert.equal(judgeReplica(samples.slice(0, 6 * 73), "a", DEFAULT_TOLERANCE).flat, null);
});
