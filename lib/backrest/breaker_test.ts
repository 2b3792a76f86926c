import assert from "node:assert/strict";
import { Breakers, countsAgainst } from "./breaker.ts";
import { BackrestError } from "./errors.ts";

function refused(b: Breakers, url: string): boolean {
  try {
    b.admit(url, "AddRepo");
    return false;
  } catch (e) {
    assert.ok(e instanceof BackrestError && e.kind === "unavailable", String(e));
    return true;
  }
}

Deno.test("Breakers: a failure refuses the URL for its backoff, then lets exactly one probe through", () => {
  let now = 0;
  const b = new Breakers({ now: () => now, baseMs: 1000, maxMs: 4000 });
  assert.equal(refused(b, "http://dead:1"), false, "closed at first");
  b.failure("http://dead:1");
  assert.equal(refused(b, "http://dead:1"), true);
  assert.equal(refused(b, "http://alive:1"), false, "other Backrests are not affected");
  now = 1000;
  assert.equal(refused(b, "http://dead:1"), false, "after the backoff: one probe");
  assert.equal(refused(b, "http://dead:1"), true, "the others wait for the probe");
  b.failure("http://dead:1");
  now = 2999;
  assert.equal(refused(b, "http://dead:1"), true, "the backoff doubled");
  now = 3000;
  assert.equal(refused(b, "http://dead:1"), false);
  b.failure("http://dead:1");
  now = 3000 + 4000;
  assert.equal(refused(b, "http://dead:1"), false, "capped at maxMs");
  b.success("http://dead:1");
  assert.equal(refused(b, "http://dead:1"), false);
  assert.equal(refused(b, "http://dead:1"), false, "closed again: every call goes");
});

Deno.test("Breakers: a canceled probe frees the probe slot; memory is bounded", () => {
  let now = 0;
  const b = new Breakers({ now: () => now, maxURLs: 2 });
  b.failure("a");
  now = 1000;
  assert.equal(refused(b, "a"), false);
  b.released("a");
  assert.equal(refused(b, "a"), false, "the next caller may probe");
  b.failure("b");
  b.failure("c");
  assert.equal(b.isOpen("a"), false, "the oldest is forgotten beyond maxURLs");
  assert.equal(b.isOpen("c"), true);
});

Deno.test("countsAgainst(): only Backrest not answering counts, never one repository's slow storage", () => {
  const e = (kind: "unavailable" | "deadline" | "failed", rpc: string, fromServer = false) =>
    new BackrestError(kind, rpc, `${rpc}: x`, { fromServer });
  assert.equal(countsAgainst(e("unavailable", "AddRepo")), true, "no connection");
  assert.equal(countsAgainst(e("deadline", "Probe")), true, "the probe runs no restic");
  assert.equal(countsAgainst(e("deadline", "GetSummaryDashboard")), true);
  assert.equal(countsAgainst(e("deadline", "AddRepo")), false, "restic waiting on a tenant's storage");
  assert.equal(countsAgainst(e("deadline", "CheckRepoExists")), false);
  assert.equal(countsAgainst(e("unavailable", "AddRepo", true)), false, "Backrest answered");
  assert.equal(countsAgainst(e("failed", "AddRepo", true)), false);
});
