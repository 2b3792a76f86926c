import assert from "node:assert/strict";
import { Sensitive } from "./sensitive.ts";

Deno.test("Sensitive never prints its value", () => {
  const s = new Sensitive("canary-7f3a");
  const forms = [
    String(s),
    `${s}`,
    JSON.stringify({ s }),
    Deno.inspect(s),
    Deno.inspect({ nested: [s] }),
    s + "",
  ];
  for (const form of forms) assert.ok(!form.includes("canary-7f3a"), form);
  assert.equal(s.reveal(), "canary-7f3a");
  assert.equal(s.isEmpty, false);
});
