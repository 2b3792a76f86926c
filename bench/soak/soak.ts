/**
 * The soak: a seeded, replayable run of random operations and faults against the operator's two replicas on
 * the real control plane, a real Backrest and a stand-in, with the invariant checker at every quiet point
 * and at the end. Steps come at `rate` per second; each is a fault with probability faultRate / (60 × rate),
 * else an operation. As soon as the last fault in force has been healed, and every `quietEverySteps` steps
 * besides, the driver stops (a quiet point), heals whatever is still on, lifts a pause, and waits until the
 * checker finds the world as it should be (or the bound for the faults of the segment, plus a margin to
 * measure, has passed), then checks the work queues, and the calls and output since the last quiet point.
 * Rules: the same seed, rate, fault rate, quiet interval and sizes give the same steps (`--until-step K`
 * stops after step K and checks); timing is not replayed, so a violation that depends on a race may need
 * a few runs of its replay.
 */
import { machine } from "../common.ts";
import { Checker } from "./checker.ts";
import { type FaultKind, Faults } from "./faults.ts";
import { drawOp, type OpContext, type OpKind, patchConfig, runOp, type Scheduled } from "./ops.ts";
import { Prng } from "./prng.ts";
import { SLOTS } from "./replicas.ts";
import {
  DEFAULT_TOLERANCE,
  judgeReplica,
  markdown,
  quantiles,
  type Segment,
  type SoakReport,
  svg,
  type Tolerance,
  type Violation,
} from "./report.ts";
import { Sampler } from "./sampler.ts";
import { type SoakSizes, startWorld, type World } from "./world.ts";

/**
 * How long the system may take to converge after a segment with each kind of fault, in seconds, from the
 * moment operations stopped and every fault was healed. `none`: a segment of operations only; `start`:
 * the first convergence on a fresh world.
 */
export const DEFAULT_BOUNDS_S: Record<FaultKind | "none" | "start", number> = {
  "start": 180,
  "none": 45,
  "leader-kill": 75,
  "backrest-kill": 75,
  "backrest-wipe": 90,
  "blackhole": 90,
  "slow": 75,
  "garbage": 75,
  "apiserver-restart": 60,
  "watch-expire": 60,
};

/** Options of {@linkcode runSoak}. */
export interface SoakOptions {
  seed: number;
  /** Steps stop being drawn after this long (the final quiet point follows). */
  durationMs: number;
  /** Steps per second. */
  rate: number;
  /** Faults per minute (in expectation). */
  faultRate: number;
  /** The fewest minutes from one leader kill to the next (0: no more than the other faults' cool-down). */
  leaderKillGapMin?: number;
  /** A quiet point every this many steps. */
  quietEverySteps: number;
  /** Stop after this step (replay). */
  untilStep?: number | undefined;
  sizes: SoakSizes;
  /** Resource samples every this many ms. */
  sampleEveryMs: number;
  /** The replicas' log level (debug makes the leak sweep read every line the operator can print). */
  logLevel: "debug" | "info";
  /** Convergence bounds (s) overriding the defaults. */
  bounds?: Partial<Record<FaultKind | "none" | "start", number>>;
  /** Tolerances of the slopes; a replica with fewer than `minMinutes` of samples after warm-up is not judged. */
  tolerance?: Tolerance;
  /** Progress lines. */
  say: (msg: string) => void;
  /** The command that replays this run (the seed and sizes are appended by the caller). */
  replayCommand: string;
}

