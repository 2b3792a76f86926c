import assert from "node:assert/strict";
import { defaultOperatorConfigSpec } from "../api/mod.ts";
import { createLogger, createRuntimeMetrics } from "../observe/mod.ts";
import { done, FakeClock, requeueAfter } from "../runtime/mod.ts";
import { fakeBackrest, reconcileContext } from "./_fakes.ts";
import { ConfigGate, ConfigUnknownError, type CurrentCache, heldWhileUnknown } from "./config_gate.ts";
import { createOperatorMetrics } from "./metrics.ts";
import type { OperatorSettings } from "./settings.ts";

/** A cache whose currency the test sets. */
function cache(name: string, current = true) {
  const listeners: ((c: boolean) => void)[] = [];
  const c = {
    name,
    current,
    isCurrent: () => c.current,
    onCurrentChange: (l: (c: boolean) => void) => listeners.push(l),
    set(v: boolean) {
      c.current = v;
      for (const l of listeners) l(v);
    },
  };
  return c satisfies CurrentCache;
}

function settingsOf(spec: Partial<OperatorSettings["spec"]> = {}): OperatorSettings {
  return {
    configNamespace: "ops",
    configName: "cfg",
    spec: { ...defaultOperatorConfigSpec(), ...spec },
    found: true,
  };
}

function gateWith(caches: CurrentCache[], settings: { current: OperatorSettings }) {
  const logs: string[] = [];
  const metrics = createRuntimeMetrics();
  const own = createOperatorMetrics(metrics.registry);
  const clock = new FakeClock();
  const gate = new ConfigGate({
    caches,
    settings: () => settings.current,
    logger: createLogger({ level: "debug", format: "json", write: (l) => logs.push(l) }),
    known: own.configKnown,
    holds: own.configHolds,
    clock,
  });
  const render = () => metrics.registry.render();
  return { gate, logs, render, clock };
}

Deno.test("ConfigGate: known only while every cache is current; the gauge follows", () => {
  const config = cache("configs", false);
  const secrets = cache("secrets");
  const { gate, render } = gateWith([config, secrets], { current: settingsOf() });
  assert.equal(gate.known(), false);
  assert.match(render(), /^backrest_volsync_operator_config_known 0$/m);
  config.set(true);
  assert.equal(gate.known(), true);
  assert.match(render(), /^backrest_volsync_operator_config_known 1$/m);
  secrets.set(false);
  assert.equal(gate.known(), false, "a cache behind another closes it too");
  assert.deepEqual(gate.notCurrent(), ["secrets"]);
});

Deno.test("ConfigGate: held keys run again once known, counted, with one log line per period", async () => {
  const config = cache("configs", false);
  const { gate, logs, render, clock } = gateWith([config], { current: settingsOf() });
  const resumed: string[] = [];
  const resume = (k: string) => resumed.push(k);
  assert.deepEqual(gate.hold("binding", "a/x", resume), done);
  assert.deepEqual(gate.hold("binding", "a/y", resume), done);
  assert.deepEqual(gate.hold("binding", "a/x", resume), done);
  assert.deepEqual(resumed, [], "nothing runs while not known");
  assert.match(render(), /^backrest_volsync_config_holds_total\{controller="binding"\} 3$/m);
  assert.equal(logs.length, 1);
  assert.match(logs[0]!, /Holding Backrest calls.*"notCurrent":"configs"/);
  const waiting = gate.waitKnown(new AbortController().signal);
  await clock.advance(1500);
  config.set(true);
  assert.equal(await waiting, true);
  assert.deepEqual(resumed, ["a/x", "a/y"], "each held key once");
  assert.equal(logs.length, 2);
  assert.match(logs[1]!, /known again; resuming held work.*"held":2,"heldForMs":1500/);
  // Open already: a refusal means the settings changed under the reconcile; it simply runs again.
  assert.deepEqual(gate.hold("binding", "a/z", resume), requeueAfter(1000));
  config.set(false);
  config.set(true);
  assert.equal(logs.length, 2, "a closing that held nothing says nothing");
});

Deno.test("ConfigGate: Backrest clients refuse every call while not known, paused, or outside the allowlist", async () => {
  const config = cache("configs", false);
  const settings = { current: settingsOf({ backrestURLAllowlist: ["http://allowed:9898/"] }) };
  const { gate } = gateWith([config], settings);
  const backrest = fakeBackrest();
  const api = gate.gatedBackrest(backrest.connect)({ url: "http://allowed:9898" });
  const refused = async (what: string) => {
    for (
      const call of [
        () => api.listRepoIds(),
        () => api.removeRepo("r"),
        () => api.doRepoTask("r", "stats"),
        () => api.probe(),
      ]
    ) {
      await assert.rejects(call(), ConfigUnknownError, what);
    }
    assert.deepEqual(backrest.calls, [], what);
  };
  await refused("not known");
  config.set(true);
  assert.deepEqual(await api.listRepoIds(), []);
  assert.deepEqual(backrest.calls, ["listRepoIds"]);
  backrest.calls.length = 0;
  settings.current = settingsOf({ backrestURLAllowlist: ["http://allowed:9898/"], paused: true });
  await refused("paused");
  settings.current = settingsOf({ backrestURLAllowlist: ["http://other:9898/"] });
  await refused("the allowlist no longer admits the URL");
});

Deno.test("ConfigGate.check(): refuses a decision made on settings no longer in force", () => {
  const config = cache("configs");
  const settings = { current: settingsOf() };
  const { gate } = gateWith([config], settings);
  const read = settings.current;
  gate.check(read);
  gate.check();
  settings.current = settingsOf({ repositoryPolicy: { ...read.spec.repositoryPolicy, allowAdoption: true } });
  assert.throws(() => gate.check(read), ConfigUnknownError);
  gate.check(settings.current);
  config.set(false);
  assert.throws(() => gate.check(), ConfigUnknownError);
});

Deno.test("heldWhileUnknown(): no reconcile while not known; a refusal inside is a hold; other errors pass", async () => {
  const config = cache("configs", false);
  const { gate } = gateWith([config], { current: settingsOf() });
  const ran: string[] = [];
  const resumed: string[] = [];
  let fail: Error | undefined;
  const reconcile = heldWhileUnknown(gate, "binding", (k) => resumed.push(k), (key) => {
    ran.push(key);
    if (fail) return Promise.reject(fail);
    return Promise.resolve(done);
  });
  const ctx = reconcileContext();
  assert.deepEqual(await reconcile("a/x", ctx), done);
  assert.deepEqual(ran, [], "held before it starts");
  config.set(true);
  assert.deepEqual(resumed, ["a/x"]);
  assert.deepEqual(await reconcile("a/x", ctx), done);
  assert.deepEqual(ran, ["a/x"]);
  // The gate closes while the reconcile runs: its refused call ends it quietly, to run again once known.
  fail = new ConfigUnknownError("not known");
  const closing = reconcile("a/y", ctx);
  config.set(false);
  assert.deepEqual(await closing, done);
  config.set(true);
  assert.deepEqual(resumed, ["a/x", "a/y"]);
  fail = new Error("something else");
  await assert.rejects(reconcile("a/z", ctx), /something else/);
});
