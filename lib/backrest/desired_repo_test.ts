import assert from "node:assert/strict";
import { toBinary } from "@bufbuild/protobuf";
import { RepoSchema } from "../../gen/v1/config_pb.ts";
import { toWireRepo } from "./client.ts";
import { desiredRepo, type DesiredRepoInput, hashInput, repoId, RepoMappingError } from "./desired_repo.ts";
import { importHashKey, keyedHasher, newHashKeyBytes } from "./status_hash.ts";
import { DEFAULT_REPOSITORY_POLICY, type RepositoryPolicy, VOLSYNC_ENV_KEYS } from "./repository_policy.ts";

/** What a rest repository without credentials of its own sends besides the Secret's keys: masks. */
const REST_MASKS = ["RESTIC_REST_PASSWORD=", "RESTIC_REST_USERNAME=", "RESTIC_TLS_CLIENT_CERT="];
const envOf = (r: { env: { name: string; value: { reveal(): string } }[] }) =>
  r.env.map((e) => `${e.name}=${e.value.reveal()}`);
import { Schedule_Clock } from "../../gen/v1/config_pb.ts";

const enc = new TextEncoder();
const secret = (data: Record<string, string | Uint8Array>): Record<string, Uint8Array> =>
  Object.fromEntries(Object.entries(data).map(([k, v]) => [k, typeof v === "string" ? enc.encode(v) : v]));

const base = (over: Partial<DesiredRepoInput> = {}): DesiredRepoInput => ({
  namespace: "apps",
  kind: "ReplicationSource",
  name: "data",
  secretData: secret({
    RESTIC_REPOSITORY: "rest:https://rest.example/repo",
    RESTIC_PASSWORD: "hunter2-long",
  }),
  ...over,
});

async function mappingError(fn: () => unknown): Promise<RepoMappingError> {
  try {
    await fn();
  } catch (e) {
    assert.ok(e instanceof RepoMappingError, String(e));
    return e;
  }
  assert.fail("expected a RepoMappingError");
}

Deno.test("desiredRepo() maps the required keys and builds the prototype's default id", async () => {
  const r = await desiredRepo(base());
  assert.equal(r.id, "volsync-apps-replicationsource-data");
  assert.equal(r.uri.reveal(), "rest:https://rest.example/repo");
  assert.equal(r.password.reveal(), "hunter2-long");
  assert.deepEqual(envOf(r), REST_MASKS, "rest's credential variables are sent empty");
  assert.equal(r.autoUnlock, false);
  assert.equal(r.mayInitialize, false);
  assert.match(r.hash, /^[0-9a-f]{64}$/);
  assert.equal(
    (await desiredRepo(base({ kind: "ReplicationDestination" }))).id,
    "volsync-apps-replicationdestination-data",
  );
});

