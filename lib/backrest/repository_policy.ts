/**
 * What a tenant's repository Secret may make restic in Backrest do, decided before anything is sent.
 * restic in Backrest runs with Backrest's own environment, files, network and identity, and Backrest
 * expands `${NAME}` in the URI and every env entry from that environment. Rules:
 * - nothing that Backrest would expand (`${...}`) is sent: the value would change, and could carry
 *   Backrest's environment to the tenant or off-cluster;
 * - env holds only the keys VolSync's restic mover itself passes (VolSync v0.16.0), minus those that name a
 *   file or profile in Backrest's pod; so nothing like `LD_PRELOAD`, `PATH`, `HOME`, proxies or
 *   `RCLONE_CONFIG_*` can reach restic;
 * - only the backends the OperatorConfig allows (default: the network ones VolSync users back up to) are
 *   registered; `local` (Backrest's own disk), `sftp` (Backrest's SSH keys; a host that starts with `-`
 *   becomes an ssh option) and `rclone` (runs a program) must be allowed explicitly;
 * - a repository reaches only storage: `rest:` and every URL in the Secret are http or https (restic also
 *   speaks to unix sockets), and no host is Backrest's own pod or node (repository_hosts.ts);
 * - credentials are the Secret's own (restic_env.ts lists, from restic's source, what each backend reads):
 *   each one supplied is non-empty, a backend that falls back to Backrest's identity needs one whole set
 *   unless the OperatorConfig allows ambient credentials, and every other variable the backend reads is sent
 *   empty, so Backrest's own value of it never fills the gap (Backrest appends the repo's env after its own,
 *   and the last value of a key wins).
 * Errors name keys and backends, never values.
 */
import {
  type Backend,
  BACKENDS,
  DEFAULT_ALLOWED_BACKENDS,
  defaultRepositoryPolicy,
  type RepositoryPolicy,
} from "../api/operator_config.ts";
import { hostProblem, repositoryHosts, URL_ENV_KEYS } from "./repository_hosts.ts";
import { EVERY_BACKEND_READS, RESTIC_ENV } from "./restic_env.ts";

export type { Backend, RepositoryPolicy };
export { BACKENDS, DEFAULT_ALLOWED_BACKENDS };

/** The default policy (what no OperatorConfig, or one without `repositoryPolicy`, means). */
export const DEFAULT_REPOSITORY_POLICY: RepositoryPolicy = defaultRepositoryPolicy();

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

/** A refusal: which rule, and a message naming keys and backends only. */
export interface PolicyProblem {
  /** Which rule refused: the backend, where the repository points, or the Secret's contents. */
  kind: "backend_not_allowed" | "location_not_allowed" | "secret_invalid";
  /** The Secret key the refusal is about. */
  key: string;
  /** Names keys, backends and kinds of address; never a value. */
  message: string;
}

/** What may be sent: the variables to send empty so Backrest's own never reach restic. */
export interface Confinement {
  /** Variables the backend reads that the Secret does not supply, sorted: each sent as `KEY=`. */
  masked: string[];
}

/** An Azure storage account name (3 to 24 lowercase letters and digits). */
const AZURE_ACCOUNT = /^[a-z0-9]{3,24}$/;
/** A DNS suffix: labels of letters, digits and hyphens. */
const DNS_SUFFIX = /^[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)*$/;

