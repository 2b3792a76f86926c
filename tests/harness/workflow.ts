/**
 * Runs a GitHub workflow job's `run:` steps here, as the runner would: in order, each with
 * `bash --noprofile --norc -eo pipefail` (GitHub's shell for `run:`), its `${{ ... }}` expressions filled
 * in first, the workflow's, job's and step's `env`, and the runner's files ($GITHUB_OUTPUT per step,
 * $GITHUB_ENV and $GITHUB_PATH carried to later steps). Step outputs feed later expressions and the job's
 * `outputs`, which feed `needs.<job>.outputs` of the jobs after it.
 * Rules: an expression the runner does not know fails the run (a new one must be taught here, never
 * guessed); `uses:` steps are not run (their tools are on this machine: Node.js, Go); a step is left out
 * only when the caller names it, with the outputs it would have given.
 */
import { isRecord } from "../../lib/json.ts";
import { tempDir } from "./process.ts";

/** A workflow file as parsed YAML; nothing about its shape is assumed until read. */
export type Workflow = Record<string, unknown>;

/** One step of a job. */
export interface Step {
  name: string;
  id?: string;
  run?: string;
  uses?: string;
  if?: string;
  env: Record<string, string>;
}

function strings(v: unknown): Record<string, string> {
  if (!isRecord(v)) return {};
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, String(x)]));
}

/** The steps of a job, each named (an unnamed `uses:` step by its action). */
export function jobSteps(wf: Workflow, job: string): Step[] {
  const j = isRecord(wf.jobs) ? wf.jobs[job] : undefined;
  if (!isRecord(j)) throw new Error(`no job ${job}`);
  const steps = Array.isArray(j.steps) ? j.steps : [];
  return steps.filter(isRecord).map((s) => ({
    name: typeof s.name === "string" ? s.name : typeof s.uses === "string" ? s.uses : String(s.run),
    ...(typeof s.id === "string" ? { id: s.id } : {}),
    ...(typeof s.run === "string" ? { run: s.run } : {}),
    ...(typeof s.uses === "string" ? { uses: s.uses } : {}),
    ...(typeof s.if === "string" ? { if: s.if } : {}),
    env: strings(s.env),
  }));
}

/**
 * Whether a script runs a program of this repository: `tools/deno`, or a file under tools/, tests/ or .ci/
 * run directly or by bash (a path that is only an argument, e.g. read by sed, is not running it).
 */
