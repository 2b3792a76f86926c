/**
 * The soak's report: figures from the run (operations and faults by kind, violations with their replay
 * command, convergence per fault kind, memory and file descriptors of each replica with their slopes), as
 * JSON (the record), a short markdown table and an SVG plot of memory, open files and queue depth over time.
 * Rule: slopes are least squares within runs of one process in one role (leader or follower), each run's
 * first `warmupS` left out, pooled over the runs: a restart or a takeover moves the level, not the trend,
 * and a level change (or a new process's climb to its plateau) must not read as a leak.
 */
import type { FaultKind } from "./faults.ts";
import type { LeaseSample, ReplicaSample } from "./sampler.ts";
import type { Slot } from "./replicas.ts";

/** Percentiles of a list (nearest rank), rounded to 0.1. */
export function quantiles(
  values: readonly number[],
): { n: number; p50: number | null; p99: number | null; max: number | null } {
  if (values.length === 0) return { n: 0, p50: null, p99: null, max: null };
  const s = [...values].sort((a, b) => a - b);
  const at = (q: number) => Math.round(s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)]! * 10) / 10;
  return { n: s.length, p50: at(0.5), p99: at(0.99), max: Math.round(s.at(-1)! * 10) / 10 };
}

/** A pooled within-group least-squares slope, per hour, with its standard error. */
export interface Slope {
  perHour: number | null;
  stdErrPerHour: number | null;
  /** Samples and groups used. */
  samples: number;
  groups: number;
  /** Hours of data behind it (sum over groups of their spans). */
  hours: number;
}

/** The slope of `y` over time (ms) pooled over `groups` (each a list of [at, y]); groups under 3 points are skipped. */
export function pooledSlope(groups: readonly (readonly [number, number])[][]): Slope {
  let sxy = 0, sxx = 0, n = 0, used = 0, span = 0;
  const kept = groups.filter((g) => g.length >= 3);
  for (const g of kept) {
    const tx = g.reduce((a, [t]) => a + t, 0) / g.length;
    const ty = g.reduce((a, [, y]) => a + y, 0) / g.length;
    for (const [t, y] of g) {
      sxy += (t - tx) * (y - ty);
      sxx += (t - tx) ** 2;
    }
    n += g.length;
    used++;
    span += (g.at(-1)![0] - g[0]![0]) / 3_600_000;
  }
  if (sxx === 0 || n - used - 1 <= 0) {
    return { perHour: null, stdErrPerHour: null, samples: n, groups: used, hours: span };
  }
  const b = sxy / sxx; // per ms
  let rss = 0;
  for (const g of kept) {
    const tx = g.reduce((a, [t]) => a + t, 0) / g.length;
    const ty = g.reduce((a, [, y]) => a + y, 0) / g.length;
    for (const [t, y] of g) rss += (y - ty - b * (t - tx)) ** 2;
  }
  const se = Math.sqrt(rss / (n - used - 1) / sxx);
  const h = 3_600_000;
  return {
    perHour: Math.round(b * h * 100) / 100,
    stdErrPerHour: Math.round(se * h * 100) / 100,
    samples: n,
    groups: used,
    hours: Math.round(span * 100) / 100,
  };
}

/**
 * How flat is flat: growth of at most `rssMBPerHour` and `fdsPerHour`; a replica with under `minMinutes` of
 * samples after its runs' warm-ups is not judged.
 */
export interface Tolerance {
  rssMBPerHour: number;
  fdsPerHour: number;
  warmupS: number;
  minMinutes: number;
}

/**
 * The default: a replica climbs for 8 to 10 minutes after it starts or takes over (V8's heap finding its
 * size, the leader's connections), so 10 minutes are left out of each run; 15 minutes judged per replica.
 */
export const DEFAULT_TOLERANCE: Tolerance = {
  rssMBPerHour: 10,
  fdsPerHour: 10,
  warmupS: 600,
  minMinutes: 15,
};

/** Groups a slot's samples into runs of one pid in one role, each without its first `warmupMs`. */
export function roleRuns(
  samples: readonly ReplicaSample[],
  slot: Slot,
  field: "rssMB" | "fds",
  warmupMs: number,
): [number, number][][] {
  const runs: ReplicaSample[][] = [];
  for (const s of samples.filter((x) => x.slot === slot)) {
    const last = runs.at(-1);
    if (last && last[0]!.pid === s.pid && last[0]!.leader === s.leader) last.push(s);
    else runs.push([s]);
  }
  return runs.map((run) =>
    run.filter((s) => s.at >= run[0]!.at + warmupMs && Number.isFinite(s[field]))
      .map((s): [number, number] => [s.at, s[field]])
  );
}