Deno.test("desiredRepo() passes exactly the keys VolSync's mover passes, sorted, narrowed by the allowlist; names the rest", async () => {
  const data = secret({
    RESTIC_REPOSITORY: "rest:http://rest:8000/",
    RESTIC_PASSWORD: "pw-123456",
    RESTIC_REST_PASSWORD: "restpw",
    RESTIC_COMPRESSION: "max",
    RESTIC_PASSWORD_COMMAND: "cat /etc/shadow",
    RESTIC_CACHE_DIR: "/cache",
    AWS_SECRET_ACCESS_KEY: "aws-secret",
    AWS_ACCESS_KEY_ID: "AKIA",
    // What VolSync never passes, and what would change how restic runs inside Backrest.
    LD_PRELOAD: "/tmp/evil.so",
    PATH: "/tmp/evil",
    HOME: "/tmp",
    XDG_CACHE_HOME: "/tmp",
    HTTPS_PROXY: "http://evil:3128",
    RCLONE_CONFIG_X_TYPE: "local",
    "ca.crt": "pem",
    "A=B": "x",
    // On VolSync's list, but naming Backrest's own files.
    AWS_PROFILE: "backrest-admin",
    AZURE_FEDERATED_TOKEN_FILE: "/var/run/secrets/azure/tokens/azure-identity-token",
  });
  const all = await desiredRepo(base({ secretData: data }));
  assert.deepEqual(envOf(all), [
    "AWS_ACCESS_KEY_ID=AKIA",
    "AWS_SECRET_ACCESS_KEY=aws-secret",
    "RESTIC_COMPRESSION=max",
    "RESTIC_REST_PASSWORD=restpw",
    "RESTIC_REST_USERNAME=",
    "RESTIC_TLS_CLIENT_CERT=",
  ]);
  assert.deepEqual(all.ignoredKeys, [
    "A=B",
    "AWS_PROFILE",
    "AZURE_FEDERATED_TOKEN_FILE",
    "HOME",
    "HTTPS_PROXY",
    "LD_PRELOAD",
    "PATH",
    "RCLONE_CONFIG_X_TYPE",
    "RESTIC_CACHE_DIR",
    "RESTIC_PASSWORD_COMMAND",
    "XDG_CACHE_HOME",
    "ca.crt",
  ]);
  const some = await desiredRepo(
    base({ secretData: data, settings: { envAllowlist: ["RESTIC_COMPRESSION", "LD_PRELOAD", "NOPE"] } }),
  );
  assert.deepEqual(envOf(some), ["RESTIC_COMPRESSION=max", ...REST_MASKS], "what is left out is masked");
  assert.deepEqual(some.ignoredKeys, ["LD_PRELOAD"], "the allowlist cannot widen VolSync's list");
  assert.equal(VOLSYNC_ENV_KEYS.length, 47, "VolSync v0.16.0's mover passes 47 optional keys");
});

Deno.test("desiredRepo() refuses what Backrest would expand from its own environment, naming the key", async () => {
  const cases: [Record<string, string>, string][] = [
    [
      { RESTIC_REPOSITORY: "rest:http://[${AWS_SECRET_ACCESS_KEY}", RESTIC_PASSWORD: "p-123456" },
      "RESTIC_REPOSITORY",
    ],
    [
      { RESTIC_REPOSITORY: "rest:https://elsewhere/${HOME}/", RESTIC_PASSWORD: "p-123456" },
      "RESTIC_REPOSITORY",
    ],
    [
      { RESTIC_REPOSITORY: "rest:http://r/", RESTIC_PASSWORD: "p-123456", RESTIC_REST_USERNAME: "u${}" },
      "RESTIC_REST_USERNAME",
    ],
  ];
  for (const [data, key] of cases) {
    const e = await mappingError(() => desiredRepo(base({ secretData: secret(data) })));
    assert.equal(e.kind, "secret_invalid");
    assert.equal(e.key, key);
    assert.match(e.message, /Backrest would replace/);
    assert.ok(!e.message.includes("AWS_SECRET") && !e.message.includes("HOME"), e.message);
  }
  // What Backrest leaves alone passes: `$NAME`, a lone `${`, and any password (never expanded).
  const ok = await desiredRepo(base({
    secretData: secret({ RESTIC_REPOSITORY: "rest:http://r/$HOME/${x", RESTIC_PASSWORD: "p-${HOME}-1" }),
  }));
  assert.equal(ok.password.reveal(), "p-${HOME}-1");
});

