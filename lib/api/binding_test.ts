import assert from "node:assert/strict";
import { parseBinding, parseBindingSpec } from "./binding.ts";
import { defaultRepoId, repoIdOf, repoIdProblem } from "./repo_id.ts";

/** The seed README's sample Binding, as the apiserver returns it. */
function seedBinding(): Record<string, unknown> {
  return {
    apiVersion: "backrest.garethgeorge.com/v1alpha1",
    kind: "BackrestVolSyncBinding",
    metadata: { name: "my-app", namespace: "backups", uid: "u-1", resourceVersion: "7", generation: 2 },
    spec: {
      backrest: { url: "http://backrest.backups.svc:9898" },
      source: { kind: "ReplicationSource", name: "my-app-data" },
      repo: { idOverride: "my-app-data", autoUnlock: true },
    },
  };
}

function errorsOf(spec: unknown): string[] {
  const r = parseBindingSpec(spec);
  assert.equal(r.ok, false, "expected errors");
  return r.ok ? [] : r.errors.map((e) => `${e.path}: ${e.message}`);
}

const base = {
  backrest: { url: "http://backrest:9898" },
  source: { kind: "ReplicationSource", name: "data" },
};

Deno.test("parseBinding() reads the seed README's sample and applies the CRD's defaults", () => {
  const r = parseBinding(seedBinding());
  assert.ok(r.ok, r.ok ? "" : JSON.stringify(r.errors));
  assert.deepEqual(r.value.spec, {
    backrest: { url: "http://backrest.backups.svc:9898" },
    source: { kind: "ReplicationSource", name: "my-app-data" },
    repo: { idOverride: "my-app-data", autoUnlock: true },
    deletionPolicy: "Retain",
  });
  assert.equal(r.value.metadata.generation, 2);
  assert.deepEqual(r.value.status, { conditions: [] });
  assert.equal(repoIdOf(r.value), "my-app-data");
});

Deno.test("parseBinding() reads every prototype field and every new one", () => {
  const r = parseBindingSpec({
    backrest: { url: "https://backrest.example:443/prefix", authRef: { name: "backrest-auth" } },
    source: { kind: "ReplicationDestination", name: "restore" },
    repo: {
      idOverride: "",
      autoUnlock: false,
      autoInitialize: true,
      triggerTasksOnSnapshot: true,
      extraFlags: ["--limit-upload=100", "-o", "s3.storage-class=STANDARD_IA"],
      envAllowlist: ["AWS_ACCESS_KEY_ID"],
      prunePolicy: { schedule: { maxFrequencyDays: 7, clock: "CLOCK_LAST_RUN_TIME" }, maxUnusedPercent: 10 },
      checkPolicy: { schedule: { cron: "0 3 * * 0" }, readDataSubsetPercent: 5 },
      forgetPolicy: {
        schedule: { maxFrequencyHours: 24 },
        retention: { policyTimeBucketed: { daily: 7, weekly: 4, monthly: 0 } },
      },
      commandPrefix: { ioNice: "IO_BEST_EFFORT_LOW", cpuNice: "CPU_LOW" },
    },
    deletionPolicy: "Remove",
  });
  assert.ok(r.ok, r.ok ? "" : JSON.stringify(r.errors));
  assert.equal(r.value.deletionPolicy, "Remove");
  assert.equal(r.value.backrest.authRef?.name, "backrest-auth");
  assert.deepEqual(r.value.repo.forgetPolicy?.retention, {
    policyTimeBucketed: { daily: 7, weekly: 4, monthly: 0 },
  });
  assert.equal(r.value.repo.commandPrefix?.cpuNice, "CPU_LOW");
  // An empty idOverride (accepted by the prototype) means the default id.
  assert.equal(
    repoIdOf({ metadata: { namespace: "ns" }, spec: r.value }),
    "volsync-ns-replicationdestination-restore",
  );
});

