/**
 * `deno task bench`: runs every scenario (or those named: `deno run -A bench/main.ts secret-edit churn`),
 * writes `bench/results/<scenario>.json` and `bench/results/summary.json`, prints a summary table.
 * Scenarios: secret-edit (real Backrest), cold-start (100 on the real Backrest; 1 000, and 5 000 with
 * BENCH_COLD_MAX=5000, on the stand-in; each beside its floor), idle (after the 1 000 cold start), small (40
 * Bindings on the real Backrest, the operator and its floor each as a process), memory (separate operator
 * process), churn (stand-in), hostile (a separate operator process beside a black-holed and a 200 MB
 * Backrest), noisy-neighbour (one namespace's churn against another's edit latency), backrest-concurrency (what one real
 * Backrest sustains at 1 to 8 calls in flight), and the runtime and backrest-client benchmarks as subprocesses.
 * Environment: BENCH_EDITS, BENCH_COLD_MAX (5000 adds the 5 000 run), BENCH_COLD_ONLY=1000 or 5000 (that
 * run alone), BENCH_IDLE_MS, BENCH_SMALL_SETTLE_MS, BENCH_SMALL_PROFILE, BENCH_MEM_MAX, BENCH_CHURN_MS,
 * BENCH_HOSTILE_N, BENCH_NOISY_MS, BENCH_BACKREST_REPOS.
 * The in-process scenarios run the operator under the V8 flags the binary ships with: this process starts
 * itself again with the run task's `--v8-flags` (read from deno.json) when it was started without them.
 */
// deno-lint-ignore-file no-explicit-any -- headline() reads the loosely shaped result JSON
import { taskFlags } from "../tests/harness/operator_process.ts";
import { loadAverage, machine, say, type ScenarioResult, writeResult } from "./common.ts";
import { renderChart } from "./chart.ts";
import { autoBinding } from "./scenarios/auto_binding.ts";
import { backrestConcurrency } from "./scenarios/backrest_concurrency.ts";
import { churn } from "./scenarios/churn.ts";
import { coldStart, type ColdStartRun } from "./scenarios/cold_start.ts";
import { hostileScenario } from "./scenarios/hostile.ts";
import { noisyNeighbour } from "./scenarios/noisy_neighbour.ts";
import { idle } from "./scenarios/idle.ts";
import { memory } from "./scenarios/memory.ts";
import { secretEdit } from "./scenarios/secret_edit.ts";
import { small } from "./scenarios/small.ts";

const ALL = [
  "secret-edit",
  "cold-start",
  "idle",
  "small",
  "auto-binding",
  "memory",
  "churn",
  "hostile",
  "noisy-neighbour",
  "runtime",
  "backrest-client",
  "backrest-concurrency",
] as const;
type Name = typeof ALL[number];

const shippedV8 = taskFlags("run").filter((f) => f.startsWith("--v8-flags="));
if (Deno.env.get("BENCH_V8_FLAGS") !== shippedV8.join(" ")) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", ...shippedV8, new URL(import.meta.url).pathname, ...Deno.args],
    env: { BENCH_V8_FLAGS: shippedV8.join(" ") },
    stdin: "inherit",
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  Deno.exit((await child.status).code);
}

const wanted = Deno.args.filter((a) => !a.startsWith("-"));
for (const w of wanted) {
  if (!(ALL as readonly string[]).includes(w)) {
    // deno-lint-ignore no-console
    console.error(`unknown scenario ${w}; known: ${ALL.join(", ")}`);
    Deno.exit(2);
  }
}
// --summary-only: rebuild summary.json and the table from the result files on disk.
const selected: Name[] = Deno.args.includes("--summary-only")
  ? []
  : wanted.length
  ? ALL.filter((n) => wanted.includes(n))
  : [...ALL];
const host = await machine();
const written: Record<string, unknown>[] = [];

async function record(result: ScenarioResult, load0: number[], started: Date): Promise<void> {
  const data = {
    ...result,
    machine: host,
    loadAverage: { before: load0, after: loadAverage() },
    startedAt: started.toISOString(),
    durationS: Math.round((Date.now() - started.getTime()) / 1000),
  };
  say(`wrote ${await writeResult(result.scenario, data)}`);
  written.push(data);
}

/** Runs one of the older benchmark scripts, which print one JSON object. */
async function subprocess(name: string, args: string[]): Promise<ScenarioResult> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", ...args],
    cwd: new URL("../", import.meta.url).pathname,
    stdout: "piped",
    stderr: "inherit",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  const parsed = JSON.parse(text.slice(text.indexOf("{"))) as Record<string, unknown>;
  return {
    scenario: name,
    backrest: name === "runtime" ? "none" : "local stub and real Backrest",
    params: {},
    results: parsed,
    targets: {},
  };
}