Deno.test("desiredRepo() registers only the backends the policy allows, and only with the repository's own credentials", async () => {
  const d = (uri: string, extra: Record<string, string> = {}, policy?: RepositoryPolicy) =>
    desiredRepo(base({
      secretData: secret({ RESTIC_REPOSITORY: uri, RESTIC_PASSWORD: "p-123456", ...extra }),
      ...(policy ? { policy } : {}),
    }));
  for (
    const local of ["/var/lib/backrest", "local:/etc", "relative/dir", "C:\\x", "sftp:h:/p", "rclone:r:/p"]
  ) {
    const e = await mappingError(() => d(local));
    assert.equal(e.kind, "not_allowed", local);
    assert.equal(e.key, "RESTIC_REPOSITORY");
  }
  const aws = { AWS_ACCESS_KEY_ID: "AKIA", AWS_SECRET_ACCESS_KEY: "s3cret-1" };
  assert.ok(await d("s3:s3.amazonaws.com/bucket", aws));
  assert.equal((await mappingError(() => d("s3:s3.amazonaws.com/bucket"))).key, "AWS_ACCESS_KEY_ID");
  assert.equal(
    (await mappingError(() => d("s3:s3.amazonaws.com/bucket", { AWS_PROFILE: "admin" }))).kind,
    "secret_invalid",
  );
  assert.equal((await mappingError(() => d("gs:bucket:/"))).kind, "secret_invalid");
  assert.equal(
    (await mappingError(() => d("azure:c:/", { AZURE_ACCOUNT_NAME: "acct" }))).key,
    "AZURE_ACCOUNT_KEY",
  );
  assert.ok(await d("azure:c:/", { AZURE_ACCOUNT_NAME: "acct", AZURE_ACCOUNT_SAS: "sas-123" }));
  assert.equal((await mappingError(() => d("b2:bucket:/"))).kind, "secret_invalid");
  assert.equal((await mappingError(() => d("swift:c:/"))).kind, "secret_invalid");
  assert.ok(await d("rest:http://r/"), "rest needs no credentials");

  const open: RepositoryPolicy = {
    ...DEFAULT_REPOSITORY_POLICY,
    allowedBackends: ["local", "sftp", "rclone", "s3", "gs"],
    allowAmbientCredentials: true,
  };
  assert.equal((await d("/srv/repo", {}, open)).id, "volsync-apps-replicationsource-data");
  assert.deepEqual(envOf(await d("s3:s3.amazonaws.com/bucket", {}, open)), [], "ambient: nothing masked");
  assert.deepEqual(envOf(await d("gs:bucket:/", {}, open)), []);
  assert.ok(await d("sftp:user@host:/srv/repo", {}, open));
  assert.ok(await d("sftp://user@host:2222//srv/repo", {}, open));
  assert.ok(await d("rclone:remote:bucket/path", {}, open));
  // Even where allowed, a location that another program would read as its option is refused.
  for (
    const bad of [
      "sftp:-oProxyCommand=touch /tmp/x:/p",
      "sftp:user@-oProxyCommand=x:/p",
      "sftp:-l@host:/p",
      "sftp://-oProxyCommand=x/p",
      "rclone:--rc-addr=0.0.0.0:1",
    ]
  ) {
    assert.equal((await mappingError(() => d(bad, {}, open))).kind, "secret_invalid", bad);
  }
  assert.equal((await mappingError(() => d("rest:http://r/", {}, open))).kind, "not_allowed");
});

Deno.test("desiredRepo() rejects missing, empty, non-UTF-8 and multi-line values, naming the key only", async () => {
  const R = "rest:http://rest.example/r";
  const cases: [Record<string, string | Uint8Array>, string][] = [
    [{ RESTIC_PASSWORD: "secret-value-1" }, "RESTIC_REPOSITORY"],
    [{ RESTIC_REPOSITORY: R, RESTIC_PASSWORD: "" }, "RESTIC_PASSWORD"],
    [{ RESTIC_REPOSITORY: `${R}\n`, RESTIC_PASSWORD: "secret-value-1" }, "RESTIC_REPOSITORY"],
    [{ RESTIC_REPOSITORY: R, RESTIC_PASSWORD: "secret\0value-1" }, "RESTIC_PASSWORD"],
    [{ RESTIC_REPOSITORY: R, RESTIC_PASSWORD: new Uint8Array([0xff, 0xfe]) }, "RESTIC_PASSWORD"],
    [
      { RESTIC_REPOSITORY: R, RESTIC_PASSWORD: "p-123456", AWS_SESSION_TOKEN: "secret-value-1\nx" },
      "AWS_SESSION_TOKEN",
    ],
    [
      { RESTIC_REPOSITORY: R, RESTIC_PASSWORD: "p-123456", B2_ACCOUNT_KEY: new Uint8Array([0xc3]) },
      "B2_ACCOUNT_KEY",
    ],
  ];
  for (const [data, key] of cases) {
    const e = await mappingError(() => desiredRepo(base({ secretData: secret(data) })));
    assert.equal(e.kind, "secret_invalid");
    assert.equal(e.key, key);
    assert.ok(e.message.includes(key), e.message);
    assert.ok(!e.message.includes("secret"), e.message);
    assert.ok(!e.message.includes("value-1"), e.message);
  }
});