/** A replica's slopes, and whether they are within `t` (null: too little data after warm-up to tell). */
export function judgeReplica(
  samples: readonly ReplicaSample[],
  slot: Slot,
  t: Tolerance,
): { rssSlope: Slope; fdSlope: Slope; flat: boolean | null } {
  const rssSlope = pooledSlope(roleRuns(samples, slot, "rssMB", t.warmupS * 1000));
  const fdSlope = pooledSlope(roleRuns(samples, slot, "fds", t.warmupS * 1000));
  const enough = (x: Slope) => x.perHour !== null && x.hours * 60 >= t.minMinutes;
  // Growth is what is judged: a count that falls (idle connections closing) is no leak.
  const flat = !enough(rssSlope) || !enough(fdSlope)
    ? null
    : rssSlope.perHour! <= t.rssMBPerHour && fdSlope.perHour! <= t.fdsPerHour;
  return { rssSlope, fdSlope, flat };
}

/** One convergence measurement: a quiet point after a segment with these faults. */
export interface Segment {
  index: number;
  fromStep: number;
  toStep: number;
  faultKinds: FaultKind[];
  boundS: number;
  convergedS: number | null;
}

/** One violation, with how to replay the run up to it. */
export interface Violation {
  seed: number;
  step: number;
  kind: "state" | "bound" | "history" | "leak" | "driver";
  detail: string;
  replay: string;
}

/** The whole report (the JSON). */
export interface SoakReport {
  scenario: "soak";
  params: Record<string, unknown>;
  replay: string;
  machine: Record<string, unknown>;
  loadAverage: { before: number[]; after: number[] };
  startedAt: string;
  wallS: number;
  steps: number;
  achievedOpsPerS: number;
  ops: Record<string, number>;
  opErrors: string[];
  faults: Record<string, number>;
  violations: Violation[];
  bounds: Record<string, number>;
  segments: Segment[];
  convergence: Record<string, ReturnType<typeof quantiles> & { boundS: number }>;
  replicas: Record<Slot, {
    incarnations: { n: number; pid: number; startedAt: string; ended: string | null; how: string }[];
    rssSlope: Slope;
    fdSlope: Slope;
    rssMB: ReturnType<typeof quantiles>;
    fds: ReturnType<typeof quantiles>;
  }>;
  tolerance: Tolerance;
  /** Whether every replica's slopes are within the tolerance; null when a replica has too little data to tell. */
  flat: boolean | null;
  calls: Record<"real" | "standin", number>;
  leaseHolders: number;
  selfExits: { slot: Slot; n: number; code: number }[];
  /** Bindings and VolSync objects Kubernetes left in storage after their namespace went (namespace/name). */
  leftInStorage: string[];
  shutdownCodes: Record<string, number>;
  claims: ReturnType<typeof quantiles> & { last: number | null };
  leases: ReturnType<typeof quantiles> & { last: number | null };
  samples: ReplicaSample[];
  leaseSamples: LeaseSample[];
  log: { step: number; at: number; type: string; kind: string; detail: string }[];
}

const fmt = (v: number | null | undefined, digits = 1) =>
  v === null || v === undefined ? "–" : (Math.round(v * 10 ** digits) / 10 ** digits).toString();

