/**
 * Prints CI's closing line `N passed, N failed[, N skipped]` and exits 1 when anything failed.
 *
 *   junit_summary.ts <junit.xml> [--console=<deno test output>] [--exit-code=<n>] [--failed-step=<name>]...
 *
 * Rules: every test and every step Deno ran counts once (each is one `<testcase>`, so a test whose name
 * holds ` > ` counts like any other); ignored ones are skipped. A module whose top level threw never
 * reaches the JUnit report: Deno lists it as `<module> (uncaught error)` under FAILURES in its console
 * output, and each such entry is one more failure, as in Deno's own headline. That headline is then
 * compared with the counts: any disagreement, a missing headline or report, or a non-zero exit code with
 * nothing failed, counts as one more failure, so a red run can never read `0 failed`. Each
 * `--failed-step` (e.g. `deno task ok`) is one more failure.
 */

export interface Counts {
  passed: number;
  failed: number;
  skipped: number;
}

/** Counts of a Deno JUnit report: one per `<testcase>` (tests and steps alike). */
export function junitCounts(xml: string): Counts {
  const counts = { passed: 0, failed: 0, skipped: 0 };
  for (const m of xml.matchAll(/<testcase\b[^>]*?(?:\/>|>([\s\S]*?)<\/testcase>)/g)) {
    const inner = m[1] ?? "";
    if (/<(failure|error)\b/.test(inner)) counts.failed++;
    else if (/<skipped\b/.test(inner)) counts.skipped++;
    else counts.passed++;
  }
  return counts;
}

/** What Deno's console output says: the uncaught-error modules under FAILURES, and the headline. */
export interface ConsoleFacts {
  uncaughtModules: string[];
  /** Tests plus steps, as Deno's last `ok | ...` or `FAILED | ...` line adds them up; null if none. */
  headline: Counts | null;
}

function count(segment: string | undefined, word: string): number {
  const m = new RegExp(`(\\d+) ${word}(?: \\((\\d+) steps?\\))?`).exec(segment ?? "");
  return m ? Number(m[1]) + Number(m[2] ?? 0) : 0;
}

export function consoleFacts(text: string): ConsoleFacts {
  // deno-lint-ignore no-control-regex -- colour codes, in case the output was not made with NO_COLOR
  const plain = text.replace(/\x1b\[[0-9;]*m/g, "");
  const lines = plain.split("\n");
  const uncaughtModules: string[] = [];
  const start = lines.findIndex((l) => l.trim() === "FAILURES");
  if (start >= 0) {
    for (const line of lines.slice(start + 1)) {
      if (/^(ok|FAILED) \| /.test(line)) break;
      const m = /^(\S.*) \(uncaught error\)$/.exec(line.trim());
      if (m) uncaughtModules.push(m[1]!);
    }
  }
  const head = lines.findLast((l) => /^(ok|FAILED) \| \d+ passed/.test(l));
  let headline: Counts | null = null;
  if (head) {
    const parts = head.split(" | ");
    headline = {
      passed: count(parts.find((p) => / passed/.test(p)), "passed"),
      failed: count(parts.find((p) => / failed/.test(p)), "failed"),
      skipped: count(parts.find((p) => / ignored/.test(p)), "ignored"),
    };
  }
  return { uncaughtModules, headline };
}

export interface SummaryInput {
  /** The JUnit report's text; null when none was written. */
  junit: string | null;
  /** Deno's console output; null when not captured. */
  console: string | null;
  /** Exit code of `deno test`; null when unknown. */
  exitCode: number | null;
  /** CI steps other than the tests that failed (each one failure). */
  failedSteps: string[];
}

/** The closing line's counts and the reasons for every failure that is not a test's own. */
export function summarize(input: SummaryInput): Counts & { notes: string[] } {
  const notes: string[] = [];
  const c = input.junit === null ? { passed: 0, failed: 0, skipped: 0 } : junitCounts(input.junit);
  if (input.junit === null) {
    c.failed++;
    notes.push("no JUnit report was written");
  }
  if (input.console !== null) {
    const facts = consoleFacts(input.console);
    for (const module of facts.uncaughtModules) {
      c.failed++;
      notes.push(`${module}: uncaught error (a module that throws while loading has no tests in the report)`);
    }
    const h = facts.headline;
    if (h === null) {
      c.failed++;
      notes.push("deno test printed no summary line (it stopped before the end)");
    } else if (h.passed !== c.passed || h.failed !== c.failed || h.skipped !== c.skipped) {
      notes.push(
        `deno's own summary says ${h.passed} passed, ${h.failed} failed, ${h.skipped} ignored (steps included)`,
      );
      c.failed = Math.max(c.failed, h.failed) + 1;
    }
  }
  if (input.exitCode !== null && input.exitCode !== 0 && c.failed === 0) {
    c.failed++;
    notes.push(`deno test exited with ${input.exitCode} although no test failed`);
  }
  for (const step of input.failedSteps) {
    c.failed++;
    notes.push(`${step} failed`);
  }
  return { ...c, notes };
}

export function closingLine(c: Counts): string {
  return `${c.passed} passed, ${c.failed} failed${c.skipped ? `, ${c.skipped} skipped` : ""}`;
}

function readOrNull(path: string | undefined): string | null {
  if (path === undefined) return null;
  try {
    return Deno.readTextFileSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

if (import.meta.main) {
  const junitPath = Deno.args.find((a) => !a.startsWith("--"));
  if (!junitPath) {
    throw new Error(
      "usage: junit_summary.ts <junit.xml> [--console=<file>] [--exit-code=<n>] [--failed-step=<name>]",
    );
  }
  const flag = (name: string) =>
    Deno.args.filter((a) => a.startsWith(`--${name}=`)).map((a) => a.slice(name.length + 3));
  const consolePath = flag("console")[0];
  const exit = flag("exit-code")[0];
  const result = summarize({
    junit: readOrNull(junitPath),
    console: consolePath === undefined ? null : readOrNull(consolePath) ?? "",
    exitCode: exit === undefined ? null : Number(exit),
    failedSteps: flag("failed-step"),
  });
  // deno-lint-ignore no-console
  for (const note of result.notes) console.error(`ci: ${note}`);
  // deno-lint-ignore no-console
  console.log(closingLine(result));
  if (result.failed > 0) Deno.exit(1);
}
