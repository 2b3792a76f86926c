/**
 * Unit tests of the auto-binding reconciler with the store-backed KubeClient stand-in of _fakes.ts: which
 * VolSync objects get a generated Binding, what it holds, and every write a reconcile makes (none when all
 * is as wanted). The behaviour against the real apiserver (and its garbage collector) is in
 * tests/auto_binding_test.ts. Names and values the cluster sees are spelled out here, not taken from lib.
 */
import assert from "node:assert/strict";
import { type BindingGeneration, defaultOperatorConfigSpec, type OperatorConfigSpec } from "../api/mod.ts";
import type { KubeObject } from "../kube/mod.ts";
import { MemoryStore } from "../runtime/mod.ts";
import { fakeKube } from "../testing/fake_apiserver.ts";
import { reconcileContext } from "./_fakes.ts";
import { autoBindingReconciler, managedBindingSpec } from "./auto_binding.ts";
import { bindingIndexers, volsyncIndexers, volsyncKey } from "./indexes.ts";
import { bindingType } from "./resources.ts";
import { SettingsHolder } from "./settings.ts";

type Kind = "ReplicationSource" | "ReplicationDestination";

const NS = "app";
const URL = "http://backrest.backups.svc:9898";
const MANAGED = "backrest.garethgeorge.com/managed";
const MANAGED_BY = "backrest.garethgeorge.com/managed-by";
const VOLSYNC_REF = "backrest.garethgeorge.com/volsync-ref";
const OPT_IN = "backrest.garethgeorge.com/binding";

/** Settings as the OperatorConfig reconciler would put them in force: a default URL, then `generation`. */
function spec(
  generation: Partial<BindingGeneration>,
  extra: Partial<OperatorConfigSpec> = {},
): OperatorConfigSpec {
  return {
    ...defaultOperatorConfigSpec(),
    defaultBackrest: { url: URL },
    ...extra,
    bindingGeneration: { policy: "All", kinds: [], defaultRepo: { autoInitialize: true }, ...generation },
  };
}

function fixture(generation: Partial<BindingGeneration> = {}) {
  const bindings = new MemoryStore<KubeObject>(bindingIndexers);
  const stores = {
    ReplicationSource: new MemoryStore<KubeObject>(volsyncIndexers("ReplicationSource")),
    ReplicationDestination: new MemoryStore<KubeObject>(volsyncIndexers("ReplicationDestination")),
  };
  const fake = fakeKube({ [bindingType.resource]: bindings });
  const settings = new SettingsHolder("ops", "backrest-volsync-operator");
  settings.set(spec(generation));
  const reconcile = autoBindingReconciler({
    kube: fake.client,
    bindings,
    volsync: stores,
    settings: () => settings.current,
  });
  const ctx = reconcileContext();
  return {
    bindings,
    settings,
    fake,
    /** Reconciles the VolSync object `kind`/`name` of the namespace. */
    reconcile: (kind: Kind, name: string) => reconcile(volsyncKey(NS, kind, name), ctx),
    /** Adds (or replaces) a VolSync object, as its informer would. */
    volsync: (
      kind: Kind,
      name: string,
      annotations: Record<string, string> = {},
      deletionTimestamp?: string,
    ) =>
      stores[kind].upsert({
        apiVersion: "volsync.backube/v1alpha1",
        kind,
        metadata: {
          namespace: NS,
          name,
          uid: `uid-${kind}-${name}`,
          resourceVersion: fake.nextResourceVersion(),
          annotations,
          ...(deletionTimestamp ? { deletionTimestamp } : {}),
        },
        spec: { restic: { repository: "restic" } },
      }),
    /** Removes a VolSync object, as its informer would on the delete event. */
    gone: (kind: Kind, name: string) => stores[kind].delete(stores[kind].getByName(NS, name)!),
    binding: (name: string) => bindings.getByName(NS, name),
    /** Replaces a Binding in the cache, as a write by someone else would. */
    edit: (name: string, change: (b: KubeObject) => KubeObject) => {
      const b = structuredClone(bindings.getByName(NS, name)!);
      const next = change(b);
      next.metadata.resourceVersion = fake.nextResourceVersion();
      bindings.upsert(next);
    },
    /** The writes so far as `verb name`. */
    writes: () => fake.writes().map((c) => `${c.verb} ${c.name}`),
  };
}

