import assert from "node:assert/strict";
import { sameJSON, stableJSON } from "./same.ts";

Deno.test("sameJSON() ignores key order and undefined members, not values or array order", () => {
  assert.ok(sameJSON({ a: 1, b: { c: [1, 2], d: "x" } }, { b: { d: "x", c: [1, 2] }, a: 1 }));
  assert.ok(sameJSON({ a: 1, gone: undefined }, { a: 1 }));
  assert.ok(!sameJSON({ a: [1, 2] }, { a: [2, 1] }));
  assert.ok(!sameJSON({ a: 1 }, { a: "1" }));
  assert.equal(stableJSON({ b: 2, a: [{ d: 1, c: 0 }] }), '{"a":[{"c":0,"d":1}],"b":2}');
});
