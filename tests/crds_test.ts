/**
 * Our CRDs against the real kube-apiserver: the seed README's samples and every prototype field apply
 * unchanged, bad specs are refused at admission with a clear message (and lib/api's parsers refuse the
 * same specs), defaults, the status subresource, printer columns, discovery names, and descriptions on
 * every field. Rule: every object here is created by a real POST; nothing is checked against a stub.
 */

import assert from "node:assert/strict";
import { parse as parseYaml } from "yaml";
import { isRecord, type JsonObject } from "../lib/json.ts";
import {
  BACKREST_URL_DOT_SEGMENT_SOURCE,
  BACKREST_URL_PATTERN_SOURCE,
  BINDING_DEFAULTS,
  BINDING_PLURAL,
  BINDING_POLICIES,
  CLOCKS,
  CPU_NICE_LEVELS,
  CRON_PATTERN_SOURCE,
  DELETION_POLICIES,
  EXTRA_FLAG_PATTERN_SOURCE,
  GROUP,
  IO_NICE_LEVELS,
  OPERATOR_CONFIG_PLURAL,
  parseBinding,
  parseBindingSpec,
  parseOperatorConfig,
  parseOperatorConfigSpec,
  VERSION,
  VOLSYNC_KINDS,
} from "../lib/api/mod.ts";
import { type ControlPlane, controlPlane } from "./harness/control_plane.ts";
import { peer } from "./harness/peers.ts";
import { waitUntil } from "./harness/process.ts";

const CRD_FILES = [
  "backrest.garethgeorge.com_backrestvolsyncbindings.yaml",
  "backrest.garethgeorge.com_backrestvolsyncoperatorconfigs.yaml",
];
const BASE = `/apis/${GROUP}/${VERSION}`;
const TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io";

type Json = JsonObject;
const isJson = isRecord;

/** `at(obj, "spec", "repo", "autoUnlock")`: a nested value of unknown JSON, or undefined. */
function at(v: unknown, ...path: (string | number)[]): unknown {
  let cur = v;
  for (const key of path) {
    if (typeof key === "number") cur = Array.isArray(cur) ? cur[key] : undefined;
    else cur = isJson(cur) ? cur[key] : undefined;
  }
  return cur;
}

/** Asserts every field of `expected` is in `actual` with the same value (extra fields, e.g. defaults, allowed). */
function assertContains(actual: unknown, expected: unknown, where: string): void {
  if (isJson(expected)) {
    assert.ok(isJson(actual), `${where}: expected an object`);
    for (const [k, v] of Object.entries(expected)) assertContains(actual[k], v, `${where}.${k}`);
    return;
  }
  assert.deepEqual(actual, expected, where);
}

function readRepoFile(path: string): Promise<string> {
  return Deno.readTextFile(new URL(`../${path}`, import.meta.url));
}

let installed: Promise<ControlPlane> | undefined;

/** The control plane with our CRDs installed (AlreadyExists is fine: tests share one apiserver). */
function cluster(): Promise<ControlPlane> {
  installed ??= (async () => {
    const cp = await controlPlane();
    for (const file of CRD_FILES) await cp.apply(await readRepoFile(`manifests/crds/${file}`));
    return cp;
  })();
  return installed;
}

function path(plural: string, ns: string, name?: string, sub?: string): string {
  return `${BASE}/namespaces/${ns}/${plural}${name === undefined ? "" : `/${name}`}${
    sub === undefined ? "" : `/${sub}`
  }`;
}

/** POSTs `obj`; returns the HTTP status and the parsed answer. */
async function post(
  cp: ControlPlane,
  plural: string,
  ns: string,
  obj: unknown,
): Promise<{ status: number; body: unknown }> {
  const res = await cp.api("POST", path(plural, ns), obj);
  const text = await res.text();
  return { status: res.status, body: text === "" ? null : JSON.parse(text) };
}

function binding(name: string, spec: unknown): Json {
  return { apiVersion: `${GROUP}/${VERSION}`, kind: "BackrestVolSyncBinding", metadata: { name }, spec };
}

function operatorConfig(name: string, spec: unknown): Json {
  return {
    apiVersion: `${GROUP}/${VERSION}`,
    kind: "BackrestVolSyncOperatorConfig",
    metadata: { name },
    spec,
  };
}

const MINIMAL_SPEC = {
  backrest: { url: "http://backrest.backups.svc:9898" },
  source: { kind: "ReplicationSource", name: "data" },
};

