import assert from "node:assert/strict";
import { sameJSON, stableJSON } from "./json.ts";

Deno.test("sameJSON() ignores key order and undefined members, not values or array order", () => {
  assert.ok(sameJSON({ a: 1, b: { c: [1, 2], d: "x" } }, { b: { d: "x", c: [1, 2] }, a: 1 }));
  assert.ok(sameJSON({ a: 1, gone: undefined }, { a: 1 }));
  assert.ok(!sameJSON({ a: [1, 2] }, { a: [2, 1] }));
  assert.ok(!sameJSON({ a: 1 }, { a: "1" }));
  assert.equal(stableJSON({ b: 2, a: [{ d: 1, c: 0 }] }), '{"a":[{"c":0,"d":1}],"b":2}');
});

Deno.test("sameJSON() answers what comparing stableJSON() texts answers, over random values", () => {
  // Values as API objects hold them, plus the corners JSON writes alike: undefined members (dropped),
  // undefined elements and NaN (null), key order (ignored).
  let seed = 7;
  const rand = (n: number) => (seed = (seed * 1103515245 + 12345) % 2147483648) % n;
  const leaf = (): unknown => [null, undefined, 0, 1, NaN, "", "a", "1", true, false][rand(10)];
  const value = (depth: number): unknown => {
    const kind = depth > 3 ? 0 : rand(4);
    if (kind === 0 || kind === 1) return leaf();
    if (kind === 2) return Array.from({ length: rand(4) }, () => value(depth + 1));
    const out: Record<string, unknown> = {};
    for (let i = rand(4); i > 0; i--) out[["a", "b", "c", "d"][rand(4)]!] = value(depth + 1);
    return out;
  };
  /** The same value with every object's keys in another order. */
  const shuffled = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(shuffled);
    if (typeof v === "object" && v !== null) {
      return Object.fromEntries(Object.entries(v).reverse().map(([k, x]) => [k, shuffled(x)]));
    }
    return v;
  };
  let equal = 0;
  for (let i = 0; i < 20_000; i++) {
    const a = value(0);
    const b = rand(3) === 0 ? shuffled(a) : value(0);
    const expected = stableJSON(a) === stableJSON(b);
    if (expected) equal++;
    assert.equal(sameJSON(a, b), expected, `${stableJSON(a)} vs ${stableJSON(b)}`);
    assert.equal(sameJSON(b, a), expected);
  }
  assert.ok(equal > 5000 && equal < 15_000, `both answers were tried (${equal} equal of 20 000)`);
});