export function runsOurScript(script: string): boolean {
  return /(?:^|[;&|(`]\s*|\$\(\s*|\bbash\s+)(?:\.\/)?(?:tools|tests|\.ci)\/[\w./-]+/m.test(script);
}

/** The GitHub context the expressions and the runner's variables are made from. */
export interface GitHubContext {
  ref: string;
  refName: string;
  repositoryOwner: string;
  repository: string;
  actor: string;
  eventName: string;
  sha: string;
}

export interface JobRun {
  /** Outputs by step id. */
  steps: Record<string, Record<string, string>>;
  /** The job's `outputs`, evaluated. */
  outputs: Record<string, string>;
  /** Names of the steps run, in order. */
  ran: string[];
}

export interface RunJobOptions {
  cwd: string;
  github: GitHubContext;
  /** `needs.<job>.outputs` of the jobs this one needs. */
  needs?: Record<string, Record<string, string>>;
  /** Steps not run here, by name: why, and the outputs they would give. */
  skip?: Record<string, { why: string; outputs?: Record<string, string> }>;
  /** Variables of this machine passed to every step (PATH, HOME, ...). */
  baseEnv?: Record<string, string>;
}

/** Parses `name=value` lines and `name<<DELIM` blocks of a runner file. */
export function parseRunnerFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line === "") continue;
    const heredoc = /^([^=<]+)<<(.+)$/.exec(line);
    if (heredoc) {
      const end = lines.indexOf(heredoc[2]!, i + 1);
      if (end < 0) throw new Error(`unterminated ${heredoc[1]}<<${heredoc[2]}`);
      out[heredoc[1]!] = lines.slice(i + 1, end).join("\n");
      i = end;
      continue;
    }
    const eq = line.indexOf("=");
    if (eq <= 0) throw new Error(`not a name=value line: ${line}`);
    out[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return out;
}

interface Scope {
  github: GitHubContext;
  env: Record<string, string>;
  steps: Record<string, Record<string, string>>;
  needs: Record<string, Record<string, string>>;
}

function evaluate(expr: string, scope: Scope): string {
  const e = expr.trim();
  const g: Record<string, string> = {
    ref: scope.github.ref,
    ref_name: scope.github.refName,
    repository_owner: scope.github.repositoryOwner,
    repository: scope.github.repository,
    actor: scope.github.actor,
    event_name: scope.github.eventName,
    sha: scope.github.sha,
  };
  let m: RegExpExecArray | null;
  if ((m = /^github\.(\w+)$/.exec(e)) && m[1]! in g) return g[m[1]!]!;
  if ((m = /^env\.(\w+)$/.exec(e))) {
    const v = scope.env[m[1]!];
    if (v === undefined) throw new Error(`\${{ ${e} }}: no such variable`);
    return v;
  }
  if ((m = /^steps\.([\w-]+)\.outputs\.([\w-]+)$/.exec(e))) {
    const v = scope.steps[m[1]!]?.[m[2]!];
    if (v === undefined) throw new Error(`\${{ ${e} }}: step ${m[1]} gave no output ${m[2]}`);
    return v;
  }
  if ((m = /^needs\.([\w-]+)\.outputs\.([\w-]+)$/.exec(e))) {
    const v = scope.needs[m[1]!]?.[m[2]!];
    if (v === undefined) throw new Error(`\${{ ${e} }}: job ${m[1]} gave no output ${m[2]}`);
    return v;
  }
  // A secret's value never matters to a step that runs here; it must only be there.
  if (/^secrets\.\w+$/.test(e)) return "not-a-secret";
  if (e === "runner.os") return "Linux";
  throw new Error(`\${{ ${e} }}: an expression this runner does not know`);
}

/** Fills in every `${{ ... }}` of a text. */
export function substitute(text: string, scope: Scope): string {
  return text.replace(/\$\{\{(.*?)\}\}/g, (_, e: string) => evaluate(e, scope));
}

/** Runs a job's `run:` steps in order; throws with the step's output when one fails. */
export async function runJob(wf: Workflow, job: string, o: RunJobOptions): Promise<JobRun> {
  const j = isRecord(wf.jobs) ? wf.jobs[job] : undefined;
  if (!isRecord(j)) throw new Error(`no job ${job}`);
  const dir = await tempDir(`workflow-${job}`);
  const runnerTemp = `${dir}/runner-temp`;
  await Deno.mkdir(runnerTemp);
  const carried: Record<string, string> = {};
  const paths: string[] = [];
  const scope: Scope = { github: o.github, env: {}, steps: {}, needs: o.needs ?? {} };
  // Workflow env first, then the job's, each able to use what came before.
  for (const level of [wf.env, j.env]) {
    for (const [k, v] of Object.entries(strings(level))) scope.env[k] = substitute(v, scope);
  }
  const ran: string[] = [];
  for (const [i, step] of jobSteps(wf, job).entries()) {
    const skipped = o.skip?.[step.name];
    if (skipped) {
      if (step.id) scope.steps[step.id] = skipped.outputs ?? {};
      continue;
    }
    if (step.run === undefined) continue;
    if (step.if !== undefined) {
      throw new Error(`${job}/${step.name}: a step with if: must be skipped by name`);
    }
    const env: Record<string, string> = { ...scope.env, ...carried };
    for (const [k, v] of Object.entries(step.env)) env[k] = substitute(v, { ...scope, env });
    const script = substitute(step.run, { ...scope, env });
    const output = `${dir}/output-${i}`;
    await Deno.writeTextFile(output, "");
    await Deno.writeTextFile(`${dir}/env-${i}`, "");
    await Deno.writeTextFile(`${dir}/path-${i}`, "");
    const base = o.baseEnv ?? {};
    const out = await new Deno.Command("bash", {
      args: ["--noprofile", "--norc", "-eo", "pipefail", "-c", script],
      cwd: o.cwd,
      clearEnv: true,
      env: {
        ...base,
        PATH: [...paths.toReversed(), base.PATH ?? Deno.env.get("PATH") ?? ""].join(":"),
        CI: "true",
        GITHUB_ACTIONS: "true",
        GITHUB_REF: o.github.ref,
        GITHUB_REF_NAME: o.github.refName,
        GITHUB_REPOSITORY: o.github.repository,
        GITHUB_REPOSITORY_OWNER: o.github.repositoryOwner,
        GITHUB_ACTOR: o.github.actor,
        GITHUB_EVENT_NAME: o.github.eventName,
        GITHUB_SHA: o.github.sha,
        GITHUB_WORKSPACE: o.cwd,
        GITHUB_OUTPUT: output,
        GITHUB_ENV: `${dir}/env-${i}`,
        GITHUB_PATH: `${dir}/path-${i}`,
        RUNNER_TEMP: runnerTemp,
        RUNNER_OS: "Linux",
        ...env,
      },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const dec = new TextDecoder();
    if (!out.success) {
      throw new Error(
        `${job}/${step.name} exited with ${out.code}:\n${dec.decode(out.stderr)}\n${dec.decode(out.stdout)}`
          .trimEnd(),
      );
    }
    ran.push(step.name);
    if (step.id) scope.steps[step.id] = parseRunnerFile(await Deno.readTextFile(output));
    Object.assign(carried, parseRunnerFile(await Deno.readTextFile(`${dir}/env-${i}`)));
    paths.push(...(await Deno.readTextFile(`${dir}/path-${i}`)).split("\n").filter(Boolean));
  }
  const outputs = Object.fromEntries(
    Object.entries(strings(j.outputs)).map(([k, v]) => [k, substitute(v, scope)]),
  );
  return { steps: scope.steps, outputs, ran };
}
