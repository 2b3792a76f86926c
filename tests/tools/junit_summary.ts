/**
 * Prints `N passed, N failed[, N skipped]` from a JUnit report written by `deno test --junit-path`,
 * counting tests as deno's own headline does (steps, written as `parent > step` cases, are part of their
 * test); exits 1 when any failed.
 */
const path = Deno.args[0];
if (!path) throw new Error("usage: junit_summary.ts <junit.xml>");
const xml = await Deno.readTextFile(path);
let passed = 0, failed = 0, skipped = 0;
for (const m of xml.matchAll(/<testcase\b([^>]*?)(\/>|>([\s\S]*?)<\/testcase>)/g)) {
  if (/name="[^"]*&gt; /.test(m[1] ?? "")) continue;
  const inner = m[3] ?? "";
  if (/<(failure|error)\b/.test(inner)) failed++;
  else if (/<skipped\b/.test(inner)) skipped++;
  else passed++;
}
// deno-lint-ignore no-console
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`);
if (failed > 0) Deno.exit(1);
