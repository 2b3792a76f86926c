import assert from "node:assert/strict";
import {
  backrestURLAllowed,
  backrestURLProblem,
  canonicalBackrestURL,
  urlUnderPrefix,
} from "./backrest_url.ts";

Deno.test("backrestURLProblem() accepts absolute http(s) URLs in their one plain spelling only", () => {
  for (
    const ok of [
      "http://backrest.backups.svc:9898",
      "https://b.example/prefix/",
      "http://127.0.0.1:9898",
      "http://[::1]:9898/backrest",
      "HTTP://Backrest:9898",
    ]
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
      // Spellings that parsers disagree on, or that move the RPC path out of the path.
      "https://gw.example/backrest/..;/admin",
      "https://gw.example/backrest/..%2fadmin",
      "https://gw.example/backrest/%2e%2e%2fadmin",
      "https://gw.example/backrest/../admin",
      "https://gw.example/backrest/./x",
      "https://gw.example/backrest/..",
      "https://gw.example/backrest?",
      "https://gw.example/backrest#x",
      "https://gw.example/backrest\\..\\admin",
      "https://gw.example//backrest",
      "https://gw.example/a//b",
      "http://backrest:0",
      "http://backrest:65536",
      "http://backrest :9898",
      "http://bäckrest:9898",
    ]
  ) {
    assert.notEqual(backrestURLProblem(bad), undefined, bad);
    assert.equal(canonicalBackrestURL(bad), undefined, bad);
  }
});

Deno.test("canonicalBackrestURL() lowercases scheme and host, makes the port explicit, drops trailing slashes", () => {
  assert.equal(canonicalBackrestURL("HTTP://BACKREST:9898"), "http://backrest:9898");
  assert.equal(canonicalBackrestURL("http://backrest:9898/"), "http://backrest:9898");
  assert.equal(canonicalBackrestURL("http://backrest"), "http://backrest:80");
  assert.equal(canonicalBackrestURL("https://b.example///"), "https://b.example:443");
  assert.equal(canonicalBackrestURL("https://b.example:443/Gw/"), "https://b.example:443/Gw");
  assert.equal(canonicalBackrestURL("http://[::1]:9898"), "http://[::1]:9898");
  assert.equal(canonicalBackrestURL("http://backrest:09898"), "http://backrest:9898");
});

Deno.test("urlUnderPrefix() matches scheme, host and port exactly, and the path by segments", () => {
  const prefix = "http://backrest.backups.svc:9898";
  assert.equal(urlUnderPrefix("http://backrest.backups.svc:9898", prefix), true);
  assert.equal(urlUnderPrefix("http://BACKREST.backups.svc:9898/ui/", prefix), true);
  assert.equal(urlUnderPrefix("http://backrest.backups.svc:98981", prefix), false);
  assert.equal(urlUnderPrefix("http://backrest.backups.svc.evil.example:9898", prefix), false);
  assert.equal(urlUnderPrefix("https://backrest.backups.svc:9898", prefix), false);
  assert.equal(urlUnderPrefix("http://evil.example/?http://backrest.backups.svc:9898", prefix), false);
  assert.equal(urlUnderPrefix("http://user@backrest.backups.svc:9898", prefix), false);
  assert.equal(urlUnderPrefix("http://h/backrest/api", "http://h/backrest"), true);
  assert.equal(urlUnderPrefix("http://h/backrest-evil", "http://h/backrest"), false);
  assert.equal(urlUnderPrefix("http://h:80/x", "http://h/"), true);
  assert.equal(urlUnderPrefix("not a url", prefix), false);
  const gw = "https://gw.example/backrest";
  for (
    const escape of [
      "https://gw.example/backrest/..;/admin",
      "https://gw.example/backrest/..%2fadmin",
      "https://gw.example/backrest/%2e%2e%2fadmin",
      "https://gw.example/backrest/../admin",
      "https://gw.example/backrest?/x",
      "https://gw.example/backrest#/x",
    ]
  ) {
    assert.equal(urlUnderPrefix(escape, gw), false, escape);
  }
});

Deno.test("backrestURLAllowed() admits every acceptable URL when the allowlist is empty, and nothing else", () => {
  assert.equal(backrestURLAllowed("http://anything:1", []), true);
  assert.equal(backrestURLAllowed("http://anything:1/%2e", []), false);
  assert.equal(backrestURLAllowed("http://a:1", ["http://b:1", "http://a:1"]), true);
  assert.equal(backrestURLAllowed("http://c:1", ["http://b:1", "http://a:1"]), false);
});