Deno.test("desiredRepo() keeps a trailing newline in the password (VolSync passes it to restic as is)", async () => {
  const r = await desiredRepo(
    base({ secretData: secret({ RESTIC_REPOSITORY: "rest:http://r/", RESTIC_PASSWORD: "pw-123456\n" }) }),
  );
  assert.equal(r.password.reveal(), "pw-123456\n");
});

Deno.test("desiredRepo() refuses GOOGLE_APPLICATION_CREDENTIALS and customCA as unsupported", async () => {
  const gac = await mappingError(() =>
    desiredRepo(base({
      secretData: secret({
        RESTIC_REPOSITORY: "gs:b:/",
        RESTIC_PASSWORD: "p-123456",
        GOOGLE_APPLICATION_CREDENTIALS: "{}",
      }),
    }))
  );
  const ambient: RepositoryPolicy = { ...DEFAULT_REPOSITORY_POLICY, allowAmbientCredentials: true };
  assert.equal(gac.kind, "unsupported");
  assert.equal(gac.key, "GOOGLE_APPLICATION_CREDENTIALS");
  assert.equal((await mappingError(() => desiredRepo(base({ customCA: true })))).kind, "unsupported");
  // Left out by the allowlist: not passed, so no error.
  const r = await desiredRepo(base({
    secretData: secret({
      RESTIC_REPOSITORY: "gs:b:/",
      RESTIC_PASSWORD: "p-123456",
      GOOGLE_APPLICATION_CREDENTIALS: "{}",
    }),
    settings: { envAllowlist: ["GOOGLE_PROJECT_ID"] },
    policy: ambient,
  }));
  assert.deepEqual(r.env, []);
});

Deno.test("repoId() honours idOverride and enforces Backrest's id rules", async () => {
  assert.equal(repoId("ns", "ReplicationSource", "n", "my.repo-1_x"), "my.repo-1_x");
  for (const bad of ["has space", "_both_", "slash/no", "ünï"]) {
    assert.equal(
      (await mappingError(() => repoId("ns", "ReplicationSource", "n", bad))).kind,
      "spec_invalid",
    );
  }
  assert.equal(repoId("ns", "ReplicationSource", "n", "_start"), "_start");
});

Deno.test("desiredRepo() sends allowed flags in one spelling, sorted, and parses policies from Backrest's JSON form", async () => {
  const r = await desiredRepo(base({
    settings: {
      extraFlags: ["--no-cache", "-o s3.connections=2", "--limit-upload 100", "--option=rest.connections=3"],
      autoUnlock: true,
      autoInitialize: true,
      prunePolicy: { schedule: { cron: "0 3 * * *", clock: "CLOCK_LOCAL" }, maxUnusedPercent: 10 },
      checkPolicy: { schedule: { maxFrequencyDays: 7 }, readDataSubsetPercent: 5 },
      forgetPolicy: { schedule: { disabled: true }, retention: { policyKeepLastN: 3 } },
      commandPrefix: { ioNice: "IO_IDLE", cpuNice: "CPU_LOW" },
    },
  }));
  assert.deepEqual(r.flags, [
    "--limit-upload=100",
    "--no-cache",
    "--option=rest.connections=3",
    "--option=s3.connections=2",
  ]);
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
    const e = await mappingError(() => desiredRepo(base({ settings: { [key]: value } })));
    assert.equal(e.kind, "spec_invalid");
    assert.equal(e.key, key);
  }
  for (const bad of [["a\nb"], ["--verbose"], ["--limit-upload=1", "--limit-upload=2"]]) {
    const e = await mappingError(() => desiredRepo(base({ settings: { extraFlags: bad } })));
    assert.equal(e.kind, "spec_invalid");
    assert.equal(e.key, "extraFlags");
  }
});

