import assert from "node:assert/strict";
import {
  defaultOperatorConfigSpec,
  kindAllowed,
  parseOperatorConfig,
  parseOperatorConfigSpec,
} from "./operator_config.ts";

/** The seed README's sample OperatorConfig, as the apiserver returns it (before CRD defaults). */
const SEED = {
  apiVersion: "backrest.garethgeorge.com/v1alpha1",
  kind: "BackrestVolSyncOperatorConfig",
  metadata: { name: "backrest-volsync-operator", namespace: "backups", generation: 1 },
  spec: {
    paused: false,
    defaultBackrest: { url: "http://backrest.backups.svc:9898" },
    bindingGeneration: { policy: "Annotated", defaultRepo: { autoUnlock: true } },
  },
};

function errorsOf(spec: unknown): string[] {
  const r = parseOperatorConfigSpec(spec);
  assert.equal(r.ok, false, "expected errors");
  return r.ok ? [] : r.errors.map((e) => `${e.path}: ${e.message}`);
}

Deno.test("parseOperatorConfig() reads the seed README's sample and applies defaults", () => {
  const r = parseOperatorConfig(SEED);
  assert.ok(r.ok, r.ok ? "" : JSON.stringify(r.errors));
  assert.deepEqual(r.value.spec, {
    paused: false,
    resyncPeriod: "10m",
    resyncPeriodMs: 600_000,
    backrestURLAllowlist: [],
    defaultBackrest: { url: "http://backrest.backups.svc:9898" },
    bindingGeneration: { policy: "Annotated", kinds: [], defaultRepo: { autoUnlock: true } },
    repositoryPolicy: {
      allowedBackends: ["rest", "s3", "b2", "azure", "gs", "swift"],
      allowAmbientCredentials: false,
      allowAdoption: false,
      allowLocalAddresses: false,
      taskLimits: {
        minScheduleIntervalMs: 86_400_000,
        allowRaisedPriority: false,
        maxStuckRequestTimeoutMs: 1_800_000,
        maxRetryLockMs: 1_800_000,
        maxConnections: 16,
        maxReadDataSubsetPercent: 10,
      },
    },
  });
});

Deno.test("parseOperatorConfigSpec() reads an empty policy as Disabled, as the prototype does", () => {
  const r = parseOperatorConfigSpec({ bindingGeneration: { policy: "" } });
  assert.ok(r.ok);
  assert.equal(r.value.bindingGeneration.policy, "Disabled");
  assert.deepEqual(parseOperatorConfigSpec({}), { ok: true, value: defaultOperatorConfigSpec() });
});

Deno.test("parseOperatorConfigSpec() reads every field", () => {
  const r = parseOperatorConfigSpec({
    paused: true,
    resyncPeriod: "1h30m",
    backrestURLAllowlist: ["https://backrest.backups.svc:9898"],
    defaultBackrest: { url: "https://backrest.backups.svc:9898", authRef: { name: "auth" } },
    bindingGeneration: {
      policy: "All",
      kinds: ["ReplicationSource"],
      defaultRepo: { extraFlags: ["--no-cache"], checkPolicy: { structureOnly: true } },
    },
    repositoryPolicy: {
      allowedBackends: ["local", "s3", "local"],
      allowAmbientCredentials: true,
      allowAdoption: true,
      allowLocalAddresses: true,
      taskLimits: {
        minScheduleInterval: "1h30m",
        allowRaisedPriority: true,
        maxStuckRequestTimeout: "2h",
        maxRetryLock: "90s",
        maxConnections: 64,
        maxReadDataSubsetPercent: 100,
      },
    },
  });
  assert.ok(r.ok, r.ok ? "" : JSON.stringify(r.errors));
  assert.deepEqual(r.value.repositoryPolicy, {
    allowedBackends: ["local", "s3"],
    allowAmbientCredentials: true,
    allowAdoption: true,
    allowLocalAddresses: true,
    taskLimits: {
      minScheduleIntervalMs: 5_400_000,
      allowRaisedPriority: true,
      maxStuckRequestTimeoutMs: 7_200_000,
      maxRetryLockMs: 90_000,
      maxConnections: 64,
      maxReadDataSubsetPercent: 100,
    },
  });
  // A partial taskLimits keeps the other defaults.
  const partial = parseOperatorConfigSpec({ repositoryPolicy: { taskLimits: { maxConnections: 4 } } });
  assert.ok(partial.ok);
  assert.equal(partial.value.repositoryPolicy.taskLimits.maxConnections, 4);
  assert.equal(partial.value.repositoryPolicy.taskLimits.minScheduleIntervalMs, 86_400_000);
  assert.equal(r.value.resyncPeriodMs, 5_400_000);
  assert.equal(r.value.defaultBackrest.authRef?.name, "auth");
  assert.equal(kindAllowed(r.value.bindingGeneration, "ReplicationSource"), true);
  assert.equal(kindAllowed(r.value.bindingGeneration, "ReplicationDestination"), false);
  assert.equal(kindAllowed(defaultOperatorConfigSpec().bindingGeneration, "ReplicationDestination"), true);
});