Deno.test("parseBindingSpec() refuses bad input with precise paths", () => {
  assert.deepEqual(errorsOf({}), ["spec.backrest: required", "spec.source: required"]);
  assert.deepEqual(errorsOf(undefined), ["spec: required"]);
  assert.deepEqual(errorsOf({ ...base, backrest: { url: "ftp://backrest:21" } }), [
    "spec.backrest.url: must be an absolute http:// or https:// URL with a host",
  ]);
  assert.deepEqual(errorsOf({ ...base, source: { kind: "Deployment", name: "x" } }), [
    'spec.source.kind: must be one of "ReplicationSource", "ReplicationDestination"',
  ]);
  assert.deepEqual(errorsOf({ ...base, source: { kind: "ReplicationSource", name: "" } }), [
    "spec.source.name: must not be empty",
  ]);
  assert.deepEqual(errorsOf({ ...base, repo: { idOverride: "has space" } }), [
    "spec.repo.idOverride: may contain only letters, digits, '_', '-' and '.'",
  ]);
  assert.deepEqual(errorsOf({ ...base, repo: { idOverride: "_x_" } }), [
    "spec.repo.idOverride: must not both start and end with '_'",
  ]);
  assert.deepEqual(errorsOf({ ...base, repo: { extraFlags: ["--no-lock", 3] } }), [
    "spec.repo.extraFlags[1]: must be a string",
  ]);
  assert.deepEqual(errorsOf({ ...base, deletionPolicy: "Delete" }), [
    'spec.deletionPolicy: must be one of "Retain", "Remove"',
  ]);
  assert.deepEqual(errorsOf({ ...base, repo: { autoUnlock: "yes" } }), [
    "spec.repo.autoUnlock: must be a boolean",
  ]);
});

Deno.test("parseBindingSpec() enforces Backrest's oneofs and value ranges", () => {
  const repo = (r: unknown) => errorsOf({ ...base, repo: r });
  assert.deepEqual(repo({ prunePolicy: { schedule: { disabled: true, cron: "0 0 * * *" } } }), [
    "spec.repo.prunePolicy.schedule: set at most one of disabled, cron, maxFrequencyDays, maxFrequencyHours",
  ]);
  assert.deepEqual(repo({ prunePolicy: { schedule: { disabled: false } } }), [
    "spec.repo.prunePolicy.schedule.disabled: must be true when set; omit it otherwise",
  ]);
  assert.deepEqual(repo({ checkPolicy: { schedule: { cron: "daily" } } }), [
    "spec.repo.checkPolicy.schedule.cron: must be five fields (minute hour day-of-month month day-of-week) of *, " +
    "N, N-M, names and /step, as Backrest reads them (no seconds, no @descriptors)",
  ]);
  // Backrest's cron library loops from low to high by the step while it validates: never step 0, never a
  // range past the field.
  assert.deepEqual(repo({ checkPolicy: { schedule: { cron: "0-99 * * * *" } } }), [
    'spec.repo.checkPolicy.schedule.cron: minute: "0-99" must lie within 0-59, low to high',
  ]);
  assert.equal(repo({ checkPolicy: { schedule: { cron: "*/0 * * * *" } } }).length, 1);
  assert.deepEqual(repo({ prunePolicy: { schedule: { maxFrequencyDays: 106_752 } } }), [
    "spec.repo.prunePolicy.schedule.maxFrequencyDays: must be at most 36500",
  ]);
  assert.deepEqual(repo({ checkPolicy: { structureOnly: true, readDataSubsetPercent: 1 } }), [
    "spec.repo.checkPolicy: set at most one of structureOnly, readDataSubsetPercent",
  ]);
  assert.deepEqual(repo({ checkPolicy: { readDataSubsetPercent: 101 } }), [
    "spec.repo.checkPolicy.readDataSubsetPercent: must be at most 100",
  ]);
  assert.deepEqual(repo({ prunePolicy: { schedule: { maxFrequencyDays: 0 } } }), [
    "spec.repo.prunePolicy.schedule.maxFrequencyDays: must be at least 1",
  ]);
  assert.deepEqual(repo({ prunePolicy: { schedule: { maxFrequencyHours: 1.5 } } }), [
    "spec.repo.prunePolicy.schedule.maxFrequencyHours: must be an integer",
  ]);
  assert.deepEqual(repo({ prunePolicy: { schedule: { clock: "LOCAL" } } }), [
    'spec.repo.prunePolicy.schedule.clock: must be one of "CLOCK_DEFAULT", "CLOCK_LOCAL", "CLOCK_UTC", "CLOCK_LAST_RUN_TIME"',
  ]);
  assert.deepEqual(repo({ forgetPolicy: { schedule: { cron: "0 0 * * *" } } }), [
    "spec.repo.forgetPolicy: an active schedule needs a retention policy (policyKeepLastN, policyTimeBucketed or policyKeepAll)",
  ]);
  assert.deepEqual(repo({ forgetPolicy: { retention: { policyKeepLastN: 3, policyKeepAll: true } } }), [
    "spec.repo.forgetPolicy.retention: set exactly one of policyKeepLastN, policyTimeBucketed, policyKeepAll",
  ]);
  assert.deepEqual(repo({ forgetPolicy: { retention: { policyTimeBucketed: { daily: 0 } } } }), [
    "spec.repo.forgetPolicy.retention.policyTimeBucketed: set at least one count above zero",
  ]);
  assert.deepEqual(repo({ commandPrefix: { ioNice: "IO_LOW" } }), [
    'spec.repo.commandPrefix.ioNice: must be one of "IO_DEFAULT", "IO_BEST_EFFORT_LOW", "IO_BEST_EFFORT_HIGH", "IO_IDLE"',
  ]);
  // A disabled schedule needs no retention; a schedule with only a clock never runs.
  assert.ok(parseBindingSpec({ ...base, repo: { forgetPolicy: { schedule: { disabled: true } } } }).ok);
  assert.ok(parseBindingSpec({ ...base, repo: { prunePolicy: { schedule: { clock: "CLOCK_UTC" } } } }).ok);
});