Deno.test("desiredRepo() hash is stable and moves with every input, secret or not", async () => {
  const h = async (over: Partial<DesiredRepoInput>) => (await desiredRepo(base(over))).hash;
  const first = await h({});
  assert.equal(await h({}), first);
  const variants = [
    await h({
      secretData: secret({
        RESTIC_REPOSITORY: "rest:https://rest.example/repo",
        RESTIC_PASSWORD: "hunter2-lonG",
      }),
    }),
    await h({
      secretData: secret({
        RESTIC_REPOSITORY: "rest:https://rest.example/repo",
        RESTIC_PASSWORD: "hunter2-long",
        RESTIC_COMPRESSION: "max",
      }),
    }),
    await h({ settings: { autoUnlock: true } }),
    await h({ settings: { autoInitialize: true } }),
    await h({ settings: { extraFlags: ["--no-cache"] } }),
    await h({ settings: { prunePolicy: { maxUnusedPercent: 5 } } }),
    await h({ settings: { idOverride: "other" } }),
    await h({ hashInputs: { authFingerprint: "abc" } }),
    await h({ hashInputs: { url: "http://a" } }),
  ];
  assert.equal(new Set([first, ...variants]).size, variants.length + 1);
  // Key order of the Secret does not matter.
  assert.equal(
    await h({
      secretData: secret({
        RESTIC_PASSWORD: "hunter2-long",
        RESTIC_REPOSITORY: "rest:https://rest.example/repo",
      }),
    }),
    first,
  );
});