/** The markdown summary. */
export function markdown(r: SoakReport): string {
  const lines: string[] = [];
  lines.push(`# Soak: ${Math.round(r.wallS / 60)} minutes, seed ${r.params.seed}`, "");
  lines.push(
    `Started ${r.startedAt}; ${r.steps} steps at ${r.params.rate} operations/s requested, ${r.achievedOpsPerS} ` +
      `achieved over the whole run (quiet points included); ${r.params.faultRate} faults/min requested. ` +
      `Load average before ${r.loadAverage.before.join(" ")}, after ${r.loadAverage.after.join(" ")}. ` +
      `Replay: \`${r.replay}\`.`,
    "",
  );
  lines.push(
    `**Violations: ${r.violations.length}**; memory and file descriptors ${
      r.flat === null ? "not judged (too little data after warm-up)" : r.flat ? "flat" : "NOT flat"
    }.`,
    "",
  );
  for (const v of r.violations.slice(0, 50)) {
    lines.push(`- step ${v.step} (${v.kind}): ${v.detail} — \`${v.replay}\``);
  }
  if (r.violations.length > 50) lines.push(`- ... ${r.violations.length - 50} more in the JSON`);
  if (r.violations.length) lines.push("");
  lines.push("| operation | count |", "| --- | ---: |");
  for (const [k, n] of Object.entries(r.ops).sort()) lines.push(`| ${k} | ${n} |`);
  lines.push(
    "",
    "| fault | injected | convergence p50 s | p99 s | max s | bound s |",
    "| --- | ---: | ---: | ---: | ---: | ---: |",
  );
  for (const [k, c] of Object.entries(r.convergence).sort()) {
    lines.push(
      `| ${k} | ${r.faults[k] ?? "–"} | ${fmt(c.p50)} | ${fmt(c.p99)} | ${fmt(c.max)} | ${c.boundS} |`,
    );
  }
  lines.push(
    "",
    "Convergence is measured at each quiet point, from the moment operations stop and every fault is healed " +
      "until the checker finds the whole system as it should be (three clean checks in a row); a segment's " +
      "time counts for every fault kind injected in it (`none`: operations only), and its bound is the largest " +
      "of theirs.",
    "",
  );
  lines.push(
    "| replica | incarnations | RSS p50 / max MB | RSS slope MB/h | fds p50 / max | fd slope /h |",
    "| --- | ---: | ---: | ---: | ---: | ---: |",
  );
  for (const [slot, x] of Object.entries(r.replicas)) {
    lines.push(
      `| ${slot} | ${x.incarnations.length} | ${fmt(x.rssMB.p50)} / ${fmt(x.rssMB.max)} | ${
        fmt(x.rssSlope.perHour, 2)
      } ± ${fmt(x.rssSlope.stdErrPerHour, 2)} [${fmt(x.rssSlope.hours * 60, 0)}] | ${fmt(x.fds.p50, 0)} / ${
        fmt(x.fds.max, 0)
      } | ${fmt(x.fdSlope.perHour, 2)} ± ${fmt(x.fdSlope.stdErrPerHour, 2)} [${
        fmt(x.fdSlope.hours * 60, 0)
      }] |`,
    );
  }
  lines.push(
    "",
    `Slopes: least squares within each run of one process in one role, each run's first ` +
      `${r.tolerance.warmupS} s left out, pooled over the runs (± one standard error; minutes judged in ` +
      `brackets). Tolerance: RSS slope ≤ ${r.tolerance.rssMBPerHour} MB/h and fd slope ≤ ` +
      `${r.tolerance.fdsPerHour}/h (growth is judged; a fall is no leak), with at least ${r.tolerance.minMinutes} minutes. Claim Leases p50 ` +
      `${fmt(r.claims.p50, 0)}, max ${fmt(r.claims.max, 0)}, last ${
        fmt(r.claims.last, 0)
      }; all Leases last ` +
      `${fmt(r.leases.last, 0)}. Backrest calls checked: ${
        Object.entries(r.calls).map(([k, v]) => `${k} ${v}`).join(", ")
      }; ` +
      `${r.leaseHolders} Lease holders in turn; replicas that ended on their own: ${r.selfExits.length}. ` +
      `Objects Kubernetes left in storage after their namespace went (not judged): ${
        r.leftInStorage.length === 0 ? "none" : r.leftInStorage.join(", ")
      }.`,
    "",
  );
  return lines.join("\n");
}

const COLORS: Record<Slot, string> = { a: "#1f77b4", b: "#ff7f0e" };
const FAULT_COLORS: Record<string, string> = {
  "leader-kill": "#d62728",
  "backrest-kill": "#9467bd",
  "backrest-wipe": "#8c564b",
  "blackhole": "#333333",
  "slow": "#7f7f7f",
  "garbage": "#bcbd22",
  "apiserver-restart": "#17becf",
  "watch-expire": "#2ca02c",
};

function escape(s: string): string {
  return s.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");
}

