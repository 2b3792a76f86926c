import assert from "node:assert/strict";
import { desiredRepo, type DesiredRepoInput, repoId, RepoMappingError } from "./desired_repo.ts";
import { Schedule_Clock } from "../../gen/v1/config_pb.ts";

const enc = new TextEncoder();
const secret = (data: Record<string, string | Uint8Array>): Record<string, Uint8Array> =>
  Object.fromEntries(Object.entries(data).map(([k, v]) => [k, typeof v === "string" ? enc.encode(v) : v]));

const base = (over: Partial<DesiredRepoInput> = {}): DesiredRepoInput => ({
  namespace: "apps",
  kind: "ReplicationSource",
  name: "data",
  secretData: secret({ RESTIC_REPOSITORY: "s3:https://s3.example/bucket", RESTIC_PASSWORD: "hunter2-long" }),
  ...over,
});

function mappingError(fn: () => unknown): RepoMappingError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof RepoMappingError, String(e));
    return e;
  }
  assert.fail("expected a RepoMappingError");
}

Deno.test("desiredRepo() maps the required keys and builds the prototype's default id", () => {
  const r = desiredRepo(base());
  assert.equal(r.id, "volsync-apps-replicationsource-data");
  assert.equal(r.uri.reveal(), "s3:https://s3.example/bucket");
  assert.equal(r.password.reveal(), "hunter2-long");
  assert.deepEqual(r.env, []);
  assert.equal(r.autoUnlock, false);
  assert.equal(r.mayInitialize, false);
  assert.match(r.hash, /^[0-9a-f]{64}$/);
  assert.equal(
    desiredRepo(base({ kind: "ReplicationDestination" })).id,
    "volsync-apps-replicationdestination-data",
  );
});

Deno.test("desiredRepo() passes other keys as sorted env, only VolSync's RESTIC_* keys, filtered by the allowlist", () => {
  const data = secret({
    RESTIC_REPOSITORY: "rest:http://rest:8000/",
    RESTIC_PASSWORD: "pw-123456",
    RESTIC_REST_PASSWORD: "restpw",
    RESTIC_COMPRESSION: "max",
    RESTIC_PASSWORD_COMMAND: "cat /etc/shadow",
    RESTIC_CACHE_DIR: "/cache",
    AWS_SECRET_ACCESS_KEY: "aws-secret",
    AWS_ACCESS_KEY_ID: "AKIA",
  });
  const all = desiredRepo(base({ secretData: data }));
  assert.deepEqual(all.env.map((e) => `${e.name}=${e.value.reveal()}`), [
    "AWS_ACCESS_KEY_ID=AKIA",
    "AWS_SECRET_ACCESS_KEY=aws-secret",
    "RESTIC_COMPRESSION=max",
    "RESTIC_REST_PASSWORD=restpw",
  ]);
  const some = desiredRepo(
    base({ secretData: data, settings: { envAllowlist: ["RESTIC_COMPRESSION", "NOPE"] } }),
  );
  assert.deepEqual(some.env.map((e) => e.name), ["RESTIC_COMPRESSION"]);
});

Deno.test("desiredRepo() rejects missing, empty, non-UTF-8 and multi-line values, naming the key only", () => {
  const cases: [Record<string, string | Uint8Array>, string][] = [
    [{ RESTIC_PASSWORD: "secret-value-1" }, "RESTIC_REPOSITORY"],
    [{ RESTIC_REPOSITORY: "/r", RESTIC_PASSWORD: "" }, "RESTIC_PASSWORD"],
    [{ RESTIC_REPOSITORY: "/r\n", RESTIC_PASSWORD: "secret-value-1" }, "RESTIC_REPOSITORY"],
    [{ RESTIC_REPOSITORY: "/r", RESTIC_PASSWORD: "secret\0value-1" }, "RESTIC_PASSWORD"],
    [{ RESTIC_REPOSITORY: "/r", RESTIC_PASSWORD: new Uint8Array([0xff, 0xfe]) }, "RESTIC_PASSWORD"],
    [{ RESTIC_REPOSITORY: "/r", RESTIC_PASSWORD: "p-123456", AWS_KEY: "secret-value-1\nx" }, "AWS_KEY"],
    [{ RESTIC_REPOSITORY: "/r", RESTIC_PASSWORD: "p-123456", B2_KEY: new Uint8Array([0xc3]) }, "B2_KEY"],
    [{ RESTIC_REPOSITORY: "/r", RESTIC_PASSWORD: "p-123456", "ca.crt": "secret-value-1" }, "ca.crt"],
    [{ RESTIC_REPOSITORY: "/r", RESTIC_PASSWORD: "p-123456", "A=B": "secret-value-1" }, "A=B"],
  ];
  for (const [data, key] of cases) {
    const e = mappingError(() => desiredRepo(base({ secretData: secret(data) })));
    assert.equal(e.kind, "secret_invalid");
    assert.equal(e.key, key);
    assert.ok(e.message.includes(key), e.message);
    assert.ok(!e.message.includes("secret"), e.message);
    assert.ok(!e.message.includes("value-1"), e.message);
  }
});

Deno.test("desiredRepo() keeps a trailing newline in the password (VolSync passes it to restic as is)", () => {
  const r = desiredRepo(
    base({ secretData: secret({ RESTIC_REPOSITORY: "/r", RESTIC_PASSWORD: "pw-123456\n" }) }),
  );
  assert.equal(r.password.reveal(), "pw-123456\n");
});