/** Asserts `b` is the generated Binding of `kind`/`name` under the settings in force. */
function assertGenerated(
  b: KubeObject | undefined,
  settings: SettingsHolder,
  kind: Kind,
  name: string,
): void {
  assert.ok(b, `a Binding for ${kind} ${name}`);
  assert.equal(b.apiVersion, "backrest.garethgeorge.com/v1alpha1");
  assert.equal(b.kind, "BackrestVolSyncBinding");
  assert.equal(b.metadata.namespace, NS);
  assert.equal(b.metadata.labels?.[MANAGED], "true");
  assert.equal(b.metadata.annotations?.[MANAGED_BY], "backrest-volsync-operator");
  assert.equal(b.metadata.annotations?.[VOLSYNC_REF], `${kind.toLowerCase()}/${name}`);
  assert.deepEqual(b.metadata.ownerReferences, [{
    apiVersion: "volsync.backube/v1alpha1",
    kind,
    name,
    uid: `uid-${kind}-${name}`,
    controller: true,
    blockOwnerDeletion: true,
  }]);
  assert.deepEqual(b.spec, managedBindingSpec(settings.current, kind, name));
}

Deno.test("auto-binding: managedBindingSpec() is the default URL, the object, the default repo with the CRD's defaults filled in, and Retain", () => {
  const settings = new SettingsHolder("ops", "cfg");
  settings.set(spec({ defaultRepo: { autoUnlock: true, extraFlags: ["--no-cache"] } }));
  assert.deepEqual(managedBindingSpec(settings.current, "ReplicationDestination", "db"), {
    backrest: { url: URL },
    source: { kind: "ReplicationDestination", name: "db" },
    repo: { autoUnlock: true, triggerTasksOnSnapshot: false, extraFlags: ["--no-cache"] },
    deletionPolicy: "Retain",
  });
  assert.deepEqual(
    settings.current.spec.bindingGeneration.defaultRepo,
    { autoUnlock: true, extraFlags: ["--no-cache"] },
    "the settings' default repo is left as it was",
  );
});

Deno.test("auto-binding: under Disabled, or without a default Backrest URL, nothing is generated, even for an object annotated true", async () => {
  const f = fixture({ policy: "Disabled" });
  f.volsync("ReplicationSource", "data", { [OPT_IN]: "true" });
  await f.reconcile("ReplicationSource", "data");
  assert.deepEqual(f.writes(), []);
  f.settings.set(spec({ policy: "All" }, { defaultBackrest: { url: "" } }));
  await f.reconcile("ReplicationSource", "data");
  assert.deepEqual(f.writes(), []);
  assert.equal(f.bindings.size, 0);
});

Deno.test("auto-binding: under Annotated a Binding is generated only for objects opted in with true, 1 or yes, with the prototype's name, label, annotations, owner and spec", async () => {
  const f = fixture({ policy: "Annotated" });
  const values = { a: "true", b: "1", c: " YES ", d: "false", e: "maybe", f: "" };
  for (const [name, value] of Object.entries(values)) {
    f.volsync("ReplicationSource", name, { [OPT_IN]: value });
  }
  f.volsync("ReplicationSource", "plain");
  for (const name of [...Object.keys(values), "plain"]) await f.reconcile("ReplicationSource", name);
  assert.deepEqual(f.writes(), ["create bvsb-rs-a", "create bvsb-rs-b", "create bvsb-rs-c"]);
  for (const name of ["a", "b", "c"]) {
    assertGenerated(f.binding(`bvsb-rs-${name}`), f.settings, "ReplicationSource", name);
  }
});