Deno.test("parseBinding() keeps metadata and status readable when the spec is invalid", () => {
  const obj = seedBinding();
  obj.spec = { backrest: { url: "ftp://x" }, source: { kind: "ReplicationSource", name: "a" } };
  obj.status = {
    observedGeneration: 1,
    lastAppliedInputHash: "abc",
    lastApplyTime: "2024-01-01T00:00:00Z",
    conditions: [
      {
        type: "Ready",
        status: "True",
        reason: "Applied",
        message: "ok",
        lastTransitionTime: "2024-01-01T00:00:00Z",
      },
      { type: "Broken", status: "Maybe" },
    ],
    lastErrorHash: 42,
  };
  const r = parseBinding(obj);
  assert.equal(r.ok, false);
  if (r.ok) return;
  assert.equal(r.metadata?.name, "my-app");
  assert.equal(r.status.lastAppliedInputHash, "abc");
  assert.equal(r.status.lastErrorHash, undefined);
  assert.deepEqual(r.status.conditions.map((c) => c.type), ["Ready"]);
  assert.deepEqual(r.errors, [{
    path: "spec.backrest.url",
    message: "must be an absolute http:// or https:// URL with a host",
  }]);
});

Deno.test("parseBinding() refuses a foreign kind and a nameless object", () => {
  const obj = seedBinding();
  obj.kind = "ConfigMap";
  obj.metadata = {};
  const r = parseBinding(obj);
  assert.equal(r.ok, false);
  assert.deepEqual(r.ok ? [] : r.errors.map((e) => e.path), ["kind", "metadata.name"]);
  assert.equal(parseBinding("nope").ok, false);
});

Deno.test("defaultRepoId() is the prototype's volsync-<namespace>-<lowercase kind>-<name>", () => {
  assert.equal(
    defaultRepoId("backups", "ReplicationSource", "my-app-data"),
    "volsync-backups-replicationsource-my-app-data",
  );
  assert.equal(repoIdProblem(defaultRepoId("a", "ReplicationDestination", "b.c")), undefined);
});