Deno.test("parseOperatorConfigSpec() refuses bad input with precise paths", () => {
  assert.deepEqual(errorsOf({ resyncPeriod: "10 minutes" }), [
    "spec.resyncPeriod: must be a duration such as 30s, 10m or 1h30m",
  ]);
  assert.deepEqual(errorsOf({ resyncPeriod: "500ms" }), ["spec.resyncPeriod: must be between 1s and 24h"]);
  assert.deepEqual(errorsOf({ resyncPeriod: "25h" }), ["spec.resyncPeriod: must be between 1s and 24h"]);
  assert.deepEqual(errorsOf({ bindingGeneration: { policy: "Some" } }), [
    'spec.bindingGeneration.policy: must be one of "", "Disabled", "Annotated", "All"',
  ]);
  assert.deepEqual(errorsOf({ bindingGeneration: { kinds: ["ReplicationSource", "Pod"] } }), [
    'spec.bindingGeneration.kinds[1]: must be one of "ReplicationSource", "ReplicationDestination"',
  ]);
  assert.deepEqual(errorsOf({ defaultBackrest: { url: "backrest:9898" } }), [
    "spec.defaultBackrest.url: must be empty or an absolute http:// or https:// URL with a host",
  ]);
  assert.deepEqual(errorsOf({ backrestURLAllowlist: ["ftp://x"] }), [
    "spec.backrestURLAllowlist[0]: must be an absolute http:// or https:// URL with a host",
  ]);
  assert.deepEqual(
    errorsOf({ bindingGeneration: { defaultRepo: { prunePolicy: { maxUnusedBytes: -1 } } } }),
    [
      "spec.bindingGeneration.defaultRepo.prunePolicy.maxUnusedBytes: must be at least 0",
    ],
  );
  assert.deepEqual(
    errorsOf({
      repositoryPolicy: {
        allowLocalAddresses: "yes",
        taskLimits: {
          minScheduleInterval: "1d",
          maxRetryLock: "9000h",
          maxConnections: 0,
          maxReadDataSubsetPercent: 101,
        },
      },
    }),
    [
      "spec.repositoryPolicy.allowLocalAddresses: must be a boolean",
      "spec.repositoryPolicy.taskLimits.minScheduleInterval: must be a duration such as 30s, 10m or 1h30m",
      "spec.repositoryPolicy.taskLimits.maxRetryLock: must be at most 8760h",
      "spec.repositoryPolicy.taskLimits.maxConnections: must be at least 1",
      "spec.repositoryPolicy.taskLimits.maxReadDataSubsetPercent: must be at most 100",
    ],
  );
  assert.deepEqual(errorsOf({ repositoryPolicy: { allowedBackends: ["ftp"] } }), [
    'spec.repositoryPolicy.allowedBackends[0]: must be one of "local", "sftp", "rest", "s3", "b2", "azure", "gs", "swift", "rclone"',
  ]);
  assert.deepEqual(errorsOf({ backrestURLAllowlist: ["https://gw.example/backrest/..;/admin"] }), [
    "spec.backrestURLAllowlist[0]: must not contain %, ;, \\, ? or # (one spelling per address: no encoding, parameters, query or fragment)",
  ]);
  assert.deepEqual(
    errorsOf({ bindingGeneration: { defaultRepo: { extraFlags: ["-o rclone.program=sh"] } } }).length,
    1,
  );
  assert.deepEqual(errorsOf(null), ["spec: required"]);
});

Deno.test("parseOperatorConfig() keeps metadata and status readable when the spec is invalid", () => {
  const r = parseOperatorConfig({
    ...SEED,
    spec: { resyncPeriod: "soon" },
    status: { observedGeneration: 1, conditions: [] },
  });
  assert.equal(r.ok, false);
  if (r.ok) return;
  assert.equal(r.metadata?.name, "backrest-volsync-operator");
  assert.equal(r.status.observedGeneration, 1);
});
