import assert from "node:assert/strict";
import { compareResourceVersions } from "./object.ts";

Deno.test("compareResourceVersions: by length, then digit by digit; only the apiserver's form is ordered", () => {
  assert.ok(compareResourceVersions("9", "10")! < 0);
  assert.ok(compareResourceVersions("123457", "123456")! > 0);
  assert.equal(compareResourceVersions("42", "42"), 0);
  assert.ok(compareResourceVersions("99999999999999999999", "100000000000000000000")! < 0, "no rounding");
  for (const [a, b] of [["010", "9"], ["0", "1"], ["", "1"], [undefined, "1"], ["1a", "2"], ["-1", "2"]]) {
    assert.equal(compareResourceVersions(a, b), undefined, `${a} vs ${b}`);
  }
});
