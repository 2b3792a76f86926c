import assert from "node:assert/strict";
import { formatDuration, parseDuration, parseDurationNs } from "./duration.ts";

Deno.test("parseDuration() reads Go-style durations in milliseconds", () => {
  assert.equal(parseDuration("10m"), 600_000);
  assert.equal(parseDuration("1h30m"), 5_400_000);
  assert.equal(parseDuration("1.5s"), 1500);
  assert.equal(parseDuration("250ms"), 250);
  assert.equal(parseDuration("1m30s500ms"), 90_500);
  assert.equal(parseDuration("2000us"), 2);
  assert.equal(parseDuration("2000µs"), 2);
  assert.equal(parseDuration("5000000ns"), 5);
});

Deno.test("parseDuration() truncates fractions of a nanosecond as Go does, so the CRD's bounds agree", () => {
  assert.equal(parseDurationNs("24h0.5ns"), 86_400_000_000_000n);
  assert.equal(parseDuration("24h0.5ns"), 86_400_000);
  assert.equal(parseDuration("86400000000000.9ns"), 86_400_000);
  assert.equal(parseDuration("86400000000001ns"), 86_400_000.000001);
  assert.equal(parseDuration("0.9999999999s"), 999.999999);
  assert.equal(parseDuration("1.000000000999s"), 1000);
  assert.equal(parseDurationNs("9223372036854775807ns"), 9_223_372_036_854_775_807n);
  assert.equal(parseDuration("9223372036854775808ns"), undefined, "beyond Go's limit");
  assert.equal(parseDuration("3000000h"), undefined, "beyond Go's limit");
});

Deno.test("parseDuration() refuses what the CRD's pattern refuses", () => {
  for (const bad of ["", "10", "-1m", "+1m", "1d", "1 m", "m", "1.m", ".5s", "10M", "1h 30m"]) {
    assert.equal(parseDuration(bad), undefined, bad);
  }
});

Deno.test("formatDuration() prints like Go", () => {
  assert.equal(formatDuration(600_000), "10m0s");
  assert.equal(formatDuration(5_400_000), "1h30m0s");
  assert.equal(formatDuration(1500), "1.5s");
  assert.equal(formatDuration(250), "250ms");
  assert.equal(formatDuration(0), "0s");
});