/** Why the URL-valued parts of the repository break the rules on where restic may connect, or `undefined`. */
function locationProblem(
  uri: string,
  backend: Backend,
  env: ReadonlyMap<string, string>,
  policy: RepositoryPolicy,
): PolicyProblem | undefined {
  const invalid = (key: string, message: string): PolicyProblem => ({ kind: "secret_invalid", key, message });
  // restic's HTTP transport also speaks http+unix and https+unix: any socket in Backrest's pod.
  if (backend === "rest" && !/^rest:https?:\/\//i.test(uri)) {
    return invalid(
      "RESTIC_REPOSITORY",
      "RESTIC_REPOSITORY: a rest repository must be an http:// or https:// URL",
    );
  }
  if (backend === "s3" && /^s3:http/i.test(uri) && !/^s3:https?:\/\//i.test(uri)) {
    return invalid("RESTIC_REPOSITORY", "RESTIC_REPOSITORY: an s3 endpoint URL must be http:// or https://");
  }
  for (const key of URL_ENV_KEYS) {
    const v = env.get(key);
    if (v !== undefined && v !== "" && !/^https?:\/\//i.test(v)) {
      return invalid(key, `Secret key ${key} must be an http:// or https:// URL`);
    }
  }
  const hosts = repositoryHosts(uri, backend, env);
  if (backend === "azure") {
    const account = env.get("AZURE_ACCOUNT_NAME");
    const suffix = env.get("AZURE_ENDPOINT_SUFFIX");
    // restic builds https://<account>.blob.<suffix>/ from both without checking either (azure.go:72).
    if (account !== undefined && account !== "" && !AZURE_ACCOUNT.test(account)) {
      return invalid(
        "AZURE_ACCOUNT_NAME",
        "Secret key AZURE_ACCOUNT_NAME must be 3 to 24 lowercase letters and digits",
      );
    }
    if (suffix !== undefined && suffix !== "" && !DNS_SUFFIX.test(suffix)) {
      return invalid(
        "AZURE_ENDPOINT_SUFFIX",
        "Secret key AZURE_ENDPOINT_SUFFIX must be a DNS name such as core.windows.net",
      );
    }
    if (suffix) hosts.push({ key: "AZURE_ENDPOINT_SUFFIX", host: `${account || "account"}.blob.${suffix}` });
  }
  const where = hostProblem(hosts, policy.allowLocalAddresses);
  return where && { kind: "location_not_allowed", key: where.key, message: where.message };
}

/**
 * The first reason the repository at `uri`, with the env the Secret supplies (keys VolSync's mover passes,
 * values as given), breaks `policy`; or what to mask. The URI's expansion check comes first (it names
 * RESTIC_REPOSITORY). Credentials: any credential the Secret supplies must be non-empty (restic reads an
 * empty one as none and falls back); a backend that can fall back to Backrest's identity needs one whole set
 * of the Secret's own, unless the OperatorConfig allows ambient credentials; with its own set (or for a
 * backend that needs none) every other variable the backend reads is masked.
 */
export function confineRepository(
  uri: string,
  env: ReadonlyMap<string, string>,
  policy: RepositoryPolicy,
): PolicyProblem | Confinement {
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
  const location = locationProblem(uri, backend, env, policy);
  if (location) return location;

  const facts = RESTIC_ENV[backend];
  const sets = facts.own;
  for (const key of new Set(sets?.flat())) {
    if (env.get(key) === "") {
      return {
        kind: "secret_invalid",
        key,
        message: `Secret key ${key} is empty: restic reads an empty credential as none and would fall back ` +
          "to Backrest's own; give it a value, or leave the key out",
      };
    }
  }
  if (sets !== undefined && !sets.some((set) => set.every((k) => (env.get(k) ?? "") !== ""))) {
    if (policy.allowAmbientCredentials) return { masked: [] };
    const needs = sets.length === 0
      ? `restic's ${backend} backend can only use ${facts.ambient}`
      : `the Secret needs ${sets.map((s) => s.join(" + ")).join(", or ")}`;
    return {
      kind: "secret_invalid",
      key: sets[0]?.find((k) => !env.has(k)) ?? "RESTIC_REPOSITORY",
      message: `${needs}: without its own credentials restic in Backrest would use ${facts.ambient}; ` +
        "the OperatorConfig's spec.repositoryPolicy.allowAmbientCredentials decides",
    };
  }
  const masked = [...new Set([...facts.reads, ...EVERY_BACKEND_READS])].filter((k) => !env.has(k)).sort();
  return { masked };
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
