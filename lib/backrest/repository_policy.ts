/**
 * What a tenant's repository Secret may make restic in Backrest do, decided before anything is sent.
 * restic in Backrest runs with Backrest's own environment, files and identity, and Backrest expands
 * `${NAME}` in the URI and every env entry from that environment. Rules:
 * - nothing that Backrest would expand (`${...}`) is sent: the value would change, and could carry
 *   Backrest's environment to the tenant or off-cluster;
 * - env holds only the keys VolSync's restic mover itself passes (VolSync v0.16.0), minus those that name a
 *   file or profile in Backrest's pod; so nothing like `LD_PRELOAD`, `PATH`, `HOME`, proxies or
 *   `RCLONE_CONFIG_*` can reach restic;
 * - only the backends the OperatorConfig allows (default: the network ones VolSync users back up to) are
 *   registered; `local` (Backrest's own disk), `sftp` (Backrest's SSH keys; a host that starts with `-`
 *   becomes an ssh option) and `rclone` (runs a program) must be allowed explicitly;
 * - a backend that falls back to Backrest's own cloud identity when the Secret carries no credentials
 *   (s3, azure, gs, b2, swift) needs them in the Secret, unless the OperatorConfig allows ambient ones.
 * Errors name keys and backends, never values.
 */
import {
  type Backend,
  BACKENDS,
  DEFAULT_ALLOWED_BACKENDS,
  type RepositoryPolicy,
} from "../api/operator_config.ts";

export type { Backend, RepositoryPolicy };
export { BACKENDS, DEFAULT_ALLOWED_BACKENDS };

/** The default policy (what no OperatorConfig, or one without `repositoryPolicy`, means). */
export const DEFAULT_REPOSITORY_POLICY: RepositoryPolicy = {
  allowedBackends: DEFAULT_ALLOWED_BACKENDS,
  allowAmbientCredentials: false,
  allowAdoption: false,
};

/**
 * The optional keys VolSync v0.16.0's restic mover passes from the repository Secret to restic
 * (`internal/controller/mover/restic/mover.go`), besides RESTIC_REPOSITORY and RESTIC_PASSWORD.
 */
export const VOLSYNC_ENV_KEYS: readonly string[] = [
  "RESTIC_COMPRESSION",
  "RESTIC_PACK_SIZE",
  "RESTIC_READ_CONCURRENCY",
  "AWS_ACCESS_KEY_ID",
  "AWS_SECRET_ACCESS_KEY",
  "AWS_SESSION_TOKEN",
  "AWS_DEFAULT_REGION",
  "AWS_PROFILE",
  "RESTIC_AWS_ASSUME_ROLE_ARN",
  "RESTIC_AWS_ASSUME_ROLE_SESSION_NAME",
  "RESTIC_AWS_ASSUME_ROLE_EXTERNAL_ID",
  "RESTIC_AWS_ASSUME_ROLE_POLICY",
  "RESTIC_AWS_ASSUME_ROLE_REGION",
  "RESTIC_AWS_ASSUME_ROLE_STS_ENDPOINT",
  "ST_AUTH",
  "ST_USER",
  "ST_KEY",
  "OS_AUTH_URL",
  "OS_REGION_NAME",
  "OS_USERNAME",
  "OS_USER_ID",
  "OS_PASSWORD",
  "OS_TENANT_ID",
  "OS_TENANT_NAME",
  "OS_USER_DOMAIN_NAME",
  "OS_USER_DOMAIN_ID",
  "OS_PROJECT_NAME",
  "OS_PROJECT_DOMAIN_NAME",
  "OS_PROJECT_DOMAIN_ID",
  "OS_TRUST_ID",
  "OS_APPLICATION_CREDENTIAL_ID",
  "OS_APPLICATION_CREDENTIAL_NAME",
  "OS_APPLICATION_CREDENTIAL_SECRET",
  "OS_STORAGE_URL",
  "OS_AUTH_TOKEN",
  "B2_ACCOUNT_ID",
  "B2_ACCOUNT_KEY",
  "AZURE_ACCOUNT_NAME",
  "AZURE_ACCOUNT_KEY",
  "AZURE_ACCOUNT_SAS",
  "AZURE_ENDPOINT_SUFFIX",
  "AZURE_TENANT_ID",
  "AZURE_CLIENT_ID",
  "AZURE_FEDERATED_TOKEN_FILE",
  "GOOGLE_PROJECT_ID",
  "RESTIC_REST_USERNAME",
  "RESTIC_REST_PASSWORD",
];

/**
 * Keys of that list that are never passed: in Backrest's pod they would name Backrest's own files
 * (a profile in its AWS config, its workload-identity token).
 */
export const BACKREST_FILE_KEYS: ReadonlySet<string> = new Set(["AWS_PROFILE", "AZURE_FEDERATED_TOKEN_FILE"]);

/** The env keys that may be passed: VolSync's list minus {@linkcode BACKREST_FILE_KEYS}. */
export const PASSED_ENV_KEYS: ReadonlySet<string> = new Set(
  VOLSYNC_ENV_KEYS.filter((k) => !BACKREST_FILE_KEYS.has(k)),
);

