/**
 * `tools/deno task soak`: a seeded, replayable soak of the operator (see soak.ts) on real peers; writes
 * `<out>.json`, `<out>.md` and `<out>.svg` (default `bench/results/soak/latest`) and prints the markdown.
 * Flags (each `--name=value` or `--name value`): --seed (default 1), --duration (minutes, default 10),
 * --rate (operations per second, default 0.5), --fault-rate (faults per minute, default 1),
 * --leader-kill-gap (the fewest minutes from one leader kill to the next, default 0: only the cool-down
 * every fault's target takes), --quiet-every (steps between quiet points, default 90), --until-step (replay
 * up to that step), --hand-namespaces, --real-per-ns, --standin-per-ns, --auto-namespaces, --auto-per-ns
 * (the world's sizes), --sample-every (seconds, default 10), --log-level (debug or info, default debug),
 * --out.
 * Exits 1 when the run had violations or a replica's memory or file descriptors were not flat (a replica
 * with under 15 minutes of samples after its runs' 10-minute warm-ups is not judged on them).
 */
import { runSoak, writeReport } from "./soak.ts";

const defaults: Record<string, string> = {
  "seed": "1",
  "duration": "10",
  "rate": "0.5",
  "fault-rate": "1",
  "leader-kill-gap": "0",
  "quiet-every": "90",
  "hand-namespaces": "3",
  "real-per-ns": "2",
  "standin-per-ns": "8",
  "auto-namespaces": "1",
  "auto-per-ns": "8",
  "sample-every": "10",
  "log-level": "debug",
  "out": "bench/results/soak/latest",
};
const flags = new Map<string, string>();
for (let i = 0; i < Deno.args.length; i++) {
  const arg = Deno.args[i]!;
  const m = /^--([a-z-]+)(?:=(.*))?$/.exec(arg);
  if (!m || !(m[1]! in defaults || m[1] === "until-step")) {
    // deno-lint-ignore no-console -- a usage error before anything runs
    console.error(
      `soak: unknown argument ${arg}; flags: ${[...Object.keys(defaults), "until-step"].join(", ")}`,
    );
    Deno.exit(2);
  }
  flags.set(m[1]!, m[2] ?? Deno.args[++i] ?? "");
}
const get = (name: string) => flags.get(name) ?? defaults[name]!;
const num = (name: string) => {
  const v = Number(get(name));
  if (!Number.isFinite(v) || v < 0) {
    // deno-lint-ignore no-console
    console.error(`soak: --${name} wants a number, got ${get(name)}`);
    Deno.exit(2);
  }
  return v;
};

const sizes = {
  handNamespaces: num("hand-namespaces"),
  realPerNamespace: num("real-per-ns"),
  standinPerNamespace: num("standin-per-ns"),
  autoNamespaces: num("auto-namespaces"),
  autoPerNamespace: num("auto-per-ns"),
};
// The flags that shape the steps, so the replay command draws the same ones.
const shaping = [
  "rate",
  "fault-rate",
  "leader-kill-gap",
  "quiet-every",
  "hand-namespaces",
  "real-per-ns",
  "standin-per-ns",
  "auto-namespaces",
  "auto-per-ns",
].map((f) => `--${f} ${get(f)}`).join(" ");
const logLevel = get("log-level") === "info" ? "info" : "debug";
const report = await runSoak({
  seed: num("seed"),
  durationMs: num("duration") * 60_000,
  rate: num("rate"),
  faultRate: num("fault-rate"),
  leaderKillGapMin: num("leader-kill-gap"),
  quietEverySteps: Math.max(1, Math.round(num("quiet-every"))),
  untilStep: flags.has("until-step") ? num("until-step") : undefined,
  sizes,
  sampleEveryMs: num("sample-every") * 1000,
  logLevel,
  // deno-lint-ignore no-console -- progress of a long run
  say: (msg) => console.error(`[soak ${new Date().toISOString().slice(11, 19)}] ${msg}`),
  replayCommand: `tools/deno task soak --duration ${get("duration")} ${shaping}`,
});
const paths = await writeReport(report, get("out"));
// deno-lint-ignore no-console -- the summary is the program's output
console.log((await Deno.readTextFile(paths[1]!)) + `\nWrote ${paths.join(", ")}`);
Deno.exit(report.violations.length === 0 && report.flat !== false ? 0 : 1);
