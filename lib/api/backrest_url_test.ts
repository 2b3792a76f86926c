import assert from "node:assert/strict";
import { backrestURLAllowed, backrestURLProblem, urlUnderPrefix } from "./backrest_url.ts";

Deno.test("backrestURLProblem() accepts absolute http(s) URLs only", () => {
  for (
    const ok of ["http://backrest.backups.svc:9898", "https://b.example/prefix/", "http://127.0.0.1:9898"]
  ) {
    assert.equal(backrestURLProblem(ok), undefined, ok);
  }
  for (
    const bad of [
      "ftp://b:21",
      "backrest:9898",
      "/relative",
      "",
      "file:///etc/passwd",
      "http://",
      "http://admin:secret@backrest:9898",
      "https://token@b.example/",
    ]
  ) {
    assert.notEqual(backrestURLProblem(bad), undefined, bad);
  }
});

Deno.test("urlUnderPrefix() matches scheme, host and port exactly, and the path by segments", () => {
  const prefix = "http://backrest.backups.svc:9898";
  assert.equal(urlUnderPrefix("http://backrest.backups.svc:9898", prefix), true);
  assert.equal(urlUnderPrefix("http://BACKREST.backups.svc:9898/ui/", prefix), true);
  assert.equal(urlUnderPrefix("http://backrest.backups.svc:98981", prefix), false);
  assert.equal(urlUnderPrefix("http://backrest.backups.svc.evil.example:9898", prefix), false);
  assert.equal(urlUnderPrefix("https://backrest.backups.svc:9898", prefix), false);
  assert.equal(urlUnderPrefix("http://evil.example/?http://backrest.backups.svc:9898", prefix), false);
  assert.equal(urlUnderPrefix("http://user@backrest.backups.svc:9898", prefix), true);
  assert.equal(urlUnderPrefix("http://h/backrest/api", "http://h/backrest"), true);
  assert.equal(urlUnderPrefix("http://h/backrest-evil", "http://h/backrest"), false);
  assert.equal(urlUnderPrefix("http://h:80/x", "http://h/"), true);
  assert.equal(urlUnderPrefix("not a url", prefix), false);
});

Deno.test("backrestURLAllowed() admits everything when the allowlist is empty", () => {
  assert.equal(backrestURLAllowed("http://anything:1", []), true);
  assert.equal(backrestURLAllowed("http://a:1", ["http://b:1", "http://a:1"]), true);
  assert.equal(backrestURLAllowed("http://c:1", ["http://b:1", "http://a:1"]), false);
});
