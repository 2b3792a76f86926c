import assert from "node:assert/strict";
import {
  type Condition,
  conditionsEqual,
  findCondition,
  formatTime,
  isConditionTrue,
  parseConditions,
  removeCondition,
  setCondition,
} from "./conditions.ts";

const T0 = new Date("2024-05-01T10:00:00.123Z");
const T1 = new Date("2024-05-01T11:00:00Z");

Deno.test("formatTime() gives RFC 3339 with seconds precision", () => {
  assert.equal(formatTime(T0), "2024-05-01T10:00:00Z");
});

Deno.test("setCondition() appends a new type with the current time", () => {
  const got = setCondition([], {
    type: "Ready",
    status: "False",
    reason: "Paused",
    message: "m",
    observedGeneration: 3,
  }, T0);
  assert.deepEqual(got, [{
    type: "Ready",
    status: "False",
    reason: "Paused",
    message: "m",
    observedGeneration: 3,
    lastTransitionTime: "2024-05-01T10:00:00Z",
  }]);
});

Deno.test("setCondition() keeps lastTransitionTime while the status is unchanged", () => {
  const first = setCondition([], { type: "Ready", status: "False", reason: "A", message: "a" }, T0);
  const second = setCondition(first, { type: "Ready", status: "False", reason: "B", message: "b" }, T1);
  assert.equal(second[0]?.lastTransitionTime, "2024-05-01T10:00:00Z");
  assert.equal(second[0]?.reason, "B");
  const third = setCondition(second, { type: "Ready", status: "True", reason: "Applied", message: "ok" }, T1);
  assert.equal(third[0]?.lastTransitionTime, "2024-05-01T11:00:00Z");
  // The input list is never modified.
  assert.equal(first[0]?.reason, "A");
});

Deno.test("setCondition() replaces in place and keeps the others' order", () => {
  let list: Condition[] = [];
  for (const type of ["Ready", "SourceResolved", "Applied"]) {
    list = setCondition(list, { type, status: "Unknown", reason: "Pending", message: "" }, T0);
  }
  list = setCondition(list, { type: "SourceResolved", status: "True", reason: "Resolved", message: "" }, T1);
  assert.deepEqual(list.map((c) => c.type), ["Ready", "SourceResolved", "Applied"]);
  assert.equal(isConditionTrue(list, "SourceResolved"), true);
  assert.equal(isConditionTrue(list, "Ready"), false);
  assert.equal(findCondition(list, "Nope"), undefined);
  assert.deepEqual(removeCondition(list, "Applied").map((c) => c.type), ["Ready", "SourceResolved"]);
});

Deno.test("conditionsEqual() says whether writing the new list would change anything", () => {
  const a = setCondition([], { type: "Ready", status: "True", reason: "Applied", message: "ok" }, T0);
  const same = setCondition(a, { type: "Ready", status: "True", reason: "Applied", message: "ok" }, T1);
  assert.equal(conditionsEqual(a, same), true);
  const moved = setCondition(a, {
    type: "Ready",
    status: "True",
    reason: "Applied",
    message: "ok",
    observedGeneration: 2,
  }, T1);
  assert.equal(conditionsEqual(a, moved), false);
});

Deno.test("parseConditions() drops malformed entries", () => {
  const got = parseConditions([
    {
      type: "Ready",
      status: "True",
      reason: "Applied",
      message: "",
      lastTransitionTime: "2024-01-01T00:00:00Z",
      observedGeneration: 4,
    },
    { type: "", status: "True" },
    { type: "X", status: "yes" },
    "junk",
  ]);
  assert.equal(got.length, 1);
  assert.equal(got[0]?.observedGeneration, 4);
  assert.deepEqual(parseConditions(undefined), []);
});
