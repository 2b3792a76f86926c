/**
 * noisy-neighbour, on a stand-in whose every call takes 300 ms (a restic run's order of magnitude): one
 * namespace rewrites its 50 repository Secrets, 20 writes a second round robin, for the whole window, so
 * its applies keep every worker it may have busy; meanwhile one Secret in another namespace is edited
 * once a second. Reported: that quiet edit's latency (Secret written -> Backrest holds the new value), p50
 * and p99, first without the noise, then with it, and the ratio of the p99s (target ≤ 2).
 */
import { startBackrestStandin } from "../../tests/harness/backrest_standin.ts";
import { cluster, secret } from "../../tests/harness/operator.ts";
import { waitUntil } from "../../tests/harness/process.ts";
import {
  benchOperator,
  createBindings,
  isReady,
  say,
  type ScenarioResult,
  sleep,
  type Summary,
  summary,
} from "../common.ts";

const DELAY_MS = 300;

export async function noisyNeighbour(
  windowMs = Number(Deno.env.get("BENCH_NOISY_MS") ?? 30_000),
  noisyWritesPerSecond = 20,
): Promise<ScenarioResult> {
  const cp = await cluster();
  const noisy = await cp.namespace("bench-noisy");
  const quiet = await cp.namespace("bench-quiet");
  const quietId = `volsync-${quiet}-replicationsource-rs-0`;
  let quietSeen = -1;
  const quietPending: { seq: number; at: number }[] = [];
  const lags: number[] = [];
  const standin = startBackrestStandin({
    delayMs: DELAY_MS,
    onChange: (c) => {
      if (!("repo" in c) || c.repo.id !== quietId) return;
      const seq = Number(c.repo.env.find((e) => e.startsWith("AWS_ACCESS_KEY_ID="))?.split("=v")[1]);
      if (!(seq > quietSeen)) return;
      quietSeen = seq;
      while (quietPending.length && quietPending[0]!.seq <= seq) {
        lags.push(performance.now() - quietPending.shift()!.at);
      }
    },
  });
  const data = (tag: string, i: number, seq: number) => ({
    RESTIC_REPOSITORY: `rest:https://rest.example/${tag}/${i}`,
    RESTIC_PASSWORD: `pw-${i}`,
    AWS_ACCESS_KEY_ID: `v${seq}`,
  });
  await createBindings(noisy, 0, 50, standin.url, (i) => data("noisy", i, 0));
  await createBindings(quiet, 0, 1, standin.url, (i) => data("quiet", i, 0));
  const op = await benchOperator({ namespaces: [noisy, quiet] });
  const put = async (ns: string, tag: string, i: number, seq: number) => {
    const res = await cp.api(
      "PUT",
      `/api/v1/namespaces/${ns}/secrets/s-${i}`,
      secret(`s-${i}`, data(tag, i, seq)),
    );
    await res.body?.cancel();
    return res.ok;
  };
  let quietSeq = 0;
  /** Edits the quiet Secret once a second for `ms`; returns its edits' latencies. */
  const quietEdits = async (ms: number): Promise<Summary> => {
    lags.length = 0;
    const end = performance.now() + ms;
    while (performance.now() < end) {
      const seq = ++quietSeq;
      if (await put(quiet, "quiet", 0, seq)) quietPending.push({ seq, at: performance.now() });
      await sleep(1000);
    }
    await waitUntil("the last quiet edit arrived", () => Promise.resolve(quietSeen >= quietSeq), {
      timeoutMs: 60_000,
      intervalMs: 20,
    });
    return summary(lags);
  };
  try {
    await op.start();
    await waitUntil(
      "all Bindings Ready",
      () => Promise.resolve(op.operator.bindings.store.list().filter(isReady).length === 51),
      {
        timeoutMs: 120_000,
        intervalMs: 50,
      },
    );
    const alone = await quietEdits(windowMs);
    say(`noisy-neighbour: quiet edit alone p50 ${alone.p50} ms, p99 ${alone.p99} ms`);
    let noise = true;
    let noisyWrites = 0;
    const noiseLoop = (async () => {
      let k = 0;
      const t0 = performance.now();
      while (noise) {
        const due = t0 + (k * 1000) / noisyWritesPerSecond;
        const wait = due - performance.now();
        if (wait > 0) await sleep(wait);
        const i = k % 50;
        k++;
        put(noisy, "noisy", i, k).then((ok) => ok && noisyWrites++).catch(() => {});
      }
    })();
    await sleep(2000); // the noisy namespace's backlog builds first
    const withNoise = await quietEdits(windowMs);
    noise = false;
    await noiseLoop;
    say(`noisy-neighbour: quiet edit beside the noise p50 ${withNoise.p50} ms, p99 ${withNoise.p99} ms`);
    const ratio = alone.p99 && withNoise.p99 ? Math.round(withNoise.p99 / alone.p99 * 100) / 100 : null;
    return {
      scenario: "noisy-neighbour",
      backrest: `stand-in answering every call after ${DELAY_MS} ms`,
      params: { windowMs, noisySecrets: 50, noisyWritesPerSecond, quietEditsPerSecond: 1, concurrency: 4 },
      results: { alone, withNoise, ratio, noisyWrites },
      targets: {
        quietP99: { target: "<= 2x its quiet p99", measured: ratio, pass: ratio !== null && ratio <= 2 },
      },
    };
  } finally {
    await op.stop();
    await standin.stop();
  }
}
