/**
 * Unit tests of the OperatorConfig reconciler and `putInForce` with the store-backed KubeClient stand-in and
 * the Event log of _fakes.ts, and a FakeClock for the conditions' times: which settings are in force after
 * each config (valid, paused, invalid from the start or after a valid one, deleted), and what the config's
 * status and Events say. The behaviour against the real apiserver is in tests/operator_config_test.ts.
 */
import assert from "node:assert/strict";
import { defaultOperatorConfigSpec } from "../api/mod.ts";
import type { KubeObject } from "../kube/mod.ts";
import { FakeClock, MemoryStore } from "../runtime/mod.ts";
import { fakeKube } from "../testing/fake_apiserver.ts";
import { eventLog, reconcileContext } from "./_fakes.ts";
import { operatorConfigReconciler, putInForce } from "./operator_config.ts";
import { operatorConfigType } from "./resources.ts";
import { type OperatorSettings, SettingsHolder } from "./settings.ts";

const NS = "ops";
const NAME = "backrest-volsync-operator";
const T0 = "2026-11-25T12:00:00Z";
const VALID = {
  defaultBackrest: { url: "http://backrest.backups.svc:9898" },
  bindingGeneration: { policy: "Annotated" },
};
const INVALID = { ...VALID, resyncPeriod: "soon" };
const PROBLEM = "spec.resyncPeriod: must be a duration such as 30s, 10m or 1h30m";

/** The config object as the apiserver returns it. */
function config(spec: unknown, generation = 1, where = { namespace: NS, name: NAME }): KubeObject {
  return {
    apiVersion: "backrest.garethgeorge.com/v1alpha1",
    kind: "BackrestVolSyncOperatorConfig",
    metadata: { ...where, uid: `uid-${where.name}`, generation, resourceVersion: String(generation) },
    spec,
  };
}

function fixture() {
  const configs = new MemoryStore<KubeObject>();
  const fake = fakeKube({ [operatorConfigType.resource]: configs });
  const holder = new SettingsHolder(NS, NAME);
  const changes: OperatorSettings[] = [];
  holder.onChange((next) => changes.push(next));
  const log = eventLog();
  const clock = new FakeClock(Date.parse(T0));
  const reconcile = operatorConfigReconciler({
    kube: fake.client,
    configs,
    holder,
    events: log.sink,
    now: () => new Date(clock.now()),
  });
  const ctx = reconcileContext();
  return {
    configs,
    fake,
    holder,
    changes,
    events: log.events,
    clock,
    reconcile: (key = `${NS}/${NAME}`) => reconcile(key, ctx),
    /** Writes `spec` at `generation` as an edit would (the apiserver keeps the status). */
    edit: (spec: unknown, generation: number) => {
      const obj = config(spec, generation);
      obj.metadata.resourceVersion = fake.nextResourceVersion();
      const status = configs.getByName(NS, NAME)?.status;
      configs.upsert(status !== undefined ? { ...obj, status } : obj);
    },
    status: () => configs.getByName(NS, NAME)?.status,
    writes: () => fake.writes().map((c) => `${c.verb} ${c.namespace}/${c.name}`),
  };
}

/** The status the reconciler writes: one Ready condition. */
function ready(
  generation: number,
  status: "True" | "False",
  reason: string,
  message: string,
  since: string,
): unknown {
  return {
    observedGeneration: generation,
    conditions: [{
      type: "Ready",
      status,
      lastTransitionTime: since,
      reason,
      message,
      observedGeneration: generation,
    }],
  };
}

Deno.test("operator config: putInForce() puts a valid config's spec in force, and the defaults when there is none", () => {
  const holder = new SettingsHolder(NS, NAME);
  assert.match(holder.current.halted ?? "", /not been read yet/, "fail closed until the config is read");
  const parsed = putInForce(holder, config({ ...VALID, paused: true }));
  assert.equal(parsed?.ok, true);
  assert.equal(holder.current.found, true);
  assert.equal(holder.current.halted, undefined);
  assert.equal(holder.current.spec.paused, true);
  assert.equal(holder.current.spec.bindingGeneration.policy, "Annotated");
  assert.equal(holder.current.spec.defaultBackrest.url, "http://backrest.backups.svc:9898");
  assert.equal(putInForce(holder, undefined), undefined);
  assert.equal(holder.current.found, false);
  assert.equal(holder.current.halted, undefined);
  assert.deepEqual(holder.current.spec, defaultOperatorConfigSpec());
});

Deno.test("operator config: putInForce() of an invalid config halts everything before any valid one, and changes nothing after one", () => {
  const fresh = new SettingsHolder(NS, NAME);
  const parsed = putInForce(fresh, config(INVALID));
  assert.equal(parsed?.ok, false);
  assert.equal(fresh.current.found, true);
  assert.equal(fresh.current.spec.paused, true);
  assert.equal(
    fresh.current.halted,
    `the OperatorConfig ops/backrest-volsync-operator is invalid (${PROBLEM}); nothing is done until it is fixed`,
  );
  const seasoned = new SettingsHolder(NS, NAME);
  putInForce(seasoned, config(VALID));
  const before = seasoned.current;
  assert.equal(putInForce(seasoned, config(INVALID, 2))?.ok, false);
  assert.equal(seasoned.current, before, "the last valid settings stay in force");
});