Deno.test("desiredRepo() output shows no secret in JSON, inspect or template strings", async () => {
  const r = await desiredRepo(base({
    secretData: secret({
      RESTIC_REPOSITORY: "rest:http://r/canary-uri",
      RESTIC_PASSWORD: "canary-pw",
      RESTIC_REST_PASSWORD: "canary-env",
    }),
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

Deno.test("desiredRepo() hash: remembered results equal fresh ones", async () => {
  const h = async (i: number) =>
    (await desiredRepo(base({ hashInputs: { url: `http://backrest-${i}` } }))).hash;
  const first = await Promise.all(Array.from({ length: 300 }, (_, i) => h(i)));
  assert.equal(new Set(first).size, first.length);
  for (const i of [0, 5, 299, 140, 0]) assert.equal(await h(i), first[i], `input ${i} again`);
});

Deno.test("desiredRepo() hashes are the ones the release before WebCrypto wrote to status (nothing re-applies)", async () => {
  // Computed with node:crypto's pbkdf2Sync, the stretch this release replaced, over the Repo message with
  // rest's masks (which changed the input hash once: the masks must reach Backrest); the location's is as before.
  const r = await desiredRepo(base({ hashInputs: { url: "http://backrest:9898" } }));
  assert.equal(r.hash, "80e645f4c9954dc911ad6631aba8add2dd17fcd2a04d75418c78dd0edb90ee45");
  assert.equal(await r.repositoryHash(), "59532f77246f2ae5cb77e69995653313985f076af4559378e95252ed61f6d6e8");
});

/** Counts PBKDF2 stretches (Web Crypto `deriveBits`) while `fn` runs; `fn` can read the count so far. */
async function countingStretches<T>(
  fn: (stretches: () => number) => Promise<T>,
): Promise<{ value: T; stretches: number }> {
  const subtle = crypto.subtle;
  const derive = subtle.deriveBits.bind(subtle);
  let stretches = 0;
  subtle.deriveBits = (...args: Parameters<SubtleCrypto["deriveBits"]>) => {
    stretches++;
    return derive(...args);
  };
  try {
    return { value: await fn(() => stretches), stretches };
  } finally {
    subtle.deriveBits = derive;
  }
}

Deno.test("desiredRepo() stretches the location only when asked, once", async () => {
  await countingStretches(async (stretches) => {
    const uri = `rest:https://rest.example/lazy-${crypto.randomUUID()}`;
    const r = await desiredRepo(
      base({ secretData: secret({ RESTIC_REPOSITORY: uri, RESTIC_PASSWORD: "pw" }) }),
    );
    assert.equal(stretches(), 1, "the input hash only");
    const [a, b] = await Promise.all([r.repositoryHash(), r.repositoryHash()]);
    assert.equal(stretches(), 2, "the location once, however often asked");
    assert.equal(a, b);
    assert.match(a, /^[0-9a-f]{64}$/);
    assert.notEqual(a, r.hash);
  });
});

const keyed = (bytes: Uint8Array) => keyedHasher(() => Promise.resolve(importHashKey(bytes)));

Deno.test("desiredRepo() keyed hashes: HMAC under the installation's key, no stretch, another key another hash", async () => {
  const key = newHashKeyBytes();
  const input = base({ hashInputs: { url: "http://backrest:9898" }, hasher: keyed(key) });
  const { value: r, stretches } = await countingStretches(async () => {
    const r = await desiredRepo(input);
    await r.repositoryHash();
    assert.equal(await r.hashMatches(r.hash), true);
    assert.equal(await r.repositoryHashMatches(await r.repositoryHash()), true);
    return r;
  });
  assert.equal(stretches, 0);
  assert.match(r.hash, /^hmac:[0-9a-f]{64}$/);
  assert.match(await r.repositoryHash(), /^hmac:[0-9a-f]{64}$/);
  assert.notEqual(await r.repositoryHash(), r.hash);
  // The same key (the Secret read again after a restart) gives the same hashes.
  const again = await desiredRepo({ ...input, hasher: keyed(new Uint8Array(key)) });
  assert.equal(again.hash, r.hash);
  assert.equal(await again.repositoryHash(), await r.repositoryHash());
  // Another installation's key: nothing in common, so one status cannot be tested against another's.
  const other = await desiredRepo({ ...input, hasher: keyed(newHashKeyBytes()) });
  assert.notEqual(other.hash, r.hash);
  assert.equal(await other.hashMatches(r.hash), false);
  assert.equal(await other.repositoryHashMatches(await r.repositoryHash()), false);
  // A change of any input moves the hash.
  const rotated = await desiredRepo({
    ...input,
    secretData: secret({ RESTIC_REPOSITORY: "rest:https://rest.example/repo", RESTIC_PASSWORD: "rotated" }),
  });
  assert.notEqual(rotated.hash, r.hash);
  assert.equal(await rotated.hashMatches(r.hash), false);
  assert.equal(await rotated.repositoryHashMatches(await r.repositoryHash()), true, "same location");
});

Deno.test("desiredRepo() keyed hashes recognise what a build before keys wrote (an upgrade applies nothing again)", async () => {
  // The stretched values of the compatibility test above.
  const legacy = "80e645f4c9954dc911ad6631aba8add2dd17fcd2a04d75418c78dd0edb90ee45";
  const legacyLocation = "59532f77246f2ae5cb77e69995653313985f076af4559378e95252ed61f6d6e8";
  const r = await desiredRepo(
    base({ hashInputs: { url: "http://backrest:9898" }, hasher: keyed(newHashKeyBytes()) }),
  );
  assert.notEqual(r.hash, legacy);
  assert.equal(await r.hashMatches(legacy), true);
  assert.equal(await r.repositoryHashMatches(legacyLocation), true);
  const flipped = legacy.slice(0, -1) + (legacy.endsWith("d") ? "e" : "d");
  assert.equal(await r.hashMatches(flipped), false);
  assert.equal(await r.hashMatches(undefined), false);
  assert.equal(await r.hashMatches(legacy.toUpperCase()), false, "only the exact format");
  assert.equal(await r.hashMatches(`hmac:${legacy}`), false);
  // A keyed status value never costs a stretch, matching or not.
  const { stretches } = await countingStretches(async () => {
    await r.hashMatches(r.hash);
    await r.hashMatches(`hmac:${"0".repeat(64)}`);
  });
  assert.equal(stretches, 0);
});

Deno.test("desiredRepo() with a key that cannot be had fails, and writes no hash", async () => {
  const failing = keyedHasher(() => Promise.reject(new Error("key Secret unreadable")));
  await assert.rejects(desiredRepo(base({ hasher: failing })), /key Secret unreadable/);
});

Deno.test("desiredRepo() refuses a value or a repo too large for Backrest's shared config, naming the key only", async () => {
  const big = "x".repeat(8193);
  const e = await mappingError(() =>
    desiredRepo(base({
      secretData: secret({
        RESTIC_REPOSITORY: "rest:https://r/",
        RESTIC_PASSWORD: "p-123456",
        RESTIC_REST_PASSWORD: big,
      }),
    }))
  );
  assert.equal(e.kind, "secret_invalid");
  assert.equal(e.key, "RESTIC_REST_PASSWORD");
  assert.match(e.message, /holds 8193 bytes; at most 8192/);
  assert.ok(!e.message.includes("xxxx"));
  // Each value within bounds, all together not: eight AWS-session-token-sized values.
  const many = Object.fromEntries(
    ["AWS_SESSION_TOKEN", "OS_AUTH_TOKEN", "OS_PASSWORD", "ST_KEY", "B2_ACCOUNT_KEY"].map((
      k,
    ) => [k, "y".repeat(8000)]),
  );
  const total = await mappingError(() =>
    desiredRepo(
      base({
        secretData: secret({ RESTIC_REPOSITORY: "rest:https://r/", RESTIC_PASSWORD: "p-123456", ...many }),
      }),
    )
  );
  assert.match(total.message, /add up to \d+ bytes; at most 32768/);
  // A real session token passes.
  assert.ok(
    await desiredRepo(base({
      secretData: secret({
        RESTIC_REPOSITORY: "s3:s3.amazonaws.com/b",
        RESTIC_PASSWORD: "p-123456",
        AWS_ACCESS_KEY_ID: "ASIA",
        AWS_SECRET_ACCESS_KEY: "s".repeat(40),
        AWS_SESSION_TOKEN: "t".repeat(4096),
      }),
    })),
  );
});

Deno.test("desiredRepo() holds repo settings to the OperatorConfig's task limits, naming the field and the limit", async () => {
  const d = (
    settings: NonNullable<DesiredRepoInput["settings"]>,
    limits: Partial<RepositoryPolicy["taskLimits"]> = {},
  ) =>
    desiredRepo(base({
      settings,
      policy: {
        ...DEFAULT_REPOSITORY_POLICY,
        taskLimits: { ...DEFAULT_REPOSITORY_POLICY.taskLimits, ...limits },
      },
    }));
  const refused: [NonNullable<DesiredRepoInput["settings"]>, RegExp][] = [
    [
      { prunePolicy: { schedule: { cron: "* * * * *" } } },
      /prunePolicy\.schedule runs as often as every 1m;.*every 24h/,
    ],
    [
      { checkPolicy: { schedule: { maxFrequencyHours: 6 } } },
      /checkPolicy\.schedule runs as often as every 6h/,
    ],
    [
      { forgetPolicy: { schedule: { cron: "0 */12 * * *" }, retention: { policyKeepAll: true } } },
      /forgetPolicy\.schedule runs as often as every 12h/,
    ],
    [
      { checkPolicy: { readDataSubsetPercent: 50 } },
      /readDataSubsetPercent 50 is above .*maxReadDataSubsetPercent \(10\)/,
    ],
    [{ commandPrefix: { cpuNice: "CPU_HIGH" } }, /allowRaisedPriority/],
    [{ commandPrefix: { ioNice: "IO_BEST_EFFORT_HIGH" } }, /allowRaisedPriority/],
    [
      { extraFlags: ["--stuck-request-timeout=999999h"] },
      /--stuck-request-timeout=999999h is longer than .*\(30m\)/,
    ],
    [{ extraFlags: ["--retry-lock=2h"] }, /--retry-lock=2h is longer than .*maxRetryLock \(30m\)/],
    [
      { extraFlags: ["-o s3.connections=1000000"] },
      /s3\.connections=1000000 is above .*maxConnections \(16\)/,
    ],
  ];
  for (const [settings, message] of refused) {
    const e = await mappingError(() => d(settings));
    assert.equal(e.kind, "settings_not_allowed", JSON.stringify(settings));
    assert.match(e.message, message);
  }
  // Within the defaults, and what an admin raises.
  const within: NonNullable<DesiredRepoInput["settings"]>[] = [
    { prunePolicy: { schedule: { cron: "0 3 * * *" } } },
    { checkPolicy: { schedule: { maxFrequencyDays: 7 }, readDataSubsetPercent: 10 } },
    { commandPrefix: { cpuNice: "CPU_LOW", ioNice: "IO_IDLE" } },
    { extraFlags: ["--stuck-request-timeout=30m", "-o rest.connections=16"] },
  ];
  for (const ok of within) assert.ok(await d(ok), JSON.stringify(ok));
  assert.ok(
    await d({ prunePolicy: { schedule: { cron: "*/5 * * * *" } } }, { minScheduleIntervalMs: 300_000 }),
  );
  assert.ok(await d({ commandPrefix: { cpuNice: "CPU_HIGH" } }, { allowRaisedPriority: true }));
});

Deno.test("desiredRepo() hashes the very message the request sends, and every setting reaches both", async () => {
  const hasher = keyed(newHashKeyBytes());
  const extra = { url: "http://backrest:9898" };
  const data = secret({
    RESTIC_REPOSITORY: "rest:https://rest.example/repo",
    RESTIC_PASSWORD: "hunter2-long",
    RESTIC_COMPRESSION: "max",
  });
  const settings: Record<string, NonNullable<DesiredRepoInput["settings"]>> = {
    none: {},
    autoUnlock: { autoUnlock: true },
    extraFlags: { extraFlags: ["--no-cache"] },
    envAllowlist: { envAllowlist: ["RESTIC_PACK_SIZE"] },
    prunePolicy: { prunePolicy: { schedule: { cron: "0 3 * * 0" }, maxUnusedPercent: 10 } },
    checkPolicy: { checkPolicy: { schedule: { maxFrequencyDays: 7 }, structureOnly: true } },
    forgetPolicy: {
      forgetPolicy: { schedule: { maxFrequencyDays: 7 }, retention: { policyKeepLastN: 3 } },
    },
    commandPrefix: { commandPrefix: { cpuNice: "CPU_LOW" } },
  };
  const requests = new Set<string>();
  for (const [name, s] of Object.entries(settings)) {
    const d = await desiredRepo(base({ secretData: data, settings: s, hasher, hashInputs: extra }));
    const request = toBinary(RepoSchema, toWireRepo(d));
    assert.equal(
      await hasher.hash(hashInput(request, d.mayInitialize, extra)),
      d.hash,
      `${name}: the hash is of the request's bytes`,
    );
    requests.add(btoa(String.fromCharCode(...request)));
  }
  assert.equal(requests.size, Object.keys(settings).length, "each setting changes what is sent");
});
