/**
 * CI's closing line (tests/tools/junit_summary.ts) from what the pinned Deno really writes: fixture test
 * modules run by `tools/deno test --junit-path` in a temp dir, then the summary script run as CI runs it.
 * The four ways a red run used to read green: a module that crashes while loading, a failed
 * `deno task ok`, ignored steps, and tests whose names hold ` > `.
 */
import assert from "node:assert/strict";
import { closingLine, consoleFacts, junitCounts, summarize } from "./tools/junit_summary.ts";
import { DENO, ROOT } from "./harness/operator_process.ts";
import { tempDir } from "./harness/process.ts";

const NAMES = `
Deno.test("plain", () => {});
Deno.test("outer > inner, a test whose name looks like a step", () => {});
Deno.test({ name: "ignored test", ignore: true, fn: () => {} });
Deno.test("steps", async (t) => {
  await t.step("one", () => {});
  await t.step({ name: "ignored step", ignore: true, fn: () => {} });
  await t.step("two > with an arrow", async (t) => {
    await t.step("nested", () => {});
  });
});
`;

const CRASH = `throw new Error("crash while loading");\n`;

const FAILING_STEP = `
Deno.test("parent", async (t) => {
  await t.step("fails", () => {
    throw new Error("red");
  });
});
`;

interface Run {
  junit: string | null;
  console: string;
  exitCode: number;
  dir: string;
}

/** `deno test --junit-path` over the given fixture modules, as `deno task test` runs it. */
async function denoTest(files: Record<string, string>): Promise<Run> {
  const dir = await tempDir("junit");
  for (const [name, text] of Object.entries(files)) await Deno.writeTextFile(`${dir}/${name}`, text);
  const out = await new Deno.Command(DENO, {
    args: ["test", "--no-config", "-A", `--junit-path=${dir}/junit.xml`, dir],
    cwd: dir,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  let junit: string | null = null;
  try {
    junit = await Deno.readTextFile(`${dir}/junit.xml`);
  } catch { /* not written */ }
  const console = dec.decode(out.stdout) + dec.decode(out.stderr);
  await Deno.writeTextFile(`${dir}/console.txt`, console);
  return { junit, console, exitCode: out.code, dir };
}

/** The summary script as .ci/run calls it; its stdout line and exit code. */
async function ciSummary(run: Run, extra: string[] = []): Promise<{ line: string; code: number }> {
  const out = await new Deno.Command(DENO, {
    args: [
      "run",
      `--allow-read=${run.dir}`,
      `${ROOT}/tests/tools/junit_summary.ts`,
      `${run.dir}/junit.xml`,
      `--console=${run.dir}/console.txt`,
      `--exit-code=${run.exitCode}`,
      ...extra,
    ],
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { line: new TextDecoder().decode(out.stdout).trim(), code: out.code };
}

Deno.test("junit_summary: every test and step counts, ` > ` names included, ignored ones as skipped", async () => {
  const run = await denoTest({ "names_test.ts": NAMES });
  assert.equal(run.exitCode, 0, run.console);
  assert.ok(run.junit);
  // 3 tests and 3 steps passed; 1 test and 1 step ignored (Deno's own headline says the same).
  assert.deepEqual(junitCounts(run.junit), { passed: 6, failed: 0, skipped: 2 });
  assert.deepEqual(consoleFacts(run.console).headline, { passed: 6, failed: 0, skipped: 2 });
  assert.deepEqual(await ciSummary(run), { line: "6 passed, 0 failed, 2 skipped", code: 0 });
});

Deno.test("junit_summary: a module that crashes while loading is a failure", async () => {
  const run = await denoTest({ "names_test.ts": NAMES, "crash_test.ts": CRASH });
  assert.notEqual(run.exitCode, 0);
  assert.ok(run.junit);
  assert.doesNotMatch(run.junit, /crash_test/, "Deno leaves the crashed module out of the report");
  assert.deepEqual(junitCounts(run.junit), { passed: 6, failed: 0, skipped: 2 });
  const facts = consoleFacts(run.console);
  assert.equal(facts.uncaughtModules.length, 1);
  assert.match(facts.uncaughtModules[0] ?? "", /crash_test\.ts$/);
  assert.deepEqual(facts.headline, { passed: 6, failed: 1, skipped: 2 });
  assert.deepEqual(await ciSummary(run), { line: "6 passed, 1 failed, 2 skipped", code: 1 });
});

Deno.test("junit_summary: a failing `deno task ok` is one more failure", async () => {
  const run = await denoTest({ "names_test.ts": NAMES });
  assert.deepEqual(await ciSummary(run, ["--failed-step=deno task ok"]), {
    line: "6 passed, 1 failed, 2 skipped",
    code: 1,
  });
});

Deno.test("junit_summary: a failing step fails its test too, as Deno counts them", async () => {
  const run = await denoTest({ "red_test.ts": FAILING_STEP });
  assert.deepEqual(consoleFacts(run.console).headline, { passed: 0, failed: 2, skipped: 0 });
  assert.deepEqual(await ciSummary(run), { line: "0 passed, 2 failed", code: 1 });
});

Deno.test("junit_summary: a run that left no report or no headline is never green", () => {
  assert.equal(
    closingLine(
      summarize({ junit: null, console: "error: Type checking failed.\n", exitCode: 1, failedSteps: [] }),
    ),
    "0 passed, 2 failed",
  );
  const report = `<testsuites><testsuite name="./x_test.ts"><testcase name="t" classname="./x_test.ts">
        </testcase></testsuite></testsuites>`;
  assert.equal(
    closingLine(summarize({ junit: report, console: null, exitCode: 1, failedSteps: [] })),
    "1 passed, 1 failed",
    "a non-zero exit with nothing failed is a failure",
  );
  assert.equal(
    closingLine(
      summarize({ junit: report, console: "ok | 2 passed | 0 failed (1s)\n", exitCode: 0, failedSteps: [] }),
    ),
    "1 passed, 1 failed",
    "a report that disagrees with Deno's headline is a failure",
  );
});