/** A cold start whose operator and Backrest are stopped right after; its result. */
async function coldStartStopped(
  n: number,
  kind: "real" | "standin",
  targetMs?: number,
): Promise<ScenarioResult> {
  const run = await coldStart(n, kind, targetMs);
  await run.op.stop();
  await run.stopBackrest();
  return run.result;
}

let cold1000: ColdStartRun | undefined;
for (const name of selected) {
  const load0 = loadAverage();
  const started = new Date();
  say(`--- ${name} (load ${load0.join(" ")})`);
  try {
    switch (name) {
      case "secret-edit":
        await record(await secretEdit(), load0, started);
        break;
      case "cold-start": {
        // BENCH_COLD_ONLY=1000 or 5000: that cold start alone (on the stand-in).
        const only = Deno.env.get("BENCH_COLD_ONLY");
        if (only === "1000" || only === "5000") {
          await record(
            await coldStartStopped(Number(only), "standin", only === "1000" ? 20_000 : 60_000),
            load0,
            started,
          );
          break;
        }
        await record(await coldStartStopped(100, "real"), load0, started);
        const t1 = new Date();
        const l1 = loadAverage();
        cold1000 = await coldStart(1000, "standin", 20_000);
        await record(cold1000.result, l1, t1);
        if (Number(Deno.env.get("BENCH_COLD_MAX") ?? 1000) >= 5000) {
          const t2 = new Date();
          const l2 = loadAverage();
          await record(await coldStartStopped(5000, "standin", 60_000), l2, t2);
        }
        break;
      }
      case "idle": {
        const run = cold1000 ?? await coldStart(1000, "standin", 20_000);
        cold1000 = undefined;
        try {
          await record(await idle(run, Number(Deno.env.get("BENCH_IDLE_MS") ?? 60_000)), load0, started);
        } finally {
          await run.op.stop();
          await run.stopBackrest();
        }
        break;
      }
      case "auto-binding":
        await record(await autoBinding(1000), load0, started);
        break;
      case "small":
        await record(await small(), load0, started);
        break;
      case "backrest-concurrency":
        await record(await backrestConcurrency(), load0, started);
        break;
      case "memory":
        await record(await memory(), load0, started);
        break;
      case "churn":
        await record(await churn(), load0, started);
        break;
      case "hostile":
        await record(await hostileScenario(), load0, started);
        break;
      case "noisy-neighbour":
        await record(await noisyNeighbour(), load0, started);
        break;
      case "runtime":
        await record(
          await subprocess("runtime", ["--v8-flags=--expose-gc", "bench/runtime.ts"]),
          load0,
          started,
        );
        break;
      case "backrest-client":
        await record(await subprocess("backrest_client", ["bench/backrest_client.ts"]), load0, started);
        break;
    }
  } catch (e) {
    say(`${name} FAILED: ${e instanceof Error ? e.stack : e}`);
    await record(
      { scenario: name, backrest: "", params: {}, results: { error: String(e) }, targets: {} },
      load0,
      started,
    );
  }
}
if (cold1000) {
  await cold1000.op.stop();
  await cold1000.stopBackrest();
}

// The summary covers every result file on disk, so running one scenario keeps the others in it.
void written;
const rows: Record<string, unknown> = {};
const dir = new URL("./results/", import.meta.url);
const files = [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) =>
  n.endsWith(".json") && n !== "summary.json"
)
  .sort();
for (const file of files) {
  const r = JSON.parse(await Deno.readTextFile(new URL(file, dir))) as ScenarioResult & {
    loadAverage: unknown;
    startedAt: string;
  };
  rows[r.scenario] = {
    backrest: r.backrest,
    startedAt: r.startedAt,
    loadAverage: r.loadAverage,
    params: r.params,
    targets: r.targets,
    headline: headline(r),
  };
}
await writeResult("summary", { machine: host, scenarios: rows });
await Deno.writeTextFile(
  new URL("./results/chart.svg", import.meta.url),
  await renderChart(new URL("./results", import.meta.url).pathname),
);

