import assert from "node:assert/strict";
import {
  autoBindingWanted,
  bindingNameFor,
  dns1123Safe,
  parseBindingOptIn,
  uniqueBindingName,
  volsyncRefValue,
} from "./auto_binding.ts";
import type { VolSyncKind } from "./constants.ts";

// Expected names computed by running the Go prototype's desiredBindingName (same inputs).
const GO_VECTORS: ReadonlyArray<[VolSyncKind, string, string]> = [
  ["ReplicationSource", "my-app-data", "bvsb-rs-my-app-data"],
  ["ReplicationSource", "My.App_Data", "bvsb-rs-my-app-data"],
  ["ReplicationSource", "a", "bvsb-rs-a"],
  ["ReplicationSource", "", "bvsb-rs"],
  ["ReplicationSource", "x.y.z", "bvsb-rs-x-y-z"],
  ["ReplicationSource", "\u00c4\u00d6\u00dc-\u0130stanbul-\u212aelvin", "bvsb-rs-istanbul-kelvin"],
  [
    "ReplicationSource",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "bvsb-rs-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
  ],
  [
    "ReplicationSource",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "bvsb-rs-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-f55d5c7e",
  ],
  [
    "ReplicationSource",
    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
    "bvsb-rs-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-6d776e34",
  ],
  [
    "ReplicationSource",
    "db-db-db-db-db-db-db-db-db-db-db-db-db-db-db-db-db-db-db-db-db-db-db-db-db-db-db-db-db-db-end",
    "bvsb-rs-db-db-db-db-db-db-db-db-db-db-db-db-db-db-db-d-2e3a9fec",
  ],
  [
    "ReplicationSource",
    "data.volume.with.a.really.long.name.that.goes.on.and.on.for.ever",
    "bvsb-rs-data-volume-with-a-really-long-name-that-goes--f2642d48",
  ],
  ["ReplicationSource", "--lead-trail--", "bvsb-rs-lead-trail"],
  [
    "ReplicationSource",
    "ends-in-dash-at-cut-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx-zzzzzzzzzzzzzz",
    "bvsb-rs-ends-in-dash-at-cut-xxxxxxxxxxxxxxxxxxxxxxxxxx-2799c21d",
  ],
  ["ReplicationDestination", "my-app-data", "bvsb-rd-my-app-data"],
  ["ReplicationDestination", "My.App_Data", "bvsb-rd-my-app-data"],
  ["ReplicationDestination", "a", "bvsb-rd-a"],
  ["ReplicationDestination", "", "bvsb-rd"],
  ["ReplicationDestination", "x.y.z", "bvsb-rd-x-y-z"],
  ["ReplicationDestination", "\u00c4\u00d6\u00dc-\u0130stanbul-\u212aelvin", "bvsb-rd-istanbul-kelvin"],
  [
    "ReplicationDestination",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "bvsb-rd-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
  ],
  [
    "ReplicationDestination",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "bvsb-rd-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-5498e967",
  ],
  [
    "ReplicationDestination",
    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
    "bvsb-rd-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-fa246068",
  ],
  [
    "ReplicationDestination",
    "db-db-db-db-db-db-db-db-db-db-db-db-db-db-db-db-db-db-db-db-db-db-db-db-db-db-db-db-db-db-end",
    "bvsb-rd-db-db-db-db-db-db-db-db-db-db-db-db-db-db-db-d-bf30e062",
  ],
  [
    "ReplicationDestination",
    "data.volume.with.a.really.long.name.that.goes.on.and.on.for.ever",
    "bvsb-rd-data-volume-with-a-really-long-name-that-goes--792de1e9",
  ],
  ["ReplicationDestination", "--lead-trail--", "bvsb-rd-lead-trail"],
  [
    "ReplicationDestination",
    "ends-in-dash-at-cut-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx-zzzzzzzzzzzzzz",
    "bvsb-rd-ends-in-dash-at-cut-xxxxxxxxxxxxxxxxxxxxxxxxxx-dcbc2efd",
  ],
];

