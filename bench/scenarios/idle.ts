/**
 * (c) idle: after a cold start has settled, count Backrest calls (the operator's client and the
 * stand-in's own counters), apiserver requests and writes, and CPU seconds over an idle window. The
 * stand-in runs in a process of its own, so the bench process's CPU is the operator's.
 */
import { cpuSeconds, round, say, type ScenarioResult, sleep } from "../common.ts";
import type { ColdStartRun } from "./cold_start.ts";

export async function idle(run: ColdStartRun, windowMs: number): Promise<ScenarioResult> {
  const { op, standin } = run;
  // Settled: no apiserver write for 3 s.
  let last = op.counts.writes();
  for (let quiet = 0; quiet < 3;) {
    await sleep(1000);
    const w = op.counts.writes();
    quiet = w === last ? quiet + 1 : 0;
    last = w;
  }
  op.counts.reset();
  const spans0 = op.spans.length;
  await standin?.resetCalls();
  const cpu0 = cpuSeconds();
  const t0 = performance.now();
  await sleep(windowMs);
  const elapsed = performance.now() - t0;
  const cpu = round(cpuSeconds() - cpu0, 2);
  const snap = op.counts.snapshot();
  const backrestCalls = op.spans.length - spans0;
  const standinCalls = (await standin?.totalCalls()) ?? null;
  say(
    `idle ${
      Math.round(elapsed / 1000)
    } s: ${backrestCalls} Backrest calls, ${snap.writes} writes, ${cpu} CPU s`,
  );
  const n = op.operator.bindings.store.size;
  return {
    scenario: "idle",
    backrest: "stand-in (tests/harness/backrest_standin.ts)",
    params: {
      bindings: n,
      windowS: Math.round(elapsed / 1000),
      issueWindowS: 300,
      resyncPeriod: "default (10 min), so no resync falls in the window",
      leaderElection: "off (in-process operator): no Lease renewals to count",
    },
    results: {
      backrestCalls,
      standinRequests: standinCalls,
      apiserverRequests: snap.requests,
      apiserverWrites: snap.writes,
      byVerbResource: snap.byVerbResource,
      cpuSeconds: cpu,
      cpuSecondsNote: "whole bench process (operator + idle stand-in)",
    },
    targets: {
      backrestCalls: { target: "0 (outside resync)", measured: backrestCalls, pass: backrestCalls === 0 },
      apiserverWrites: { target: "0 (but Lease renewals)", measured: snap.writes, pass: snap.writes === 0 },
    },
    ...(elapsed < 300_000
      ? { notes: [`window ${Math.round(elapsed / 1000)} s instead of 5 min (time budget)`] }
      : {}),
  };
}