/** Backrest's expansion (`\${[^}]*}` in `internal/orchestrator/repo/env.go`). */
const EXPANDED = /\$\{[^}]*\}/;

/** Whether Backrest would change `value` by expanding `${...}` from its own environment. */
export function backrestWouldExpand(value: string): boolean {
  return EXPANDED.test(value);
}

/** The backend restic picks for `uri` (its rule: a known prefix before the first `:`, else a local path). */
export function backendOf(uri: string): Backend {
  const prefix = uri.slice(0, Math.max(0, uri.indexOf(":")));
  return BACKENDS.find((b) => b === prefix) ?? "local";
}

/** Credentials in the Secret that keep restic off Backrest's own identity, per backend (any one set). */
const OWN_CREDENTIALS: Partial<Record<Backend, string[][]>> = {
  s3: [["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]],
  b2: [["B2_ACCOUNT_ID", "B2_ACCOUNT_KEY"]],
  azure: [["AZURE_ACCOUNT_NAME", "AZURE_ACCOUNT_KEY"], ["AZURE_ACCOUNT_NAME", "AZURE_ACCOUNT_SAS"]],
  // restic's gs backend reads a credentials file or the metadata server only: nothing a Secret can give.
  gs: [],
  swift: [
    ["ST_AUTH", "ST_USER", "ST_KEY"],
    ["OS_AUTH_URL", "OS_PASSWORD"],
    ["OS_AUTH_URL", "OS_APPLICATION_CREDENTIAL_SECRET"],
    ["OS_STORAGE_URL", "OS_AUTH_TOKEN"],
  ],
};

/** A refusal: which rule, and a message naming keys and backends only. */
export interface PolicyProblem {
  kind: "backend_not_allowed" | "secret_invalid";
  key: string;
  message: string;
}

/**
 * The first reason the repository at `uri`, with the env keys that will be passed, breaks `policy`, or
 * `undefined`. The URI's expansion check comes first (it names RESTIC_REPOSITORY).
 */
export function repositoryProblem(
  uri: string,
  passedKeys: ReadonlySet<string>,
  policy: RepositoryPolicy,
): PolicyProblem | undefined {
  if (backrestWouldExpand(uri)) return expansionProblem("RESTIC_REPOSITORY");
  const backend = backendOf(uri);
  if (!policy.allowedBackends.includes(backend)) {
    const why = backend === "local"
      ? "a local path names Backrest's own disk"
      : backend === "sftp"
      ? "sftp logs in with Backrest's own SSH keys"
      : backend === "rclone"
      ? "rclone runs a program inside Backrest"
      : "the OperatorConfig does not list it";
    return {
      kind: "backend_not_allowed",
      key: "RESTIC_REPOSITORY",
      message: `RESTIC_REPOSITORY uses restic's ${backend} backend, which is not allowed here (${why}); ` +
        "the OperatorConfig's spec.repositoryPolicy.allowedBackends decides",
    };
  }
  // Even where allowed, these hand the location to another program's argument list.
  if (
    backend === "sftp" && !/^sftp:(\/\/)?([a-zA-Z0-9._][a-zA-Z0-9._-]*@)?[a-zA-Z0-9[][^:/@\s]*[:/]/.test(uri)
  ) {
    return {
      kind: "secret_invalid",
      key: "RESTIC_REPOSITORY",
      message:
        "RESTIC_REPOSITORY: an sftp user or host must not start with '-' or hold spaces (ssh reads it as an option)",
    };
  }
  if (backend === "rclone" && !/^rclone:[a-zA-Z0-9_:]/.test(uri)) {
    return {
      kind: "secret_invalid",
      key: "RESTIC_REPOSITORY",
      message:
        "RESTIC_REPOSITORY: an rclone remote must start with a letter, digit, '_' or ':' (rclone reads '-' as a flag)",
    };
  }
  const sets = OWN_CREDENTIALS[backend];
  if (sets && !policy.allowAmbientCredentials && !sets.some((set) => set.every((k) => passedKeys.has(k)))) {
    const needs = sets.length === 0
      ? "restic's gs backend can only use Backrest's own Google identity"
      : `the Secret needs ${sets.map((s) => s.join(" + ")).join(", or ")}`;
    return {
      kind: "secret_invalid",
      key: sets[0]?.find((k) => !passedKeys.has(k)) ?? "RESTIC_REPOSITORY",
      message: `${needs}: without its own credentials restic in Backrest would use Backrest's identity; ` +
        "the OperatorConfig's spec.repositoryPolicy.allowAmbientCredentials decides",
    };
  }
  return undefined;
}

/** The refusal of a value Backrest would expand. */
export function expansionProblem(key: string): PolicyProblem {
  return {
    kind: "secret_invalid",
    key,
    message: `Secret key ${key} contains \${...}, which Backrest would replace with a value from its own ` +
      "environment; write the value literally",
  };
}