Deno.test("auto-binding: under All every object gets a Binding except those opted out, and the kinds filter chooses the kinds", async () => {
  const f = fixture({ policy: "All", kinds: ["ReplicationDestination"] });
  f.volsync("ReplicationSource", "data");
  f.volsync("ReplicationDestination", "data");
  f.volsync("ReplicationDestination", "Restore_Target");
  f.volsync("ReplicationDestination", "opted-out", { [OPT_IN]: "no" });
  await f.reconcile("ReplicationSource", "data");
  await f.reconcile("ReplicationDestination", "data");
  await f.reconcile("ReplicationDestination", "Restore_Target");
  await f.reconcile("ReplicationDestination", "opted-out");
  assert.deepEqual(f.writes(), ["create bvsb-rd-data", "create bvsb-rd-restore-target"]);
  assertGenerated(f.binding("bvsb-rd-data"), f.settings, "ReplicationDestination", "data");
  assertGenerated(
    f.binding("bvsb-rd-restore-target"),
    f.settings,
    "ReplicationDestination",
    "Restore_Target",
  );
  // Both kinds once the filter is empty.
  f.settings.set(spec({ policy: "All" }));
  await f.reconcile("ReplicationSource", "data");
  assert.deepEqual(f.writes().slice(2), ["create bvsb-rs-data"]);
  assertGenerated(f.binding("bvsb-rs-data"), f.settings, "ReplicationSource", "data");
});

Deno.test("auto-binding: a generated Binding that is already right is not written again, and labels and annotations others added stay", async () => {
  const f = fixture();
  f.volsync("ReplicationSource", "data");
  await f.reconcile("ReplicationSource", "data");
  assert.deepEqual(f.writes(), ["create bvsb-rs-data"]);
  for (let i = 0; i < 3; i++) await f.reconcile("ReplicationSource", "data");
  assert.deepEqual(f.writes(), ["create bvsb-rs-data"], "no write while nothing changed");
  f.edit("bvsb-rs-data", (b) => {
    b.metadata.labels = { ...b.metadata.labels, team: "db" };
    b.metadata.annotations = { ...b.metadata.annotations, note: "ours" };
    return b;
  });
  await f.reconcile("ReplicationSource", "data");
  assert.deepEqual(f.writes(), ["create bvsb-rs-data"], "others' labels and annotations are not drift");
});

Deno.test("auto-binding: a generated Binding that drifted is put back, and a changed default reaches it", async () => {
  const f = fixture();
  f.volsync("ReplicationSource", "data");
  await f.reconcile("ReplicationSource", "data");
  const drifts: [string, (b: KubeObject) => void][] = [
    [
      "spec",
      (b) => b.spec = { ...managedBindingSpec(f.settings.current, "ReplicationSource", "data"), x: 1 },
    ],
    ["deletionPolicy", (b) => b.spec = { ...(b.spec as object), deletionPolicy: "Remove" }],
    ["owner", (b) => delete b.metadata.ownerReferences],
    ["managed-by", (b) => b.metadata.annotations = { [VOLSYNC_REF]: "replicationsource/data" }],
  ];
  for (const [what, drift] of drifts) {
    f.edit("bvsb-rs-data", (b) => (drift(b), b));
    const before = f.writes().length;
    await f.reconcile("ReplicationSource", "data");
    assert.deepEqual(f.writes().slice(before), ["update bvsb-rs-data"], `${what} is put back`);
    assertGenerated(f.binding("bvsb-rs-data"), f.settings, "ReplicationSource", "data");
  }
  f.settings.set(
    spec({ defaultRepo: { autoUnlock: true } }, { defaultBackrest: { url: "http://other:9898" } }),
  );
  const before = f.writes().length;
  await f.reconcile("ReplicationSource", "data");
  assert.deepEqual(f.writes().slice(before), ["update bvsb-rs-data"]);
  assertGenerated(f.binding("bvsb-rs-data"), f.settings, "ReplicationSource", "data");
  assert.deepEqual(f.binding("bvsb-rs-data")?.spec, {
    backrest: { url: "http://other:9898" },
    source: { kind: "ReplicationSource", name: "data" },
    repo: { autoUnlock: true, triggerTasksOnSnapshot: false },
    deletionPolicy: "Retain",
  });
});

