import assert from "node:assert/strict";
import { createLogger, errorText } from "./logger.ts";
import { Sensitive } from "../api/sensitive.ts";

Deno.test("logger: JSON lines carry controller-runtime's keys and bound fields", () => {
  const lines: string[] = [];
  const log = createLogger({ write: (l) => lines.push(l), now: () => 1_700_000_000_500, name: "op" });
  log.named("binding").with({ controller: "binding", namespace: "ns" }).info("Reconciling", { name: "b1" });
  assert.deepEqual(JSON.parse(lines[0] ?? ""), {
    level: "info",
    ts: 1_700_000_000.5,
    logger: "op.binding",
    msg: "Reconciling",
    controller: "binding",
    namespace: "ns",
    name: "b1",
  });
});

Deno.test("logger: the level filters, and errors render their cause chain", () => {
  const lines: string[] = [];
  const log = createLogger({ write: (l) => lines.push(l), level: "info" });
  log.debug("hidden");
  log.error("Failed", new Error("outer", { cause: new TypeError("inner") }));
  assert.equal(lines.length, 1);
  assert.equal(JSON.parse(lines[0] ?? "").error, "outer: inner");
  assert.ok(!log.enabled("debug"));
});

Deno.test("logger: console format is one readable line", () => {
  const lines: string[] = [];
  createLogger({ format: "console", write: (l) => lines.push(l), now: () => 0 }).info("hello world", {
    k: "a b",
  });
  assert.equal(lines[0], '1970-01-01T00:00:00.000Z\tINFO \thello world\tk="a b"');
});

Deno.test("logger: a Sensitive value passed by mistake prints as [redacted]", () => {
  const lines: string[] = [];
  const secret = new Sensitive("hunter2");
  createLogger({ write: (l) => lines.push(l) }).error("Failed", new Error(`bad ${secret}`), {
    v: `${secret}`,
  });
  assert.ok(!lines[0]?.includes("hunter2"));
  assert.equal(errorText({ toString: () => "x" }), "[object Object]");
});
