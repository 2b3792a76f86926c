/**
 * backrest-concurrency: what one real Backrest sustains. The operator's Backrest client applies M repos
 * (real restic repositories on rest-server, so restic talks HTTP to its storage as with network storage)
 * to a fresh Backrest v1.14.1 at 1, 2, 4 and 8 calls in flight, each round once with AddRepo alone (a
 * repository known to exist) and once with CheckRepoExists then AddRepo (one nobody knows yet). Reported per
 * level: wall time, calls per second and the latency of one call. The operator's worker count (4) is the
 * most calls it has in flight to one Backrest; this says whether more would be served faster, or only queue
 * inside Backrest.
 */
import { backrestClient } from "../../lib/backrest/mod.ts";
import { repoFor } from "../../tests/harness/backrest_fixtures.ts";
import { createResticRepo, startBackrest } from "../../tests/harness/backrest.ts";
import { parallel, round, say, type ScenarioResult, summary } from "../common.ts";

const LEVELS = [1, 2, 4, 8];

export async function backrestConcurrency(m = Number(Deno.env.get("BENCH_BACKREST_REPOS") ?? 32)): Promise<
  ScenarioResult
> {
  const repos: { uri: string; password: string }[] = new Array(m);
  await parallel([...Array(m).keys()], 2, async (i) => {
    repos[i] = await createResticRepo();
  });
  const rounds: Record<string, unknown>[] = [];
  for (const mode of ["addRepo", "checkThenAdd"] as const) {
    for (const level of LEVELS) {
      // A fresh Backrest per round: AddRepo's answer and Backrest's own work grow with the repos it holds.
      const backrest = await startBackrest();
      try {
        const api = backrestClient({ url: backrest.url, timeoutMs: 120_000 });
        const latencies: number[] = [];
        const t0 = performance.now();
        await parallel([...Array(m).keys()], level, async (i) => {
          const repo = await repoFor(`c${level}-${i}`, repos[i]!);
          const start = performance.now();
          if (mode === "checkThenAdd") await api.checkRepoExists(repo);
          await api.addRepo(repo);
          latencies.push(performance.now() - start);
        });
        const wallMs = performance.now() - t0;
        const perSecond = round(m / (wallMs / 1000), 2);
        say(`backrest-concurrency ${mode} x${level}: ${m} in ${Math.round(wallMs)} ms (${perSecond}/s)`);
        rounds.push({
          mode,
          inFlight: level,
          wallMs: Math.round(wallMs),
          perSecond,
          latencyMs: summary(latencies),
        });
      } finally {
        await backrest.stop();
      }
    }
  }
  const rate = (mode: string, level: number) =>
    (rounds.find((r) => r.mode === mode && r.inFlight === level)?.perSecond as number | undefined) ?? 0;
  const best = (mode: string) => LEVELS.reduce((a, b) => (rate(mode, b) > rate(mode, a) ? b : a));
  return {
    scenario: "backrest-concurrency",
    backrest: "real Backrest v1.14.1 + real restic repositories on rest-server (loopback HTTP)",
    params: { repos: m, levels: LEVELS, operatorWorkers: 4 },
    results: {
      rounds,
      fastestInFlight: { addRepo: best("addRepo"), checkThenAdd: best("checkThenAdd") },
      speedupAt4Over1: {
        addRepo: round(rate("addRepo", 4) / rate("addRepo", 1), 2),
        checkThenAdd: round(rate("checkThenAdd", 4) / rate("checkThenAdd", 1), 2),
      },
      speedupAt8Over4: {
        addRepo: round(rate("addRepo", 8) / rate("addRepo", 4), 2),
        checkThenAdd: round(rate("checkThenAdd", 8) / rate("checkThenAdd", 4), 2),
      },
    },
    targets: {},
    notes: [
      `${navigator.hardwareConcurrency} cores shared by Backrest, its restic runs, rest-server and this process`,
    ],
  };
}