Deno.test("crds: both CRDs install, become Established, and are discoverable by short name and category", async () => {
  const cp = await cluster();
  // Established is per CRD; the group's discovery document catches up a moment later.
  let resources: unknown[] = [];
  await waitUntil("discovery lists both CRDs", async () => {
    const listed = at(await cp.json("GET", BASE), "resources");
    resources = Array.isArray(listed) ? listed : [];
    const names = resources.map((r) => at(r, "name"));
    return names.includes(BINDING_PLURAL) && names.includes(OPERATOR_CONFIG_PLURAL);
  }, { timeoutMs: 30_000 });
  const byName = new Map(resources.filter(isJson).map((r) => [r.name, r]));
  assert.deepEqual(at(byName.get(BINDING_PLURAL), "shortNames"), ["bvb"]);
  assert.deepEqual(at(byName.get(BINDING_PLURAL), "categories"), ["backrest"]);
  assert.equal(at(byName.get(BINDING_PLURAL), "namespaced"), true);
  assert.deepEqual(at(byName.get(OPERATOR_CONFIG_PLURAL), "shortNames"), ["bvoc"]);
  assert.deepEqual(at(byName.get(OPERATOR_CONFIG_PLURAL), "categories"), ["backrest"]);
  assert.ok(byName.has(`${BINDING_PLURAL}/status`), "Binding status subresource");
  assert.ok(byName.has(`${OPERATOR_CONFIG_PLURAL}/status`), "OperatorConfig status subresource");
});