function headline(r: ScenarioResult): Record<string, unknown> {
  const res = r.results as Record<string, any>;
  switch (true) {
    case r.scenario === "secret-edit":
      return {
        totalP50Ms: res.totalMs?.p50,
        totalP99Ms: res.totalMs?.p99,
        backrestP50Ms: res.backrestRpcMs?.p50,
        operatorP50Ms: res.operatorShareUntilAddRepoMs?.p50,
        operatorP99Ms: res.operatorShareUntilAddRepoMs?.p99,
        plainAddRepoP50Ms: res.plainAddRepoMs?.p50,
        heldOverPlainAddRepoP50Ms: res.untilAddRepoReturnedOverPlainAddRepoP50Ms,
      };
    case r.scenario.startsWith("cold-start"):
      return {
        allReadyMs: res.allReadyMs,
        floorMs: res.floor?.ms,
        ratioToFloor: res.ratioToFloor,
        cpuSecondsPerBinding: res.cpuSecondsPerBinding,
        cpuRatioToFloor: res.cpuRatioToFloor,
        machineCpuRatioToFloor: res.machineCpuRatioToFloor,
        ready: res.ready,
        requestsPerBinding: res.apiserver?.requestsPerBinding,
        writesPerBinding: res.apiserver?.writesPerBinding,
        backrestCallsPerBinding: res.backrestCallsPerBinding,
      };
    case r.scenario === "backrest-concurrency":
      return { fastestInFlight: res.fastestInFlight, speedupAt4Over1: res.speedupAt4Over1 };
    case r.scenario === "small":
      return {
        allReadyMs: res.allReadyMs,
        cpuSecondsToAllReady: res.cpuSecondsToAllReady,
        floorCpuSeconds: res.floor?.cpuSeconds,
        cpuRatioToFloor: res.cpuRatioToFloor,
        rssAnonMB: res.afterSettle?.rssAnonMB,
        rssFileMB: res.afterSettle?.rssFileMB,
        restartCpuSeconds: res.restart?.cpuSeconds,
      };
    case r.scenario === "idle":
      return {
        windowS: r.params.windowS,
        backrestCalls: res.backrestCalls,
        apiserverWrites: res.apiserverWrites,
        cpuSeconds: res.cpuSeconds,
      };
    case r.scenario === "memory":
      return Object.fromEntries([
        ...(res.points ?? []).map((p: any) => [`rssMB@${p.bindings}`, p.rssMB]),
        ["peakRssMB", res.points?.at(-1)?.peakRssMB ?? null],
      ]);
    case r.scenario === "churn":
      return {
        exact: res.finalStateExact,
        rate: res.achievedRatePerS,
        lagP50Ms: res.lagMs?.p50,
        lagMaxMs: res.lagMs?.max,
      };
    case r.scenario === "runtime":
      return {
        eventToReconcileP50Ms: res.eventToReconcileStartMs?.p50,
        p99: res.eventToReconcileStartMs?.p99,
        bytesPerObject: res.store?.bytesPerObject,
      };
    case r.scenario === "hostile":
      return {
        healthyAloneMs: res.alone?.healthyReadyMs,
        healthyBesideMs: res.beside?.healthyReadyMs,
        ratio: res.ratio,
        peakRssMB: res.beside?.peakRssMB,
      };
    case r.scenario === "noisy-neighbour":
      return {
        quietP99AloneMs: res.alone?.p99,
        quietP99WithNoiseMs: res.withNoise?.p99,
        ratio: res.ratio,
      };
    case r.scenario === "backrest_client":
      return { overheadP50Ms: res.stub?.overhead_ms?.p50, pass: res.pass };
    default:
      return res.error ? { error: res.error } : {};
  }
}

const table = [["scenario", "backrest", "headline", "targets"]];
for (const [name, row] of Object.entries(rows)) {
  const r = row as {
    backrest: string;
    headline: unknown;
    targets: Record<string, { measured: unknown; pass: unknown }>;
  };
  const targets = Object.entries(r.targets ?? {}).map(([k, t]) =>
    `${k}=${t.measured} ${t.pass === true ? "PASS" : t.pass === false ? "MISS" : "n/a"}`
  ).join("; ");
  table.push([
    name,
    r.backrest.startsWith("stand-in") ? "stand-in" : r.backrest.startsWith("real") ? "real" : r.backrest,
    JSON.stringify(r.headline),
    targets,
  ]);
}
const widths = table[0]!.map((_, c) => Math.min(60, Math.max(...table.map((row) => row[c]!.length))));
// deno-lint-ignore no-console -- the summary table is the program's output
console.log(table.map((row) => row.map((cell, c) => cell.padEnd(widths[c]!)).join(" | ")).join("\n"));
Deno.exit(0);