Deno.test("desiredRepo() refuses GOOGLE_APPLICATION_CREDENTIALS and customCA as unsupported", () => {
  const gac = mappingError(() =>
    desiredRepo(base({
      secretData: secret({
        RESTIC_REPOSITORY: "gs:b:/",
        RESTIC_PASSWORD: "p-123456",
        GOOGLE_APPLICATION_CREDENTIALS: "{}",
      }),
    }))
  );
  assert.equal(gac.kind, "unsupported");
  assert.equal(gac.key, "GOOGLE_APPLICATION_CREDENTIALS");
  assert.equal(mappingError(() => desiredRepo(base({ customCA: true }))).kind, "unsupported");
  // Left out by the allowlist: not passed, so no error.
  const r = desiredRepo(base({
    secretData: secret({
      RESTIC_REPOSITORY: "gs:b:/",
      RESTIC_PASSWORD: "p-123456",
      GOOGLE_APPLICATION_CREDENTIALS: "{}",
    }),
    settings: { envAllowlist: ["GOOGLE_PROJECT_ID"] },
  }));
  assert.deepEqual(r.env, []);
});

Deno.test("repoId() honours idOverride and enforces Backrest's id rules", () => {
  assert.equal(repoId("ns", "ReplicationSource", "n", "my.repo-1_x"), "my.repo-1_x");
  for (const bad of ["has space", "_both_", "slash/no", "ünï"]) {
    assert.equal(mappingError(() => repoId("ns", "ReplicationSource", "n", bad)).kind, "spec_invalid");
  }
  assert.equal(repoId("ns", "ReplicationSource", "n", "_start"), "_start");
});

Deno.test("desiredRepo() sorts flags and parses policies from Backrest's JSON form", () => {
  const r = desiredRepo(base({
    settings: {
      extraFlags: ["--verbose", "--limit-upload=100"],
      autoUnlock: true,
      autoInitialize: true,
      prunePolicy: { schedule: { cron: "0 3 * * *", clock: "CLOCK_LOCAL" }, maxUnusedPercent: 10 },
      checkPolicy: { schedule: { maxFrequencyDays: 7 }, readDataSubsetPercent: 5 },
      forgetPolicy: { schedule: { disabled: true }, retention: { policyKeepLastN: 3 } },
      commandPrefix: { ioNice: "IO_IDLE", cpuNice: "CPU_LOW" },
    },
  }));
  assert.deepEqual(r.flags, ["--limit-upload=100", "--verbose"]);
  assert.equal(r.autoUnlock, true);
  assert.equal(r.mayInitialize, true);
  assert.equal(r.prunePolicy?.schedule?.clock, Schedule_Clock.LOCAL);
  assert.equal(r.prunePolicy?.maxUnusedPercent, 10);
  assert.equal(r.checkPolicy?.mode.case, "readDataSubsetPercent");
  assert.equal(r.forgetPolicy?.retention?.policy.case, "policyKeepLastN");
  for (
    const [key, value] of [
      ["prunePolicy", { schedule: { cron: 5 } }],
      ["checkPolicy", { nope: true }],
      ["forgetPolicy", { schedule: { clock: "CLOCK_MOON" } }],
      ["commandPrefix", "fast"],
    ] as const
  ) {
    const e = mappingError(() => desiredRepo(base({ settings: { [key]: value } })));
    assert.equal(e.kind, "spec_invalid");
    assert.equal(e.key, key);
  }
  assert.equal(
    mappingError(() => desiredRepo(base({ settings: { extraFlags: ["a\nb"] } }))).key,
    "extraFlags",
  );
});

Deno.test("desiredRepo() hash is stable and moves with every input, secret or not", () => {
  const h = (over: Partial<DesiredRepoInput>) => desiredRepo(base(over)).hash;
  const first = h({});
  assert.equal(h({}), first);
  const variants = [
    h({
      secretData: secret({
        RESTIC_REPOSITORY: "s3:https://s3.example/bucket",
        RESTIC_PASSWORD: "hunter2-lonG",
      }),
    }),
    h({
      secretData: secret({
        RESTIC_REPOSITORY: "s3:https://s3.example/bucket",
        RESTIC_PASSWORD: "hunter2-long",
        X: "1",
      }),
    }),
    h({ settings: { autoUnlock: true } }),
    h({ settings: { autoInitialize: true } }),
    h({ settings: { extraFlags: ["--x"] } }),
    h({ settings: { prunePolicy: { maxUnusedPercent: 5 } } }),
    h({ settings: { idOverride: "other" } }),
    h({ hashInputs: { authFingerprint: "abc" } }),
    h({ hashInputs: { url: "http://a" } }),
  ];
  assert.equal(new Set([first, ...variants]).size, variants.length + 1);
  // Key order of the Secret does not matter.
  assert.equal(
    h({
      secretData: secret({
        RESTIC_PASSWORD: "hunter2-long",
        RESTIC_REPOSITORY: "s3:https://s3.example/bucket",
      }),
    }),
    first,
  );
});

Deno.test("desiredRepo() output shows no secret in JSON, inspect or template strings", () => {
  const r = desiredRepo(base({
    secretData: secret({ RESTIC_REPOSITORY: "/r-canary-uri", RESTIC_PASSWORD: "canary-pw", K: "canary-env" }),
  }));
  for (
    const text of [
      JSON.stringify(r),
      Deno.inspect(r, { depth: 10 }),
      `${r.password}`,
      String(r.env[0]?.value),
    ]
  ) {
    assert.ok(!/canary/.test(text), text);
  }
});

Deno.test("desiredRepo() hash: remembered results equal fresh ones", () => {
  const h = (i: number) => desiredRepo(base({ hashInputs: { url: `http://backrest-${i}` } })).hash;
  const first = Array.from({ length: 300 }, (_, i) => h(i));
  assert.equal(new Set(first).size, first.length);
  for (const i of [0, 5, 299, 140, 0]) assert.equal(h(i), first[i], `input ${i} again`);
});