Deno.test("crds: the seed README's sample Binding and OperatorConfig apply unchanged", async (t) => {
  const cp = await cluster();
  const ns = "backups"; // the samples name it; other tests may have created it already
  const nsRes = await cp.api("POST", "/api/v1/namespaces", {
    apiVersion: "v1",
    kind: "Namespace",
    metadata: { name: ns },
  });
  await nsRes.body?.cancel();
  assert.ok(nsRes.ok || nsRes.status === 409, `namespace: HTTP ${nsRes.status}`);

  for (
    const [file, plural, parse] of [
      ["binding.yaml", BINDING_PLURAL, parseBinding],
      ["operatorconfig.yaml", OPERATOR_CONFIG_PLURAL, parseOperatorConfig],
    ] as const
  ) {
    await t.step(file, async () => {
      const sample = parseYaml(await readRepoFile(`manifests/samples/${file}`));
      const name = at(sample, "metadata", "name");
      assert.equal(typeof name, "string");
      const del = await cp.api("DELETE", path(plural, ns, String(name)));
      await del.body?.cancel();
      const created = await post(cp, plural, ns, sample);
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const parsed = parse(created.body);
      assert.ok(parsed.ok, parsed.ok ? "" : JSON.stringify(parsed.errors));
      // Everything the sample says survives unchanged.
      assertContains(at(created.body, "spec"), at(sample, "spec"), "spec");
      const cleanup = await cp.api("DELETE", path(plural, ns, String(name)));
      await cleanup.body?.cancel();
    });
  }

  const kubectl = (await peer("kubectl")).path;
  await t.step({
    name: "kubectl apply -f manifests/samples/ (as the README says)",
    fn: async () => {
      const out = await new Deno.Command(kubectl, {
        args: [
          "--kubeconfig",
          cp.kubeconfigPath,
          "apply",
          "-f",
          new URL("../manifests/samples/", import.meta.url).pathname,
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
      assert.ok(out.success, text);
      assert.match(text, /backrestvolsyncbinding.*my-app (created|configured|unchanged)/);
      assert.match(
        text,
        /backrestvolsyncoperatorconfig.*backrest-volsync-operator (created|configured|unchanged)/,
      );
      for (
        const [plural, name] of [[BINDING_PLURAL, "my-app"], [
          OPERATOR_CONFIG_PLURAL,
          "backrest-volsync-operator",
        ]]
      ) {
        const res = await cp.api("DELETE", path(plural ?? "", ns, name));
        await res.body?.cancel();
      }
    },
  });
});

Deno.test("crds: every prototype field round-trips unchanged, spec and status", async () => {
  const cp = await cluster();
  const ns = await cp.namespace("crds-proto");
  const spec = {
    backrest: { url: "http://backrest.backups.svc:9898", authRef: { name: "backrest-auth" } },
    source: { kind: "ReplicationDestination", name: "restore-data" },
    repo: {
      idOverride: "",
      autoUnlock: true,
      autoInitialize: false,
      triggerTasksOnSnapshot: true,
      extraFlags: ["--limit-upload=1000", "-o", "s3.storage-class=STANDARD_IA"],
      envAllowlist: ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"],
    },
  };
  const created = await post(cp, BINDING_PLURAL, ns, binding("proto", spec));
  assert.equal(created.status, 201, JSON.stringify(created.body));
  assert.deepEqual(at(created.body, "spec"), { ...spec, deletionPolicy: "Retain" });

  const status = {
    observedGeneration: 1,
    conditions: [{
      type: "Ready",
      status: "False",
      observedGeneration: 1,
      lastTransitionTime: "2024-05-01T10:00:00Z",
      reason: "BackrestAddRepoFailed",
      message: "BackrestAddRepoFailed (details omitted; errorHash=abc)",
    }],
    resolvedRepositorySecret: "restic-secret",
    lastAppliedInputHash: "a".repeat(64),
    lastApplyTime: "2024-05-01T10:00:00Z",
    lastErrorHash: "b".repeat(64),
    lastSnapshotMarker: "lastSyncTime=2024-05-01T09:00:00Z",
    lastSnapshotSyncTime: "2024-05-01T09:00:00Z",
    lastIndexedSnapshotMarker: "lastManualSync=once",
    lastIndexedSnapshotSyncTime: "2024-05-01T08:00:00Z",
    lastRepoTaskTriggerTime: "2024-05-01T09:00:05Z",
    lastRepoTaskErrorHash: "c".repeat(64),
    repoId: "volsync-x-replicationdestination-restore-data",
    backrestURL: "http://backrest.backups.svc:9898",
  };
  const updated = await cp.json("PATCH", path(BINDING_PLURAL, ns, "proto", "status"), { status }, {
    "content-type": "application/merge-patch+json",
  });
  assert.deepEqual(at(updated, "status"), status);
  const parsed = parseBinding(updated);
  assert.ok(parsed.ok, parsed.ok ? "" : JSON.stringify(parsed.errors));
  assert.deepEqual(parsed.value.status, status);

  const configSpec = {
    paused: true,
    defaultBackrest: { url: "", authRef: { name: "backrest-auth" } },
    bindingGeneration: {
      policy: "",
      kinds: ["ReplicationSource", "ReplicationDestination"],
      defaultRepo: {
        autoUnlock: false,
        autoInitialize: true,
        triggerTasksOnSnapshot: true,
        extraFlags: ["--no-lock"],
        envAllowlist: ["B2_ACCOUNT_ID"],
      },
    },
  };
  const config = await post(cp, OPERATOR_CONFIG_PLURAL, ns, operatorConfig("proto", configSpec));
  assert.equal(config.status, 201, JSON.stringify(config.body));
  assert.deepEqual(at(config.body, "spec"), { ...configSpec, resyncPeriod: "10m" });
  const parsedConfig = parseOperatorConfig(config.body);
  assert.ok(parsedConfig.ok, parsedConfig.ok ? "" : JSON.stringify(parsedConfig.errors));
  assert.equal(parsedConfig.value.spec.bindingGeneration.policy, "Disabled");
});

Deno.test("crds: Backrest's policies round-trip in their proto3 JSON form", async () => {
  const cp = await cluster();
  const ns = await cp.namespace("crds-policies");
  const repo = {
    prunePolicy: {
      schedule: { maxFrequencyDays: 7, clock: "CLOCK_LAST_RUN_TIME" },
      maxUnusedBytes: 1073741824,
    },
    checkPolicy: { schedule: { cron: "0 3 * * 0", clock: "CLOCK_UTC" }, readDataSubsetPercent: 2.5 },
    forgetPolicy: {
      schedule: { maxFrequencyHours: 12 },
      retention: {
        policyTimeBucketed: { hourly: 24, daily: 7, weekly: 4, monthly: 12, yearly: 3, keepLastN: 2 },
      },
    },
    commandPrefix: { ioNice: "IO_BEST_EFFORT_LOW", cpuNice: "CPU_LOW" },
  };
  const spec = { ...MINIMAL_SPEC, repo: { ...repo, idOverride: "a.b-c_d" }, deletionPolicy: "Remove" };
  const created = await post(cp, BINDING_PLURAL, ns, binding("policies", spec));
  assert.equal(created.status, 201, JSON.stringify(created.body));
  assert.deepEqual(at(created.body, "spec"), {
    ...spec,
    repo: { ...spec.repo, autoUnlock: false, triggerTasksOnSnapshot: false },
  });
  const parsed = parseBinding(created.body);
  assert.ok(parsed.ok, parsed.ok ? "" : JSON.stringify(parsed.errors));

  const config = await post(
    cp,
    OPERATOR_CONFIG_PLURAL,
    ns,
    operatorConfig("policies", {
      resyncPeriod: "1h30m",
      backrestURLAllowlist: ["http://backrest.backups.svc:9898", "https://backrest.example.com/api"],
      bindingGeneration: { policy: "All", defaultRepo: repo },
    }),
  );
  assert.equal(config.status, 201, JSON.stringify(config.body));
  assert.deepEqual(at(config.body, "spec", "bindingGeneration", "defaultRepo"), repo);
  const parsedConfig = parseOperatorConfig(config.body);
  assert.ok(parsedConfig.ok, parsedConfig.ok ? "" : JSON.stringify(parsedConfig.errors));
  assert.equal(parsedConfig.value.spec.resyncPeriodMs, 5_400_000);
});

/** Bad Binding specs: [name, spec, pattern the apiserver's message must match]. */
const BAD_BINDINGS: [string, unknown, RegExp][] = [
  [
    "repo id with a space",
    { ...MINIMAL_SPEC, repo: { idOverride: "my repo" } },
    /spec\.repo\.idOverride.*should match/,
  ],
  [
    "repo id _x_",
    { ...MINIMAL_SPEC, repo: { idOverride: "_x_" } },
    /spec\.repo\.idOverride.*must not both start and end with '_'/,
  ],
  [
    "ftp:// URL",
    { ...MINIMAL_SPEC, backrest: { url: "ftp://backrest:21" } },
    /spec\.backrest\.url.*http:\/\/ or https:\/\//,
  ],
  [
    "URL without scheme",
    { ...MINIMAL_SPEC, backrest: { url: "backrest.backups.svc:9898" } },
    /spec\.backrest\.url/,
  ],
  [
    "URL with credentials",
    { ...MINIMAL_SPEC, backrest: { url: "http://admin:secret@backrest:9898" } },
    /spec\.backrest\.url.*must not carry credentials/,
  ],
  ["missing URL", { source: MINIMAL_SPEC.source, backrest: {} }, /spec\.backrest\.url.*Required/],
  [
    "unknown source kind",
    { ...MINIMAL_SPEC, source: { kind: "Deployment", name: "x" } },
    /spec\.source\.kind.*Unsupported value: "Deployment"/,
  ],
  [
    "missing source name",
    { ...MINIMAL_SPEC, source: { kind: "ReplicationSource" } },
    /spec\.source\.name.*Required/,
  ],
  [
    "bad deletionPolicy",
    { ...MINIMAL_SPEC, deletionPolicy: "Delete" },
    /spec\.deletionPolicy.*Unsupported value/,
  ],
  [
    "schedule with cron and disabled",
    { ...MINIMAL_SPEC, repo: { prunePolicy: { schedule: { cron: "0 0 * * *", disabled: true } } } },
    /spec\.repo\.prunePolicy\.schedule.*set at most one of disabled, cron, maxFrequencyDays, maxFrequencyHours/,
  ],
  [
    "schedule disabled: false",
    { ...MINIMAL_SPEC, repo: { checkPolicy: { schedule: { disabled: false } } } },
    /spec\.repo\.checkPolicy\.schedule\.disabled.*must be true when set/,
  ],
  [
    "cron of one field",
    { ...MINIMAL_SPEC, repo: { checkPolicy: { schedule: { cron: "daily" } } } },
    /spec\.repo\.checkPolicy\.schedule\.cron.*must be five cron fields/,
  ],
  [
    "cron that Backrest's library would loop on forever (step 0)",
    { ...MINIMAL_SPEC, repo: { checkPolicy: { schedule: { cron: "*/0 * * * *" } } } },
    /spec\.repo\.checkPolicy\.schedule\.cron.*must be five cron fields/,
  ],
  [
    "cron with seconds (Backrest reads five fields)",
    { ...MINIMAL_SPEC, repo: { checkPolicy: { schedule: { cron: "0 0 0 * * *" } } } },
    /spec\.repo\.checkPolicy\.schedule\.cron.*must be five cron fields/,
  ],
  [
    "bad clock enum",
    { ...MINIMAL_SPEC, repo: { prunePolicy: { schedule: { clock: "LOCAL" } } } },
    /spec\.repo\.prunePolicy\.schedule\.clock.*Unsupported value: "LOCAL"/,
  ],
  [
    "bad ioNice enum",
    { ...MINIMAL_SPEC, repo: { commandPrefix: { ioNice: "IO_LOW" } } },
    /spec\.repo\.commandPrefix\.ioNice.*Unsupported value: "IO_LOW"/,
  ],
  [
    "maxFrequencyDays 0",
    { ...MINIMAL_SPEC, repo: { prunePolicy: { schedule: { maxFrequencyDays: 0 } } } },
    /spec\.repo\.prunePolicy\.schedule\.maxFrequencyDays.*greater than or equal to 1/,
  ],
  [
    "structureOnly and readDataSubsetPercent",
    { ...MINIMAL_SPEC, repo: { checkPolicy: { structureOnly: true, readDataSubsetPercent: 10 } } },
    /spec\.repo\.checkPolicy.*set at most one of structureOnly, readDataSubsetPercent/,
  ],
  [
    "forget schedule without retention",
    { ...MINIMAL_SPEC, repo: { forgetPolicy: { schedule: { cron: "0 0 * * *" } } } },
    /spec\.repo\.forgetPolicy.*an active schedule needs a retention policy/,
  ],
  [
    "two retention policies",
    { ...MINIMAL_SPEC, repo: { forgetPolicy: { retention: { policyKeepLastN: 3, policyKeepAll: true } } } },
    /spec\.repo\.forgetPolicy\.retention.*set exactly one of/,
  ],
  [
    "all-zero time buckets",
    { ...MINIMAL_SPEC, repo: { forgetPolicy: { retention: { policyTimeBucketed: { daily: 0 } } } } },
    /spec\.repo\.forgetPolicy\.retention\.policyTimeBucketed.*at least one count above zero/,
  ],
  [
    "readDataSubsetPercent above 100",
    { ...MINIMAL_SPEC, repo: { checkPolicy: { readDataSubsetPercent: 150 } } },
    /spec\.repo\.checkPolicy\.readDataSubsetPercent.*less than or equal to 100/,
  ],
  // Spellings that parsers disagree on (tenant isolation: an allowlist prefix must not be escapable).
  ...[
    "https://gw.example/backrest/..;/admin",
    "https://gw.example/backrest/..%2fadmin",
    "https://gw.example/backrest/%2e%2e%2fadmin",
    "https://gw.example/backrest?",
    "https://gw.example/backrest#x",
  ].map((url): [string, unknown, RegExp] => [
    `URL ${url}`,
    { ...MINIMAL_SPEC, backrest: { url } },
    /spec\.backrest\.url.*must not contain %, ;, \\, \? or #/,
  ]),
  [
    "URL with a .. segment",
    { ...MINIMAL_SPEC, backrest: { url: "http://b:1/x/../y" } },
    /\.\. path segments/,
  ],
  ["URL with port 0", { ...MINIMAL_SPEC, backrest: { url: "http://b:0" } }, /port must be 1 to 65535/],
  ...[
    `--password-command="sh -c 'touch /tmp/x'"`,
    "-o sftp.command=ssh",
    "--cache-dir=/tmp",
    "--limit-upload=${X}",
  ]
    .map((flag): [string, unknown, RegExp] => [
      `restic flag ${flag}`,
      { ...MINIMAL_SPEC, repo: { extraFlags: [flag] } },
      /spec\.repo\.extraFlags\[0\].*is not an allowed restic flag/,
    ]),
  [
    "33 extraFlags",
    { ...MINIMAL_SPEC, repo: { extraFlags: Array.from({ length: 33 }, () => "--no-lock") } },
    /spec\.repo\.extraFlags.*must have at most 32 items/,
  ],
];

/** Bad OperatorConfig specs. */
const BAD_CONFIGS: [string, unknown, RegExp][] = [
  [
    "bad policy enum",
    { bindingGeneration: { policy: "Sometimes" } },
    /spec\.bindingGeneration\.policy.*Unsupported value: "Sometimes"/,
  ],
  [
    "bad kind in kinds",
    { bindingGeneration: { kinds: ["Pod"] } },
    /spec\.bindingGeneration\.kinds\[0\].*Unsupported value: "Pod"/,
  ],
  ["resyncPeriod in words", { resyncPeriod: "10 minutes" }, /spec\.resyncPeriod.*should match/],
  ["resyncPeriod without unit", { resyncPeriod: "600" }, /spec\.resyncPeriod.*should match/],
  ["resyncPeriod too short", { resyncPeriod: "100ms" }, /spec\.resyncPeriod.*must be between 1s and 24h/],
  ["resyncPeriod too long", { resyncPeriod: "48h" }, /spec\.resyncPeriod.*must be between 1s and 24h/],
  [
    "ftp:// default URL",
    { defaultBackrest: { url: "ftp://backrest" } },
    /spec\.defaultBackrest\.url.*http:\/\/ or https:\/\//,
  ],
  [
    "ftp:// allowlist entry",
    { backrestURLAllowlist: ["ftp://backrest"] },
    /spec\.backrestURLAllowlist\[0\].*http:\/\/ or https:\/\//,
  ],
  [
    "allowlist entry with ..;",
    { backrestURLAllowlist: ["https://gw.example/backrest/..;/admin"] },
    /spec\.backrestURLAllowlist\[0\].*must not contain %, ;/,
  ],
  [
    "unknown backend",
    { repositoryPolicy: { allowedBackends: ["ftp"] } },
    /spec\.repositoryPolicy\.allowedBackends\[0\].*Unsupported value: "ftp"/,
  ],
  [
    "a program-running flag in defaultRepo",
    { bindingGeneration: { defaultRepo: { extraFlags: ["-o rclone.program=/bin/sh"] } } },
    /spec\.bindingGeneration\.defaultRepo\.extraFlags\[0\].*is not an allowed restic flag/,
  ],
  [
    "schedule oneof in defaultRepo",
    {
      bindingGeneration: {
        defaultRepo: { prunePolicy: { schedule: { maxFrequencyDays: 1, maxFrequencyHours: 1 } } },
      },
    },
    /spec\.bindingGeneration\.defaultRepo\.prunePolicy\.schedule.*set at most one of/,
  ],
];

Deno.test("crds: bad specs are refused at admission with a clear message, and lib/api refuses them too", async (t) => {
  const cp = await cluster();
  const ns = await cp.namespace("crds-bad");
  let i = 0;
  for (
    const [plural, cases, make, parseSpec] of [
      [BINDING_PLURAL, BAD_BINDINGS, binding, parseBindingSpec],
      [OPERATOR_CONFIG_PLURAL, BAD_CONFIGS, operatorConfig, parseOperatorConfigSpec],
    ] as const
  ) {
    for (const [name, spec, message] of cases) {
      await t.step(`${plural}: ${name}`, async () => {
        const res = await post(cp, plural, ns, make(`bad-${i++}`, spec));
        assert.equal(res.status, 422, `expected 422, got ${res.status}: ${JSON.stringify(res.body)}`);
        assert.match(String(at(res.body, "message")), message);
        assert.equal(parseSpec(spec).ok, false, "lib/api accepts what the apiserver refuses");
      });
    }
  }
});

Deno.test("crds: specs the apiserver accepts, lib/api accepts too", async () => {
  const cp = await cluster();
  const ns = await cp.namespace("crds-good");
  const good: unknown[] = [
    MINIMAL_SPEC,
    { ...MINIMAL_SPEC, backrest: { url: "https://backrest.example.com/prefix/" } },
    { ...MINIMAL_SPEC, repo: { idOverride: "_leading-only" } },
    { ...MINIMAL_SPEC, repo: { prunePolicy: { schedule: { disabled: true } } } },
    { ...MINIMAL_SPEC, repo: { prunePolicy: { schedule: { clock: "CLOCK_UTC" } } } },
    { ...MINIMAL_SPEC, repo: { checkPolicy: { schedule: { cron: "0 3 * * SUN" }, structureOnly: true } } },
    { ...MINIMAL_SPEC, repo: { forgetPolicy: { schedule: { disabled: true } } } },
    {
      ...MINIMAL_SPEC,
      repo: {
        forgetPolicy: {
          schedule: { cron: "0,30 9-17/2 1-15 JAN-jun mon-FRI" },
          retention: { policyKeepAll: true },
        },
      },
    },
  ];
  for (const [i, spec] of good.entries()) {
    const res = await post(cp, BINDING_PLURAL, ns, binding(`good-${i}`, spec));
    assert.equal(res.status, 201, `${JSON.stringify(spec)}: ${JSON.stringify(res.body)}`);
    const parsed = parseBinding(res.body);
    assert.ok(parsed.ok, `${JSON.stringify(spec)}: ${parsed.ok ? "" : JSON.stringify(parsed.errors)}`);
  }
  for (
    const [i, spec] of [{}, { resyncPeriod: "1s" }, { resyncPeriod: "24h" }, { resyncPeriod: "1m30.5s" }]
      .entries()
  ) {
    const res = await post(cp, OPERATOR_CONFIG_PLURAL, ns, operatorConfig(`good-${i}`, spec));
    assert.equal(res.status, 201, `${JSON.stringify(spec)}: ${JSON.stringify(res.body)}`);
    assert.ok(parseOperatorConfig(res.body).ok, JSON.stringify(spec));
  }
});

Deno.test("crds: defaults are applied", async () => {
  const cp = await cluster();
  const ns = await cp.namespace("crds-defaults");
  const b = await post(cp, BINDING_PLURAL, ns, binding("d", { ...MINIMAL_SPEC, repo: { idOverride: "x" } }));
  assert.equal(b.status, 201, JSON.stringify(b.body));
  // Every default the Binding CRD declares is lib/api's BINDING_DEFAULTS (generated Bindings are built from it).
  const crd = parseYaml(await readRepoFile(`manifests/crds/${CRD_FILES[0]}`));
  const declared: Record<string, unknown> = {};
  const walk = (node: unknown, path: string) => {
    if (!isJson(node)) return;
    if ("default" in node) declared[path] = node.default;
    if (isJson(node.properties)) {
      for (const [k, v] of Object.entries(node.properties)) walk(v, path ? `${path}.${k}` : k);
    }
  };
  walk(at(crd, "spec", "versions", 0, "schema", "openAPIV3Schema", "properties", "spec"), "");
  assert.deepEqual(declared, {
    deletionPolicy: BINDING_DEFAULTS.deletionPolicy,
    "repo.autoUnlock": BINDING_DEFAULTS.repo.autoUnlock,
    "repo.triggerTasksOnSnapshot": BINDING_DEFAULTS.repo.triggerTasksOnSnapshot,
  });
  assert.equal(at(b.body, "spec", "deletionPolicy"), BINDING_DEFAULTS.deletionPolicy);
  assert.equal(at(b.body, "spec", "repo", "autoUnlock"), BINDING_DEFAULTS.repo.autoUnlock);
  assert.equal(
    at(b.body, "spec", "repo", "triggerTasksOnSnapshot"),
    BINDING_DEFAULTS.repo.triggerTasksOnSnapshot,
  );
  assert.equal(
    at(b.body, "spec", "repo", "autoInitialize"),
    undefined,
    "autoInitialize has no default (as in the prototype)",
  );
  // No repo at all stays no repo: the prototype's objects keep their meaning.
  const bare = await post(cp, BINDING_PLURAL, ns, binding("bare", MINIMAL_SPEC));
  assert.equal(at(bare.body, "spec", "repo"), undefined);
  assert.equal(at(bare.body, "spec", "deletionPolicy"), "Retain");

  const c = await post(cp, OPERATOR_CONFIG_PLURAL, ns, operatorConfig("d", {}));
  assert.equal(c.status, 201, JSON.stringify(c.body));
  assert.deepEqual(at(c.body, "spec"), { paused: false, resyncPeriod: "10m" });
});

Deno.test("crds: the status subresource separates spec and status writes", async () => {
  const cp = await cluster();
  const ns = await cp.namespace("crds-status");
  for (
    const [plural, obj] of [[BINDING_PLURAL, binding("s", MINIMAL_SPEC)], [
      OPERATOR_CONFIG_PLURAL,
      operatorConfig("s", {}),
    ]] as const
  ) {
    const created = await post(cp, plural, ns, { ...obj, status: { observedGeneration: 9 } });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.equal(at(created.body, "status"), undefined, "status is ignored on create");
    const condition = {
      type: "Ready",
      status: "True",
      reason: "Applied",
      message: "ok",
      lastTransitionTime: "2024-05-01T10:00:00Z",
      observedGeneration: 1,
    };
    const merge = { "content-type": "application/merge-patch+json" };
    const withStatus = await cp.json("PATCH", path(plural, ns, "s", "status"), {
      status: { observedGeneration: 1, conditions: [condition] },
    }, merge);
    assert.equal(at(withStatus, "metadata", "generation"), 1, "a status write does not bump generation");
    assert.deepEqual(at(withStatus, "status", "conditions"), [condition]);
    const viaMain = await cp.json(
      "PATCH",
      path(plural, ns, "s"),
      { status: { observedGeneration: 5 } },
      merge,
    );
    assert.equal(at(viaMain, "status", "observedGeneration"), 1, "status is ignored on the main resource");

    const badCondition = await cp.api("PATCH", path(plural, ns, "s", "status"), {
      status: { conditions: [{ ...condition, status: "Yes" }] },
    }, merge);
    const badBody = await badCondition.text();
    assert.equal(badCondition.status, 422, badBody);
    assert.match(badBody, /status\.conditions\[0\]\.status.*Unsupported value/);
  }
});

Deno.test("crds: printer columns show readiness, reason, repo and Backrest", async () => {
  const cp = await cluster();
  const ns = await cp.namespace("crds-columns");
  await post(cp, BINDING_PLURAL, ns, binding("cols", MINIMAL_SPEC));
  await cp.json("PATCH", path(BINDING_PLURAL, ns, "cols", "status"), {
    status: {
      repoId: "volsync-x-replicationsource-data",
      conditions: [{
        type: "Ready",
        status: "False",
        reason: "VolSyncNotFound",
        message: "m",
        lastTransitionTime: "2024-05-01T10:00:00Z",
      }],
    },
  }, { "content-type": "application/merge-patch+json" });
  const table = await cp.json("GET", path(BINDING_PLURAL, ns), undefined, { accept: TABLE });
  const columns = at(table, "columnDefinitions");
  assert.ok(Array.isArray(columns));
  const names = columns.map((c) => at(c, "name"));
  assert.deepEqual(names, [
    "Name",
    "Ready",
    "Reason",
    "Repo",
    "Backrest",
    "Source",
    "Kind",
    "Deletion",
    "Age",
  ]);
  const row = at(table, "rows", 0, "cells");
  assert.ok(Array.isArray(row));
  assert.deepEqual(row.slice(0, 8), [
    "cols",
    "False",
    "VolSyncNotFound",
    "volsync-x-replicationsource-data",
    "http://backrest.backups.svc:9898",
    "data",
    "ReplicationSource",
    "Retain",
  ]);

  await post(
    cp,
    OPERATOR_CONFIG_PLURAL,
    ns,
    operatorConfig("cols", { bindingGeneration: { policy: "All" } }),
  );
  const configTable = await cp.json("GET", path(OPERATOR_CONFIG_PLURAL, ns), undefined, { accept: TABLE });
  const configColumns = at(configTable, "columnDefinitions");
  assert.ok(Array.isArray(configColumns));
  assert.deepEqual(configColumns.map((c) => at(c, "name")), [
    "Name",
    "Paused",
    "Policy",
    "Ready",
    "Resync",
    "Age",
  ]);
  const configRow = at(configTable, "rows", 0, "cells");
  assert.ok(Array.isArray(configRow));
  assert.deepEqual(configRow.slice(0, 3), ["cols", false, "All"]);
});

/** Walks a schema; calls `visit` with each property's path and schema. */
function walk(schema: unknown, at_: string, visit: (path: string, schema: Json) => void): void {
  if (!isJson(schema)) return;
  const props = schema.properties;
  if (isJson(props)) {
    for (const [key, child] of Object.entries(props)) {
      if (!isJson(child)) continue;
      visit(`${at_}.${key}`, child);
      walk(child, `${at_}.${key}`, visit);
    }
  }
  walk(schema.items, `${at_}[]`, visit);
}

async function storedSchema(cp: ControlPlane, plural: string): Promise<Json> {
  const crd = await cp.json(
    "GET",
    `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${plural}.${GROUP}`,
  );
  const schema = at(crd, "spec", "versions", 0, "schema", "openAPIV3Schema");
  assert.ok(isJson(schema));
  return schema;
}

Deno.test("crds: every field has a description, so kubectl explain reads well", async () => {
  const cp = await cluster();
  for (const plural of [BINDING_PLURAL, OPERATOR_CONFIG_PLURAL]) {
    const schema = await storedSchema(cp, plural);
    assert.equal(typeof schema.description, "string");
    const missing: string[] = [];
    walk(schema, "", (p, s) => {
      if (p === ".metadata") return;
      if (typeof s.description !== "string" || s.description.length < 8) missing.push(p);
    });
    assert.deepEqual(missing, [], `${plural}: fields without a description`);
  }
});

Deno.test("crds: the schemas agree with lib/api's enums, and defaultRepo matches the Binding's repo", async () => {
  const cp = await cluster();
  const b = await storedSchema(cp, BINDING_PLURAL);
  const c = await storedSchema(cp, OPERATOR_CONFIG_PLURAL);
  const spec = (s: Json, ...p: string[]) =>
    at(s, "properties", "spec", ...p.flatMap((k) => ["properties", k]));
  const repo = spec(b, "repo");
  assert.deepEqual(at(spec(b, "source", "kind"), "enum"), [...VOLSYNC_KINDS]);
  assert.deepEqual(at(spec(b, "deletionPolicy"), "enum"), [...DELETION_POLICIES]);
  assert.deepEqual(
    at(repo, "properties", "prunePolicy", "properties", "schedule", "properties", "clock", "enum"),
    [...CLOCKS],
  );
  assert.deepEqual(at(repo, "properties", "commandPrefix", "properties", "ioNice", "enum"), [
    ...IO_NICE_LEVELS,
  ]);
  assert.deepEqual(at(repo, "properties", "commandPrefix", "properties", "cpuNice", "enum"), [
    ...CPU_NICE_LEVELS,
  ]);
  assert.deepEqual(at(spec(c, "bindingGeneration", "policy"), "enum"), ["", ...BINDING_POLICIES]);
  assert.deepEqual(at(spec(c, "bindingGeneration", "kinds"), "items", "enum"), [...VOLSYNC_KINDS]);

  // defaultRepo is the Binding's repo without idOverride and without defaults (an unset default stays unset).
  const strip = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(strip);
    if (!isJson(v)) return v;
    return Object.fromEntries(
      Object.entries(v).filter(([k]) => k !== "default" && k !== "description" && k !== "idOverride").map((
        [k, x],
      ) => [k, strip(x)]),
    );
  };
  assert.deepEqual(
    strip(at(spec(c, "bindingGeneration", "defaultRepo"), "properties")),
    strip(at(repo, "properties")),
  );
});

Deno.test("crds: the URL and restic flag rules are lib/api's expressions, character for character", async () => {
  /** The CEL string literal that carries `source`. */
  const literal = (source: string) => `"${source.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
  const rules = (yaml: string) => JSON.stringify(parseYaml(yaml));
  for (const file of CRD_FILES) {
    const text = rules(await readRepoFile(`manifests/crds/${file}`));
    for (
      const rule of [
        `self.matches(${literal(BACKREST_URL_PATTERN_SOURCE)})`,
        `!self.matches(${literal(BACKREST_URL_DOT_SEGMENT_SOURCE)})`,
        `self.matches(${literal(EXTRA_FLAG_PATTERN_SOURCE)})`,
        `self.matches(${literal(CRON_PATTERN_SOURCE)})`,
      ]
    ) assert.ok(text.includes(JSON.stringify(rule).slice(1, -1)), `${file} carries ${rule.slice(0, 60)}...`);
  }
});

Deno.test("crds: every string and every list is bounded, so no object can grow the operator's caches without limit", async () => {
  const unbounded: string[] = [];
  const walk = (node: unknown, path: string) => {
    if (!isJson(node)) return;
    const enumerated = Array.isArray(node.enum) || node.format === "date-time";
    if (node.type === "string" && node.maxLength === undefined && !enumerated) {
      unbounded.push(`${path}: maxLength`);
    }
    if (node.type === "array" && node.maxItems === undefined) unbounded.push(`${path}: maxItems`);
    if (isJson(node.properties)) {
      for (const [k, v] of Object.entries(node.properties)) walk(v, `${path}.${k}`);
    }
    walk(node.items, `${path}[]`);
  };
  for (const file of CRD_FILES) {
    const crd = parseYaml(await readRepoFile(`manifests/crds/${file}`));
    const root = at(crd, "spec", "versions", 0, "schema", "openAPIV3Schema");
    for (const part of ["spec", "status"]) walk(at(root, "properties", part), `${file} ${part}`);
  }
  assert.deepEqual(unbounded, []);
});