Deno.test("operator config: reconcile() of a valid config puts it in force and reports Ready=True Accepted with its generation, written once", async () => {
  const f = fixture();
  f.configs.upsert(config(VALID, 3));
  await f.reconcile();
  assert.equal(f.holder.current.spec.bindingGeneration.policy, "Annotated");
  assert.equal(f.holder.current.halted, undefined);
  assert.deepEqual(f.status(), ready(3, "True", "Accepted", "Accepted; auto-binding policy Annotated", T0));
  assert.deepEqual(f.writes(), ["patchStatus ops/backrest-volsync-operator"]);
  assert.deepEqual(f.events, []);
  await f.clock.advance(60_000);
  await f.reconcile();
  await f.reconcile();
  assert.equal(f.writes().length, 1, "no write while the status says the same");
  assert.equal(f.changes.length, 1, "listeners hear of the change once");
});

Deno.test("operator config: reconcile() of a paused config puts the pause in force and says so", async () => {
  const f = fixture();
  f.configs.upsert(config({ ...VALID, paused: true }));
  await f.reconcile();
  assert.equal(f.holder.current.spec.paused, true);
  assert.equal(f.holder.current.halted, undefined, "paused by the config, not halted");
  assert.deepEqual(
    f.status(),
    ready(1, "True", "Accepted", "Accepted; the operator is paused: no Backrest calls, no auto-binding", T0),
  );
  f.edit(VALID, 2);
  await f.reconcile();
  assert.equal(f.holder.current.spec.paused, false);
  assert.deepEqual(f.status(), ready(2, "True", "Accepted", "Accepted; auto-binding policy Annotated", T0));
});

Deno.test("operator config: reconcile() of a config invalid since start halts everything and says so with one Warning Event; a fix lifts the halt", async () => {
  const f = fixture();
  f.configs.upsert(config(INVALID));
  await f.reconcile();
  assert.match(f.holder.current.halted ?? "", /is invalid \(spec\.resyncPeriod: must be a duration/);
  assert.equal(f.holder.current.spec.paused, true);
  const message = `invalid spec, nothing is done until it is fixed: ${PROBLEM}`;
  assert.deepEqual(f.status(), ready(1, "False", "InvalidSpec", message, T0));
  assert.deepEqual(f.events, [{
    object: "ops/backrest-volsync-operator",
    type: "Warning",
    reason: "InvalidSpec",
    message,
  }]);
  await f.reconcile();
  assert.equal(f.events.length, 1, "no second Event for the same problem");
  assert.equal(f.writes().length, 1, "no second write");
  await f.clock.advance(60_000);
  f.edit(VALID, 2);
  await f.reconcile();
  assert.equal(f.holder.current.halted, undefined);
  assert.equal(f.holder.current.spec.paused, false);
  assert.deepEqual(
    f.status(),
    ready(2, "True", "Accepted", "Accepted; auto-binding policy Annotated", "2026-11-25T12:01:00Z"),
  );
  assert.equal(f.events.length, 1);
});

Deno.test("operator config: reconcile() of an invalid edit keeps the last valid settings in force and says so", async () => {
  const f = fixture();
  f.configs.upsert(config({ ...VALID, bindingGeneration: { policy: "All" } }));
  await f.reconcile();
  const valid = f.holder.current;
  await f.clock.advance(60_000);
  f.edit(INVALID, 2);
  await f.reconcile();
  assert.equal(f.holder.current, valid, "the last valid settings stay in force");
  const message = `invalid spec, the last valid settings stay in force: ${PROBLEM}`;
  assert.deepEqual(f.status(), ready(2, "False", "InvalidSpec", message, "2026-11-25T12:01:00Z"));
  assert.deepEqual(f.events.map((e) => [e.type, e.reason, e.message]), [["Warning", "InvalidSpec", message]]);
  // Another problem is another Event.
  f.edit({ ...VALID, bindingGeneration: { policy: "Sometimes" } }, 3);
  await f.reconcile();
  assert.equal(f.holder.current, valid);
  assert.equal(f.events.length, 2);
  assert.match(f.events[1]!.message, /bindingGeneration\.policy/);
});

Deno.test("operator config: an edit that stays valid moves the message and observedGeneration, not Ready's transition time", async () => {
  const f = fixture();
  f.configs.upsert(config(VALID));
  await f.reconcile();
  await f.clock.advance(60_000);
  f.edit({ ...VALID, bindingGeneration: { policy: "All" } }, 2);
  await f.reconcile();
  assert.equal(f.holder.current.spec.bindingGeneration.policy, "All");
  assert.deepEqual(f.status(), ready(2, "True", "Accepted", "Accepted; auto-binding policy All", T0));
  assert.equal(f.writes().length, 2);
});

Deno.test("operator config: reconcile() of a deleted config puts the defaults in force and writes nothing", async () => {
  const f = fixture();
  f.configs.upsert(config({ ...VALID, paused: true }));
  await f.reconcile();
  f.configs.delete(f.configs.getByName(NS, NAME)!);
  await f.reconcile();
  assert.equal(f.holder.current.found, false);
  assert.equal(f.holder.current.halted, undefined);
  assert.deepEqual(f.holder.current.spec, defaultOperatorConfigSpec(), "not paused, auto-binding Disabled");
  assert.equal(f.writes().length, 1, "only the first config's status");
  assert.deepEqual(f.events, []);
});

Deno.test("operator config: reconcile() ignores every config but the one the operator follows", async () => {
  const f = fixture();
  f.configs.upsert(config(VALID, 1, { namespace: NS, name: "other" }));
  f.configs.upsert(config(INVALID, 1, { namespace: "elsewhere", name: NAME }));
  await f.reconcile(`${NS}/other`);
  await f.reconcile(`elsewhere/${NAME}`);
  assert.match(f.holder.current.halted ?? "", /not been read yet/);
  assert.deepEqual(f.writes(), []);
  assert.deepEqual(f.events, []);
});