Deno.test("bindingNameFor() returns what the Go prototype returns", () => {
  for (const [kind, name, want] of GO_VECTORS) {
    assert.equal(bindingNameFor(kind, name), want, `${kind} ${JSON.stringify(name)}`);
  }
});

Deno.test("bindingNameFor() results are valid DNS-1123 labels of at most 63 characters", () => {
  const label = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
  for (const [kind, name] of GO_VECTORS) {
    const got = bindingNameFor(kind, name);
    assert.ok(got.length <= 63, got);
    assert.match(got, label);
  }
});

Deno.test("dns1123Safe() collapses runs, trims dashes, and never returns empty", () => {
  assert.equal(dns1123Safe("A__B..c"), "a-b-c");
  assert.equal(dns1123Safe("---"), "x");
  assert.equal(dns1123Safe(""), "x");
  // Names already safe come back as they are; near misses do not.
  assert.equal(dns1123Safe("bvsb-rs-db-data-0"), "bvsb-rs-db-data-0");
  assert.equal(dns1123Safe("a--b"), "a-b");
  assert.equal(dns1123Safe("-a-"), "a");
  assert.equal(dns1123Safe("a\nb"), "a-b");
});

Deno.test("volsyncRefValue() lowercases the kind", () => {
  assert.equal(volsyncRefValue("ReplicationSource", "data"), "replicationsource/data");
  assert.equal(volsyncRefValue("ReplicationDestination", "data"), "replicationdestination/data");
});

Deno.test("parseBindingOptIn() reads true/1/yes and false/0/no, anything else is unset", () => {
  for (const v of ["true", "1", "yes", " TRUE ", "Yes"]) assert.equal(parseBindingOptIn(v), true, v);
  for (const v of ["false", "0", "no", "FALSE", " No\n"]) assert.equal(parseBindingOptIn(v), false, v);
  for (const v of [undefined, "", "on", "off", "y", "n", "2", "truee"]) {
    assert.equal(parseBindingOptIn(v), undefined, String(v));
  }
});

Deno.test("autoBindingWanted() follows the policy, and opt-out wins even under All", () => {
  const ann = (v?: string) => (v === undefined ? {} : { "backrest.garethgeorge.com/binding": v });
  assert.equal(autoBindingWanted("Disabled", ann("true")), false);
  assert.equal(autoBindingWanted("Annotated", ann()), false);
  assert.equal(autoBindingWanted("Annotated", ann("maybe")), false);
  assert.equal(autoBindingWanted("Annotated", ann("yes")), true);
  assert.equal(autoBindingWanted("All", ann()), true);
  assert.equal(autoBindingWanted("All", ann("garbage")), true);
  assert.equal(autoBindingWanted("All", ann("0")), false);
  assert.equal(autoBindingWanted("Annotated", ann("no")), false);
});

Deno.test("uniqueBindingName(): the prototype's name when no other object shares it; otherwise a hash suffix for all but an exact spelling", () => {
  const names = ["db.data", "db-data", "DB_data"];
  const got = names.map((n) => uniqueBindingName("ReplicationSource", n, names));
  assert.equal(got[1], "bvsb-rs-db-data", "the exact spelling keeps the prototype's name");
  assert.equal(new Set(got).size, 3, `never shared: ${got.join(", ")}`);
  for (const g of got) assert.match(g, /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
  assert.match(got[0]!, /^bvsb-rs-db-data-[0-9a-f]{8}$/);
  // Alone, a dotted name keeps the prototype's name (no churn for what the prototype named).
  assert.equal(uniqueBindingName("ReplicationSource", "db.data", ["db.data", "other"]), "bvsb-rs-db-data");
  // Stable: the same inputs, in any order, give the same names.
  assert.equal(uniqueBindingName("ReplicationSource", "db.data", [...names].reverse()), got[0]);
  // Two transformed names and no exact one: both suffixed, still distinct.
  const pair = ["a.b", "a_b"].map((n) => uniqueBindingName("ReplicationDestination", n, ["a.b", "a_b"]));
  assert.equal(new Set(pair).size, 2);
  assert.ok(pair.every((p) => p.startsWith("bvsb-rd-a-b-")));
});
