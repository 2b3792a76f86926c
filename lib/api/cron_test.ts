import assert from "node:assert/strict";
import { cronMinGapMinutes, parseCron } from "./cron.ts";

function gap(expr: string): number {
  const parsed = parseCron(expr);
  assert.ok(parsed.ok, `${expr}: ${!parsed.ok && parsed.problem}`);
  return cronMinGapMinutes(parsed.cron);
}

Deno.test("cronMinGapMinutes() is the shortest time between two runs, across hours, days and months", () => {
  assert.equal(gap("* * * * *"), 1);
  assert.equal(gap("*/15 * * * *"), 15);
  assert.equal(gap("0,50 * * * *"), 10);
  assert.equal(gap("55 * * * *"), 60);
  assert.equal(gap("0 * * * *"), 60);
  assert.equal(gap("0 3 * * *"), 1440);
  assert.equal(gap("0 1,23 * * *"), 120, "23:00 to 01:00 the next day");
  assert.equal(gap("0 3 * * 0"), 7 * 1440);
  assert.equal(gap("0 3 * * MON-FRI"), 1440);
  assert.equal(gap("0 3 * * SAT,SUN"), 1440);
  assert.equal(gap("0 0 1 * *"), 28 * 1440, "February");
  assert.equal(gap("0 0 31 * *"), 31 * 1440, "31 Jul to 31 Aug, and 31 Dec to 31 Jan");
  assert.equal(gap("0 0 29 2 *"), 1461 * 1440, "leap days");
  // Day of month AND day of week, as Backrest's library matches them.
  assert.equal(
    gap("0 0 13 * FRI"),
    28 * 1440,
    "Friday the 13th (Feb and Mar 2026), not every Friday and every 13th",
  );
  assert.equal(gap("0 0 31 2 *"), Infinity, "never");
});

Deno.test("parseCron() refuses what Backrest cannot read or would loop on", () => {
  for (
    const bad of [
      "*/0 * * * *",
      "0-99999 * * * *",
      "60 * * * *",
      "0 24 * * *",
      "0 0 0 * *",
      "0 0 * 13 *",
      "0 0 * * 7",
      "5-1 * * * *",
      "@daily",
      "0 0 * * * *",
      "* * * *",
      "-1 * * * *",
      "*/-1 * * * *",
      "0 0 * * FOO",
      "0 MON * * *",
      "$(x) * * * *",
    ]
  ) {
    assert.equal(parseCron(bad).ok, false, bad);
  }
  for (const good of ["0 3 * * 0", " 0 3 * * sun ", "0,30 9-17/2 1-15 JAN-jun mon-FRI", "5/15 * * * *"]) {
    assert.equal(parseCron(good).ok, true, good);
  }
});
