import assert from "node:assert/strict";
import {
  type Confinement,
  confineRepository,
  DEFAULT_REPOSITORY_POLICY,
  type PolicyProblem,
  type RepositoryPolicy,
} from "./repository_policy.ts";
import { EVERY_BACKEND_READS, RESTIC_ENV } from "./restic_env.ts";

const confine = (uri: string, env: Record<string, string> = {}, policy: Partial<RepositoryPolicy> = {}) =>
  confineRepository(uri, new Map(Object.entries(env)), { ...DEFAULT_REPOSITORY_POLICY, ...policy });
const masked = (r: PolicyProblem | Confinement) => {
  assert.ok("masked" in r, JSON.stringify(r));
  return r.masked;
};
const problem = (r: PolicyProblem | Confinement) => {
  assert.ok("kind" in r, JSON.stringify(r));
  return r;
};

Deno.test("confineRepository() masks every variable the backend reads that the Secret does not supply", () => {
  const cases: [string, Record<string, string>][] = [
    ["s3:s3.amazonaws.com/b", { AWS_ACCESS_KEY_ID: "AKIA", AWS_SECRET_ACCESS_KEY: "s" }],
    ["azure:c:/", { AZURE_ACCOUNT_NAME: "acct", AZURE_ACCOUNT_SAS: "sv=1" }],
    ["b2:bucket:/", { B2_ACCOUNT_ID: "id", B2_ACCOUNT_KEY: "k" }],
    ["swift:c:/", { ST_AUTH: "https://swift.example/auth/v1.0", ST_USER: "u", ST_KEY: "k" }],
    ["rest:https://rest.example/", {}],
  ];
  for (const [uri, env] of cases) {
    const backend = uri.slice(0, uri.indexOf(":")) as keyof typeof RESTIC_ENV;
    const want = [...RESTIC_ENV[backend].reads, ...EVERY_BACKEND_READS].filter((k) => !(k in env)).sort();
    assert.deepEqual(masked(confine(uri, env)), want, uri);
  }
  // The issue's cases, by name: Backrest's session token, its legacy key names, the other of key and SAS,
  // OpenStack variables beside a Secret's ST_*, rest's user and password.
  const s3 = masked(confine(cases[0]![0], cases[0]![1]));
  for (const k of ["AWS_SESSION_TOKEN", "AWS_ACCESS_KEY", "AWS_SECRET_KEY", "RESTIC_AWS_ASSUME_ROLE_ARN"]) {
    assert.ok(s3.includes(k), k);
  }
  assert.ok(masked(confine(cases[1]![0], cases[1]![1])).includes("AZURE_ACCOUNT_KEY"), "the key would win");
  assert.ok(masked(confine(cases[1]![0], cases[1]![1])).includes("AZURE_TOKEN_CREDENTIALS"));
  const swift = masked(confine(cases[3]![0], cases[3]![1]));
  for (const k of ["OS_AUTH_URL", "OS_USERNAME", "OS_PASSWORD", "OS_STORAGE_URL", "OS_AUTH_TOKEN"]) {
    assert.ok(swift.includes(k), k);
  }
  // A supplied session token is the tenant's, not masked.
  assert.ok(
    !masked(confine(cases[0]![0], { ...cases[0]![1], AWS_SESSION_TOKEN: "t" })).includes("AWS_SESSION_TOKEN"),
  );
});