Deno.test("auto-binding: a generated Binding is deleted when its object opts out, leaves the policy or the kinds, loses the default URL, is being deleted or is gone", async () => {
  const leaving: [string, (f: ReturnType<typeof fixture>) => void][] = [
    ["opts out", (f) => f.volsync("ReplicationSource", "data", { [OPT_IN]: "false" })],
    ["policy Disabled", (f) => f.settings.set(spec({ policy: "Disabled" }))],
    ["policy Annotated, not annotated", (f) => f.settings.set(spec({ policy: "Annotated" }))],
    ["kinds without it", (f) => f.settings.set(spec({ kinds: ["ReplicationDestination"] }))],
    ["no default URL", (f) => f.settings.set(spec({}, { defaultBackrest: { url: "" } }))],
    ["object being deleted", (f) => f.volsync("ReplicationSource", "data", {}, "2026-11-25T12:00:00Z")],
    ["object gone", (f) => f.gone("ReplicationSource", "data")],
  ];
  for (const [why, leave] of leaving) {
    const f = fixture({ policy: "All" });
    f.volsync("ReplicationSource", "data");
    await f.reconcile("ReplicationSource", "data");
    const uid = f.binding("bvsb-rs-data")?.metadata.uid;
    leave(f);
    await f.reconcile("ReplicationSource", "data");
    assert.deepEqual(f.writes(), ["create bvsb-rs-data", "delete bvsb-rs-data"], why);
    assert.deepEqual(f.fake.calls.at(-1)?.body, { uid }, `${why}: only the Binding that was read`);
    assert.equal(f.binding("bvsb-rs-data"), undefined, why);
    await f.reconcile("ReplicationSource", "data");
    assert.equal(f.writes().length, 2, `${why}: nothing more to do`);
  }
});

Deno.test("auto-binding: a Binding without the managed label is never changed or deleted, under the generated name or another", async () => {
  const f = fixture();
  const own = (name: string, labels: Record<string, string>) =>
    f.bindings.upsert({
      apiVersion: "backrest.garethgeorge.com/v1alpha1",
      kind: "BackrestVolSyncBinding",
      metadata: {
        namespace: NS,
        name,
        uid: `uid-${name}`,
        resourceVersion: f.fake.nextResourceVersion(),
        labels,
        annotations: { [VOLSYNC_REF]: "replicationsource/data" },
      },
      spec: { backrest: { url: "http://mine:9898" }, source: { kind: "ReplicationSource", name: "data" } },
    });
  own("bvsb-rs-data", {});
  own("my-data", { [MANAGED]: "false" });
  const before = structuredClone(f.bindings.list());
  f.volsync("ReplicationSource", "data");
  await f.reconcile("ReplicationSource", "data");
  f.volsync("ReplicationSource", "data", { [OPT_IN]: "false" });
  await f.reconcile("ReplicationSource", "data");
  f.gone("ReplicationSource", "data");
  await f.reconcile("ReplicationSource", "data");
  assert.deepEqual(f.writes(), []);
  assert.deepEqual(f.bindings.list(), before);
});

Deno.test("auto-binding: while paused nothing is created, repaired or deleted", async () => {
  const f = fixture();
  f.volsync("ReplicationSource", "data");
  f.volsync("ReplicationSource", "other");
  await f.reconcile("ReplicationSource", "data");
  f.settings.set(spec({}, { paused: true }));
  f.edit("bvsb-rs-data", (b) => (b.spec = {}, b));
  await f.reconcile("ReplicationSource", "data");
  await f.reconcile("ReplicationSource", "other");
  f.gone("ReplicationSource", "data");
  await f.reconcile("ReplicationSource", "data");
  assert.deepEqual(f.writes(), ["create bvsb-rs-data"]);
  assert.deepEqual(f.binding("bvsb-rs-data")?.spec, {});
});

Deno.test("auto-binding: a generated Binding being deleted is neither repaired nor deleted again", async () => {
  const f = fixture();
  f.volsync("ReplicationSource", "data");
  await f.reconcile("ReplicationSource", "data");
  f.edit("bvsb-rs-data", (b) => {
    b.metadata.deletionTimestamp = "2026-11-25T12:00:00Z";
    b.spec = {};
    return b;
  });
  await f.reconcile("ReplicationSource", "data");
  f.volsync("ReplicationSource", "data", { [OPT_IN]: "false" });
  await f.reconcile("ReplicationSource", "data");
  assert.deepEqual(f.writes(), ["create bvsb-rs-data"]);
});