/** The SVG plot: RSS, open fds and queue depth of each replica over time, faults and quiet points marked. */
export function svg(r: SoakReport): string {
  const W = 960, left = 60, right = 20, panelH = 150, gap = 36, top = 56;
  const samples = r.samples;
  const t0 = Date.parse(r.startedAt);
  const tMax = Math.max(r.wallS * 1000, 1);
  const x = (at: number) => left + ((at - t0) / tMax) * (W - left - right);
  const panels: { title: string; field: "rssMB" | "fds" | "queueDepth" }[] = [
    { title: "resident memory (MB)", field: "rssMB" },
    { title: "open file descriptors", field: "fds" },
    { title: "work queue depth (sum of controllers)", field: "queueDepth" },
  ];
  const out: string[] = [];
  const H = top + panels.length * (panelH + gap) + 20;
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${left}" y="18" font-size="14" font-weight="bold">${
      escape(
        `Soak: ${Math.round(r.wallS / 60)} min, seed ${r.params.seed}, ${r.violations.length} violations`,
      )
    }</text>`,
  );
  // Legend: replicas and fault kinds.
  let lx = left;
  for (const slot of ["a", "b"] as const) {
    out.push(
      `<rect x="${lx}" y="28" width="14" height="4" fill="${COLORS[slot]}"/><text x="${
        lx + 18
      }" y="33">replica ${slot}</text>`,
    );
    lx += 80;
  }
  for (const [k, c] of Object.entries(FAULT_COLORS)) {
    out.push(
      `<rect x="${lx}" y="26" width="3" height="9" fill="${c}"/><text x="${lx + 6}" y="34">${k}</text>`,
    );
    lx += 12 + k.length * 6;
  }
  panels.forEach((p, i) => {
    const y0 = top + i * (panelH + gap);
    const values = samples.map((s) => s[p.field]).filter((v): v is number =>
      typeof v === "number" && Number.isFinite(v)
    );
    const max = Math.max(1, ...values) * 1.1;
    const y = (v: number) => y0 + panelH - (v / max) * panelH;
    out.push(
      `<text x="${left}" y="${y0 - 6}" font-weight="bold">${escape(p.title)}</text>`,
      `<rect x="${left}" y="${y0}" width="${
        W - left - right
      }" height="${panelH}" fill="none" stroke="#ccc"/>`,
    );
    for (const frac of [0, 0.5, 1]) {
      out.push(
        `<text x="${left - 4}" y="${y(max / 1.1 * frac) + 4}" text-anchor="end">${
          Math.round(max / 1.1 * frac)
        }</text>`,
      );
    }
    for (const seg of r.segments) {
      const at = r.log.find((e) => e.type === "quiet" && e.step === seg.toStep)?.at;
      if (at) out.push(`<line x1="${x(at)}" y1="${y0}" x2="${x(at)}" y2="${y0 + panelH}" stroke="#e8e8e8"/>`);
    }
    if (i === 0) {
      for (const e of r.log.filter((e) => e.type === "fault")) {
        out.push(
          `<rect x="${x(e.at) - 1}" y="${y0 + panelH - 10}" width="2" height="10" fill="${
            FAULT_COLORS[e.kind] ?? "#000"
          }"/>`,
        );
      }
    }
    // One line per process (a restart starts a new line).
    const byPid = new Map<number, ReplicaSample[]>();
    for (const s of samples) byPid.set(s.pid, [...byPid.get(s.pid) ?? [], s]);
    for (const run of byPid.values()) {
      const pts = run.filter((s) => typeof s[p.field] === "number" && Number.isFinite(s[p.field] as number))
        .map((s) => `${x(s.at).toFixed(1)},${y(s[p.field] as number).toFixed(1)}`);
      if (pts.length > 1) {
        out.push(
          `<polyline fill="none" stroke="${COLORS[run[0]!.slot]}" stroke-width="1.3" points="${
            pts.join(" ")
          }"/>`,
        );
      }
    }
    if (i === panels.length - 1) {
      for (let m = 0; m <= r.wallS / 60; m += Math.max(1, Math.round(r.wallS / 60 / 12))) {
        out.push(
          `<text x="${x(t0 + m * 60_000)}" y="${y0 + panelH + 14}" text-anchor="middle">${m} min</text>`,
        );
      }
    }
  });
  out.push("</svg>", "");
  return out.join("\n");
}