Deno.test("confineRepository() refuses an empty credential, and a missing one unless ambient credentials are allowed", () => {
  const s3 = "s3:s3.amazonaws.com/b";
  const empty = problem(confine(s3, { AWS_ACCESS_KEY_ID: "", AWS_SECRET_ACCESS_KEY: "" }));
  assert.equal(empty.key, "AWS_ACCESS_KEY_ID");
  assert.match(empty.message, /is empty: restic reads an empty credential as none/);
  assert.equal(
    problem(confine("azure:c:/", { AZURE_ACCOUNT_NAME: "acct", AZURE_ACCOUNT_KEY: "" })).key,
    "AZURE_ACCOUNT_KEY",
  );
  assert.equal(problem(confine("b2:b:/", { B2_ACCOUNT_ID: "id", B2_ACCOUNT_KEY: "" })).key, "B2_ACCOUNT_KEY");
  assert.equal(
    problem(confine("swift:c:/", { ST_AUTH: "https://s/auth/v1.0", ST_USER: "u", ST_KEY: "" })).key,
    "ST_KEY",
  );
  // Half a set: the rest would come from Backrest.
  assert.match(
    problem(confine(s3, { AWS_ACCESS_KEY_ID: "AKIA" })).message,
    /needs AWS_ACCESS_KEY_ID \+ AWS_SECRET_ACCESS_KEY/,
  );
  // Allowed ambient: nothing masked, so Backrest's identity works as the admin intends.
  assert.deepEqual(masked(confine(s3, {}, { allowAmbientCredentials: true })), []);
  assert.deepEqual(masked(confine("gs:b:/", {}, { allowAmbientCredentials: true })), []);
  assert.match(problem(confine("gs:b:/")).message, /can only use Backrest's Google identity/);
  assert.match(
    problem(confine("sftp:u@host:/r", {}, { allowedBackends: ["sftp"] })).message,
    /Backrest's SSH keys.*allowAmbientCredentials/,
  );
});

Deno.test("confineRepository() keeps repositories on storage: http(s) only, no unix socket, no local or metadata host", () => {
  const refused: [string, Record<string, string>, string][] = [
    ["rest:http+unix:///run/backrest.sock:/repo", {}, "RESTIC_REPOSITORY"],
    ["rest:unix:///run/x.sock", {}, "RESTIC_REPOSITORY"],
    ["rest:http://127.0.0.1:9898/", {}, "RESTIC_REPOSITORY"],
    ["rest:http://LOCALHOST:9898/", {}, "RESTIC_REPOSITORY"],
    ["rest:http://[::ffff:169.254.169.254]/", {}, "RESTIC_REPOSITORY"],
    ["rest:http://0.0.0.0:9898/", {}, "RESTIC_REPOSITORY"],
    ["rest:http://2852039166/", {}, "RESTIC_REPOSITORY"],
    ["rest:http://１２７.０.０.１:9898/", {}, "RESTIC_REPOSITORY"],
    ["rest:http://127。0。0。1:9898/", {}, "RESTIC_REPOSITORY"],
    [
      "s3:http://169.254.169.254/bucket",
      { AWS_ACCESS_KEY_ID: "a", AWS_SECRET_ACCESS_KEY: "s" },
      "RESTIC_REPOSITORY",
    ],
    ["s3:http+unix:///x.sock/b", { AWS_ACCESS_KEY_ID: "a", AWS_SECRET_ACCESS_KEY: "s" }, "RESTIC_REPOSITORY"],
    [
      "swift:c:/",
      { ST_AUTH: "http+unix:///run/x.sock:/v1.0", ST_USER: "u", ST_KEY: "k" },
      "ST_AUTH",
    ],
    ["swift:c:/", { ST_AUTH: "http://[fe80::1]/auth", ST_USER: "u", ST_KEY: "k" }, "ST_AUTH"],
    [
      "s3:s3.example/b",
      {
        AWS_ACCESS_KEY_ID: "a",
        AWS_SECRET_ACCESS_KEY: "s",
        RESTIC_AWS_ASSUME_ROLE_STS_ENDPOINT: "http://169.254.169.254/",
      },
      "RESTIC_AWS_ASSUME_ROLE_STS_ENDPOINT",
    ],
    ["azure:c:/", { AZURE_ACCOUNT_NAME: "x@127.0.0.1:1#", AZURE_ACCOUNT_KEY: "k" }, "AZURE_ACCOUNT_NAME"],
    [
      "azure:c:/",
      { AZURE_ACCOUNT_NAME: "acct", AZURE_ACCOUNT_KEY: "k", AZURE_ENDPOINT_SUFFIX: "x@127.0.0.1:18443" },
      "AZURE_ENDPOINT_SUFFIX",
    ],
    [
      "azure:c:/",
      { AZURE_ACCOUNT_NAME: "acct", AZURE_ACCOUNT_KEY: "k", AZURE_ENDPOINT_SUFFIX: "localhost" },
      "AZURE_ENDPOINT_SUFFIX",
    ],
  ];
  for (const [uri, env, key] of refused) {
    const p = problem(confine(uri, env));
    assert.equal(p.key, key, `${uri} ${JSON.stringify(env)}: ${p.message}`);
  }
  // The admin's switch admits loopback and link-local, never a metadata service or an ambiguous spelling.
  assert.ok(masked(confine("rest:http://127.0.0.1:9898/", {}, { allowLocalAddresses: true })));
  assert.equal(
    problem(confine("rest:http://169.254.169.254/", {}, { allowLocalAddresses: true })).kind,
    "location_not_allowed",
  );
  assert.ok(masked(confine("rest:https://minio.storage.svc:9000/r")));
  assert.ok(
    masked(confine("s3:https://10.0.0.5:9000/b", { AWS_ACCESS_KEY_ID: "a", AWS_SECRET_ACCESS_KEY: "s" })),
  );
});