Deno.test("auto-binding: objects whose generated names collide get one Binding each; the exact spelling takes the plain name, the other moves to a hashed one", async () => {
  const f = fixture();
  // Alone, db.data has the prototype's name.
  f.volsync("ReplicationSource", "db.data");
  await f.reconcile("ReplicationSource", "db.data");
  assert.deepEqual(f.writes(), ["create bvsb-rs-db-data"]);
  assertGenerated(f.binding("bvsb-rs-db-data"), f.settings, "ReplicationSource", "db.data");
  // db-data arrives: the plain name is its own, but db.data's Binding holds it until db.data's reconcile moves it.
  f.volsync("ReplicationSource", "db-data");
  assert.deepEqual(await f.reconcile("ReplicationSource", "db-data"), { type: "requeueAfter", ms: 2000 });
  assert.equal(f.writes().length, 1, "another object's Binding is left to that object");
  await f.reconcile("ReplicationSource", "db.data");
  const moved = f.bindings.list().find((b) => b.metadata.name !== "bvsb-rs-db-data")?.metadata.name ?? "";
  assert.match(moved, /^bvsb-rs-db-data-[0-9a-f]{8}$/);
  assert.deepEqual(f.writes().slice(1), ["delete bvsb-rs-db-data", `create ${moved}`]);
  assertGenerated(f.binding(moved), f.settings, "ReplicationSource", "db.data");
  await f.reconcile("ReplicationSource", "db-data");
  assert.deepEqual(f.writes().slice(3), ["create bvsb-rs-db-data"]);
  assertGenerated(f.binding("bvsb-rs-db-data"), f.settings, "ReplicationSource", "db-data");
  // Stable: neither moves again.
  await f.reconcile("ReplicationSource", "db.data");
  await f.reconcile("ReplicationSource", "db-data");
  assert.equal(f.writes().length, 4);
  assert.equal(f.bindings.size, 2);
});

Deno.test("auto-binding: when the object holding the plain name goes, the other's Binding moves back to it", async () => {
  const f = fixture();
  f.volsync("ReplicationSource", "db.data");
  f.volsync("ReplicationSource", "db-data");
  await f.reconcile("ReplicationSource", "db.data");
  await f.reconcile("ReplicationSource", "db-data");
  const moved = f.bindings.list().find((b) => b.metadata.name !== "bvsb-rs-db-data")?.metadata.name ?? "";
  assert.match(moved, /^bvsb-rs-db-data-[0-9a-f]{8}$/);
  assert.deepEqual(f.writes(), [`create ${moved}`, "create bvsb-rs-db-data"]);
  // db-data goes (no garbage collector here: its Binding stays until a reconcile deletes it).
  f.gone("ReplicationSource", "db-data");
  assert.deepEqual(await f.reconcile("ReplicationSource", "db.data"), { type: "requeueAfter", ms: 2000 });
  assert.deepEqual(f.writes().slice(2), [`delete ${moved}`], "the suffixed name is no longer db.data's");
  await f.reconcile("ReplicationSource", "db-data");
  assert.deepEqual(f.writes().slice(3), ["delete bvsb-rs-db-data"]);
  await f.reconcile("ReplicationSource", "db.data");
  assert.deepEqual(f.writes().slice(4), ["create bvsb-rs-db-data"]);
  assertGenerated(f.binding("bvsb-rs-db-data"), f.settings, "ReplicationSource", "db.data");
});

Deno.test("auto-binding: a gone object's reconcile never deletes the Binding another object now holds under the name it had", async () => {
  const f = fixture();
  // db-data held bvsb-rs-db-data and is gone; db.data, alone now, has that name and its Binding there.
  f.volsync("ReplicationSource", "db.data");
  await f.reconcile("ReplicationSource", "db.data");
  assert.deepEqual(f.writes(), ["create bvsb-rs-db-data"]);
  // db-data's key comes round once more (the delete event of its own Binding, queued behind db.data's
  // create): both names map to bvsb-rs-db-data, and the Binding there is db.data's.
  await f.reconcile("ReplicationSource", "db-data");
  assert.deepEqual(f.writes(), ["create bvsb-rs-db-data"], "nothing deleted");
  assertGenerated(f.binding("bvsb-rs-db-data"), f.settings, "ReplicationSource", "db.data");
});