/** Called with the world before it is torn down (the test plants violations to see the checker catch them). */
export type BeforeClose = (world: World, checker: Checker) => Promise<void>;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs the soak; resolves with its report (the caller writes it). */
export async function runSoak(o: SoakOptions, beforeClose?: BeforeClose): Promise<SoakReport> {
  const bounds = { ...DEFAULT_BOUNDS_S, ...o.bounds };
  const tolerance = o.tolerance ?? DEFAULT_TOLERANCE;
  const startedAt = new Date();
  const load0 = loadAverage();
  const host = await machine();
  const world = await startWorld({
    sizes: o.sizes,
    say: o.say,
    replicaArgs: [`--log-level=${o.logLevel}`],
  });
  const checker = new Checker(world, { graceMs: 1000, leaseToleranceMs: 500 });
  const faults = new Faults(world, Math.round((o.leaderKillGapMin ?? 0) * 60 * o.rate));
  const rng = new Prng(o.seed);
  const sampler = new Sampler(world);
  sampler.start(o.sampleEveryMs);
  const log: SoakReport["log"] = [];
  const violations: Violation[] = [];
  const segments: Segment[] = [];
  const scheduled: Scheduled[] = [];
  const ops: Record<string, number> = {};
  const injected: Record<string, number> = {};
  const opErrors: string[] = [];
  let segmentFaults: FaultKind[] = [];
  let segmentFrom = 1;
  let step = 0;
  const replay = (k: number) => `${o.replayCommand} --seed ${o.seed} --until-step ${k}`;
  const violation = (kind: Violation["kind"], at: number, detail: string) => {
    violations.push({ seed: o.seed, step: at, kind, detail, replay: replay(at) });
    o.say(`VIOLATION at step ${at} (${kind}): ${detail}`);
  };
  const entry = (type: string, kind: string, detail: string) =>
    log.push({ step, at: Date.now(), type, kind, detail });
  /** The step that was being taken at `at`. */
  const stepAt = (at: number) => log.findLast((e) => e.at <= at)?.step ?? 0;

  const ctx: OpContext = {
    world,
    rng,
    step: 0,
    schedule: (s) => scheduled.push(s),
    spell: (kind, state, at) => checker.spell(kind, state, at),
    beforeNamespaceDelete: async (ns) => {
      for (const l of await checker.sweepEvents(ns)) violation("leak", step, l);
    },
  };

  const unschedule = async (what: Scheduled["what"]) => {
    const m = world.model.config;
    switch (what) {
      case "resume":
        if (!m.paused) return;
        m.paused = false;
        checker.spell("pause", "off", Date.now());
        await patchConfig(world, { paused: false });
        break;
      case "allowlist-lift":
        if (!m.allowlistRealOnly) return;
        m.allowlistRealOnly = false;
        checker.spell("allowlist", "off", Date.now());
        await patchConfig(world, { backrestURLAllowlist: null });
        break;
      case "local-lift":
        if (!m.localRefused) return;
        m.localRefused = false;
        await patchConfig(world, { repositoryPolicy: { allowLocalAddresses: true } });
        break;
    }
    entry("scheduled", what, "");
  };

  // What the driver waits for now: said every 3 minutes while one wait lasts, so a stalled run shows where.
  let doing = "starting";
  let doingSince = Date.now();
  const busy = (what: string) => {
    doing = what;
    doingSince = Date.now();
  };
  const watchdog = setInterval(() => {
    const s = Math.round((Date.now() - doingSince) / 1000);
    if (s >= 180) o.say(`step ${step}: still ${doing} after ${s} s`);
  }, 180_000);
  const quiet = async (kind: "start" | "quiet" | "final") => {
    busy(`healing and settling faults at a ${kind} point`);
    entry("quiet", kind, `faults ${segmentFaults.join(",") || "none"}`);
    for (const k of faults.heal(step, true)) entry("heal", k, "at the quiet point");
    await faults.settled();
    for (const e of faults.errors.splice(0)) violation("driver", step, `a fault could not be healed: ${e}`);
    await unschedule("resume");
    // A replica that ended on its own is started again by the supervisor; make sure both are up.
    for (const slot of SLOTS) {
      if (!world.replicas.live().some((i) => i.slot === slot)) {
        await world.replicas.start(slot).catch((e) => violation("driver", step, `replica ${slot}: ${e}`));
      }
    }
    const kinds = [...new Set(segmentFaults)];
    const bound = kind === "start" ? bounds.start : Math.max(bounds.none, ...kinds.map((k) => bounds[k]));
    const started = Date.now();
    let firstClean: number | undefined;
    let clean = 0;
    let last: string[] = [];
    while (true) {
      let problems: string[];
      try {
        busy("checking the state at a quiet point");
        problems = await checker.state();
      } catch (e) {
        problems = [`the checker could not read the world: ${e instanceof Error ? e.message : e}`];
      }
      if (problems.length === 0) {
        firstClean ??= Date.now();
        if (++clean >= 3) break;
      } else {
        firstClean = undefined;
        clean = 0;
        last = problems;
      }
      // Past the bound the wait goes on a while to measure; beyond that the remaining problems are reported.
      if (Date.now() - started > bound * 1000 + 120_000) break;
      await sleep(1000);
    }
    const convergedS = clean >= 3 ? Math.round((firstClean! - started) / 100) / 10 : null;
    if (convergedS === null) {
      for (const p of last.slice(0, 40)) violation("state", step, p);
      if (last.length > 40) violation("state", step, `... and ${last.length - 40} more problems`);
    } else if (convergedS > bound) {
      violation(
        "bound",
        step,
        `converged after ${convergedS} s, beyond the bound of ${bound} s for ${kinds.join(", ") || kind}`,
      );
    }
    segments.push({
      index: segments.length,
      fromStep: segmentFrom,
      toStep: step,
      faultKinds: kind === "start" ? [] : kinds,
      boundS: bound,
      convergedS,
    });
    o.say(
      `quiet point at step ${step}: ${kinds.join(",") || kind} ${
        convergedS === null ? "did NOT converge" : `converged in ${convergedS} s`
      } (bound ${bound} s); ${violations.length} violations so far`,
    );
    for (const q of await checker.queues()) violation("state", step, q);
    await sleep(2500); // let the Lease polls around the last calls arrive
    for (const f of checker.history(world.lease)) violation("history", stepAt(f.at), f.what);
    for (const l of await checker.leaks()) violation("leak", step, l);
    segmentFaults = [];
    segmentFrom = step + 1;
  };

  const t0 = Date.now();
  let endedAt = t0;
  let shutdownCodes: Record<string, number> = {};
  try {
    await quiet("start");
    const pFault = o.faultRate / 60 / o.rate;
    let next = Date.now();
    for (step = 1;; step++) {
      if (Date.now() - t0 >= o.durationMs || (o.untilStep !== undefined && step > o.untilStep)) break;
      next += 1000 / o.rate;
      const wait = next - Date.now();
      if (wait > 0) await sleep(wait);
      else if (wait < -5000) next = Date.now(); // far behind: do not burst to catch up
      ctx.step = step;
      for (const s of scheduled.filter((s) => s.step <= step)) {
        scheduled.splice(scheduled.indexOf(s), 1);
        await unschedule(s.what);
      }
      const healed = faults.heal(step);
      for (const k of healed) entry("heal", k, "");
      // A quiet point every quietEverySteps, and as soon as the last fault in force is healed: the time to
      // converge is then the time from that fault's end.
      if (step % o.quietEverySteps === 0 || (healed.length > 0 && faults.active().length === 0)) {
        await quiet("quiet");
        next = Date.now();
      }
      if (rng.chance(pFault)) {
        busy("injecting a fault");
        const f = await faults.inject(rng, step);
        if (f) {
          injected[f.kind] = (injected[f.kind] ?? 0) + 1;
          segmentFaults.push(f.kind);
          entry("fault", f.kind, f.detail);
          o.say(`step ${step}: fault ${f.kind}: ${f.detail}`);
        }
        continue;
      }
      const kind: OpKind | undefined = drawOp(ctx);
      if (!kind) continue;
      try {
        busy(`running ${kind}`);
        const r = await runOp(kind, ctx);
        ops[kind] = (ops[kind] ?? 0) + 1;
        entry("op", kind, r.detail);
      } catch (e) {
        const msg = `step ${step} ${kind}: ${e instanceof Error ? e.message.split("\n")[0] : e}`;
        opErrors.push(msg);
        entry("op-error", kind, msg);
        o.say(`operation failed: ${msg}`);
      }
    }
    step = Math.max(0, step - 1);
    for (const s of scheduled.splice(0)) await unschedule(s.what);
    await quiet("final");
    endedAt = Date.now();
    if (beforeClose) await beforeClose(world, checker);
  } finally {
    clearInterval(watchdog);
    await sampler.stop();
    shutdownCodes = await world.replicas.stop().catch(() => ({}));
    await world.close();
  }

  // Figures.
  const wallS = Math.round((endedAt - t0) / 1000);
  const convergence: SoakReport["convergence"] = {};
  for (const k of ["none", ...new Set(segments.flatMap((s) => s.faultKinds))] as (FaultKind | "none")[]) {
    const times = segments.filter((s) =>
      s.index > 0 && (k === "none" ? s.faultKinds.length === 0 : s.faultKinds.includes(k))
    )
      .map((s) => s.convergedS ?? (s.boundS + 120));
    if (times.length) convergence[k] = { ...quantiles(times), boundS: bounds[k] };
  }
  const replicas = {} as SoakReport["replicas"];
  // Not flat when one replica is not; else not judged (null) when one has too little data after warm-up.
  const verdicts: (boolean | null)[] = [];
  for (const slot of SLOTS) {
    const samples = sampler.replicas.filter((s) => s.slot === slot);
    const { rssSlope, fdSlope, flat: own } = judgeReplica(sampler.replicas, slot, tolerance);
    verdicts.push(own);
    replicas[slot] = {
      incarnations: world.replicas.all().filter((i) => i.slot === slot).map((i) => ({
        n: i.n,
        pid: i.pid,
        startedAt: new Date(i.startedAt).toISOString(),
        ended: i.ended ? new Date(i.ended.at).toISOString() : null,
        how: !i.ended
          ? "ran to the end"
          : i.ended.stopped
          ? `stopped at the end (exit ${i.ended.code})`
          : i.ended.killed
          ? `killed (${i.ended.signal ?? i.ended.code})`
          : `exited ${i.ended.code}`,
      })),
      rssSlope,
      fdSlope,
      rssMB: quantiles(samples.map((s) => s.rssMB).filter(Number.isFinite)),
      fds: quantiles(samples.map((s) => s.fds)),
    };
  }
  const claims = sampler.leases.map((l) => l.claims);
  const leases = sampler.leases.map((l) => l.leases);
  const totalOps = Object.values(ops).reduce((a, b) => a + b, 0);
  const report: SoakReport = {
    scenario: "soak",
    params: {
      seed: o.seed,
      durationMin: o.durationMs / 60_000,
      rate: o.rate,
      faultRate: o.faultRate,
      leaderKillGapMin: o.leaderKillGapMin ?? 0,
      quietEverySteps: o.quietEverySteps,
      untilStep: o.untilStep ?? null,
      sizes: o.sizes,
      sampleEveryS: o.sampleEveryMs / 1000,
      logLevel: o.logLevel,
    },
    replay: `${o.replayCommand} --seed ${o.seed}`,
    machine: host,
    loadAverage: { before: load0, after: loadAverage() },
    startedAt: startedAt.toISOString(),
    wallS,
    steps: step,
    achievedOpsPerS: Math.round(totalOps / Math.max(1, wallS) * 100) / 100,
    ops,
    opErrors,
    faults: injected,
    violations,
    bounds,
    segments,
    convergence,
    replicas,
    tolerance,
    flat: verdicts.includes(false) ? false : verdicts.includes(null) ? null : true,
    calls: checker.callsChecked,
    leaseHolders: world.lease.runs.filter((r) => r.holder !== "").length,
    selfExits: world.replicas.selfExits.map((e) => ({ slot: e.slot, n: e.n, code: e.code })),
    leftInStorage: [...checker.leftInStorage].sort(),
    shutdownCodes,
    claims: { ...quantiles(claims), last: claims.at(-1) ?? null },
    leases: { ...quantiles(leases), last: leases.at(-1) ?? null },
    samples: sampler.replicas,
    leaseSamples: sampler.leases,
    log,
  };
  return report;
}

function loadAverage(): number[] {
  try {
    return Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).map(Number);
  } catch {
    return [];
  }
}

/** Writes `<prefix>.json`, `<prefix>.md` and `<prefix>.svg`; returns the paths. */
export async function writeReport(report: SoakReport, prefix: string): Promise<string[]> {
  const dir = prefix.slice(0, prefix.lastIndexOf("/"));
  if (dir) await Deno.mkdir(dir, { recursive: true });
  const paths = [`${prefix}.json`, `${prefix}.md`, `${prefix}.svg`];
  await Deno.writeTextFile(paths[0]!, JSON.stringify(report, null, 1) + "\n");
  await Deno.writeTextFile(paths[1]!, markdown(report));
  await Deno.writeTextFile(paths[2]!, svg(report));
  return paths;
}
