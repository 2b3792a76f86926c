/**
 * The BackrestVolSyncOperatorConfig resource. Rule: `parseOperatorConfig` accepts exactly what the CRD
 * admits and returns settings ready to use: defaults applied, the empty policy read as Disabled (as the
 * prototype does), `resyncPeriod` also given in milliseconds. A missing config means
 * {@link defaultOperatorConfigSpec}.
 */

import {
  Errors,
  isOneOf,
  isRecord,
  join,
  notAnObject,
  optNumber,
  readBoolean,
  readEnum,
  readNumber,
  readObject,
  readString,
  readStringArray,
} from "./_fields.ts";
import { type ParsedResource, parseResource } from "./_resource.ts";
import { type BackrestRef, readSecretRef } from "./binding.ts";
import { backrestURLProblem } from "./backrest_url.ts";
import { type Condition, parseConditions } from "./conditions.ts";
import { API_VERSION, OPERATOR_CONFIG_KIND, VOLSYNC_KINDS, type VolSyncKind } from "./constants.ts";
import { DURATION_PATTERN, parseDuration } from "./duration.ts";
import type { ObjectMeta } from "./meta.ts";
import { readRepoSettings, type RepoSettings } from "./repo_settings.ts";
import type { Parsed } from "./result.ts";

/** Values of `bindingGeneration.policy` (the wire also allows `""`, read as Disabled). */
export const BINDING_POLICIES = ["Disabled", "Annotated", "All"] as const;
/** An auto-binding policy. */
export type BindingPolicy = typeof BINDING_POLICIES[number];

/** Default `resyncPeriod`. */
export const DEFAULT_RESYNC_PERIOD = "10m";
/** Bounds of `resyncPeriod`, as the CRD's CEL rule states them. */
export const RESYNC_PERIOD_MIN_MS = 1000;
/** Upper bound of `resyncPeriod`. */
export const RESYNC_PERIOD_MAX_MS = 24 * 3_600_000;

/** restic's backends (a repository URI's prefix before `:`; anything else is a local path). */
export const BACKENDS = ["local", "sftp", "rest", "s3", "b2", "azure", "gs", "swift", "rclone"] as const;
/** A restic backend. */
export type Backend = typeof BACKENDS[number];
/**
 * Backends tenants may register when `repositoryPolicy.allowedBackends` is empty: the network backends
 * VolSync's restic mover reaches with credentials from its Secret. Not `local` (Backrest's own disk),
 * `sftp` (Backrest's SSH keys) or `rclone` (a program run inside Backrest).
 */
export const DEFAULT_ALLOWED_BACKENDS: readonly Backend[] = ["rest", "s3", "b2", "azure", "gs", "swift"];

/**
 * `spec.repositoryPolicy.taskLimits`: what one tenant's repo settings may ask of a Backrest that runs one task
 * at a time for every namespace. Durations are in milliseconds here, as written in the `*Text` fields.
 */
export interface TaskLimits {
  /** Prune, check and forget may be scheduled at most this often (`minScheduleInterval`). */
  minScheduleIntervalMs: number;
  /** Whether `commandPrefix` may raise restic above Backrest's default priority (CPU_HIGH, IO_BEST_EFFORT_HIGH). */
  allowRaisedPriority: boolean;
  /** The longest `--stuck-request-timeout` a repo may set (`maxStuckRequestTimeout`). */
  maxStuckRequestTimeoutMs: number;
  /** The longest `--retry-lock` a repo may set (`maxRetryLock`). */
  maxRetryLockMs: number;
  /** The most connections `-o <backend>.connections` may ask for. */
  maxConnections: number;
  /** The largest `checkPolicy.readDataSubsetPercent`. */
  maxReadDataSubsetPercent: number;
}

/** The task limits no OperatorConfig (or one without `taskLimits`) means; the README states them. */
export const DEFAULT_TASK_LIMITS: Readonly<TaskLimits> = {
  minScheduleIntervalMs: 24 * 3_600_000,
  allowRaisedPriority: false,
  maxStuckRequestTimeoutMs: 30 * 60_000,
  maxRetryLockMs: 30 * 60_000,
  maxConnections: 16,
  maxReadDataSubsetPercent: 10,
};

/** `spec.repositoryPolicy`: what tenants' repositories may make Backrest do. */
export interface RepositoryPolicy {
  /** Backends that may be registered (never empty after parsing: empty means the default list). */
  allowedBackends: readonly Backend[];
  /** Whether a repository without its own credentials may use Backrest's cloud identity. */
  allowAmbientCredentials: boolean;
  /** Whether a Binding with `spec.repo.adopt: true` may take over a repo no Binding applied. */
  allowAdoption: boolean;
  /** Whether a repository may be on a loopback, unspecified or link-local address (never a metadata service). */
  allowLocalAddresses: boolean;
  /** Bounds on the repo settings that cost every other namespace time in Backrest's one task loop. */
  taskLimits: TaskLimits;
}

/** The default policy (what no OperatorConfig, or one without `repositoryPolicy`, means). */
export function defaultRepositoryPolicy(): RepositoryPolicy {
  return {
    allowedBackends: DEFAULT_ALLOWED_BACKENDS,
    allowAmbientCredentials: false,
    allowAdoption: false,
    allowLocalAddresses: false,
    taskLimits: { ...DEFAULT_TASK_LIMITS },
  };
}

/** `spec.bindingGeneration`. */
export interface BindingGeneration {
  /** Which VolSync objects get a generated Binding; an empty wire value reads as Disabled. */
  policy: BindingPolicy;
  /** Empty means both kinds. */
  kinds: VolSyncKind[];
  /** Repo settings copied into generated Bindings' `spec.repo`; `{}` when absent. */
  defaultRepo: RepoSettings;
}

/** `spec`, after defaults. */
export interface OperatorConfigSpec {
  /** Kill switch: while true no Backrest call is made and no generated Binding is written. */
  paused: boolean;
  /** As written, e.g. `10m`. */
  resyncPeriod: string;
  /** `resyncPeriod` in milliseconds. */
  resyncPeriodMs: number;
  /** Empty admits every URL. */
  backrestURLAllowlist: string[];
  /** `url` is `""` when not configured. */
  defaultBackrest: BackrestRef;
  /** Auto-binding; policy Disabled when absent. */
  bindingGeneration: BindingGeneration;
  /** What tenants' repositories may make Backrest do; the safe defaults when absent. */
  repositoryPolicy: RepositoryPolicy;
}

/** `status`. */
export interface OperatorConfigStatus {
  /** The `metadata.generation` the status describes. */
  observedGeneration?: number;
  /** Ready: True (Accepted) when this spec is in force, False (InvalidSpec) when it is not. */
  conditions: Condition[];
}

/** An OperatorConfig. */
export interface OperatorConfig {
  /** Always {@link API_VERSION}. */
  apiVersion: typeof API_VERSION;
  /** Always {@link OPERATOR_CONFIG_KIND}. */
  kind: typeof OPERATOR_CONFIG_KIND;
  /** The object's metadata. */
  metadata: ObjectMeta;
  /** The settings, defaults applied. */
  spec: OperatorConfigSpec;
  /** What the operator last reported; `{ conditions: [] }` before it wrote any. */
  status: OperatorConfigStatus;
}

/** The settings in force when no OperatorConfig exists: not paused, auto-binding Disabled, resync 10m. */
export function defaultOperatorConfigSpec(): OperatorConfigSpec {
  return {
    paused: false,
    resyncPeriod: DEFAULT_RESYNC_PERIOD,
    resyncPeriodMs: 600_000,
    backrestURLAllowlist: [],
    defaultBackrest: { url: "" },
    bindingGeneration: { policy: "Disabled", kinds: [], defaultRepo: {} },
    repositoryPolicy: defaultRepositoryPolicy(),
  };
}

/** Parses `spec` of an OperatorConfig; `path` prefixes error paths. */
export function parseOperatorConfigSpec(v: unknown, path = "spec"): Parsed<OperatorConfigSpec> {
  if (!isRecord(v)) return notAnObject(v, path);
  const errors = new Errors();
  const paused = readBoolean(v, "paused", path, errors) ?? false;

  const resyncPeriod = readString(v, "resyncPeriod", path, errors, {
    maxLength: 32,
    pattern: DURATION_PATTERN,
    patternMessage: "must be a duration such as 30s, 10m or 1h30m",
  }) ?? (v.resyncPeriod === undefined || v.resyncPeriod === null ? DEFAULT_RESYNC_PERIOD : undefined);
  let resyncPeriodMs: number | undefined;
  if (resyncPeriod !== undefined) {
    resyncPeriodMs = parseDuration(resyncPeriod);
    if (
      resyncPeriodMs === undefined || resyncPeriodMs < RESYNC_PERIOD_MIN_MS ||
      resyncPeriodMs > RESYNC_PERIOD_MAX_MS
    ) {
      errors.add(join(path, "resyncPeriod"), "must be between 1s and 24h");
    }
  }

  const allowlist = readStringArray(v, "backrestURLAllowlist", path, errors, {
    minLength: 1,
    maxLength: 2048,
    maxItems: 64,
  }) ?? [];
  allowlist.forEach((prefix, i) => {
    const problem = backrestURLProblem(prefix);
    if (problem !== undefined) errors.add(`${join(path, "backrestURLAllowlist")}[${i}]`, problem);
  });

  const defaultBackrest: BackrestRef = { url: "" };
  const db = readObject(v, "defaultBackrest", path, errors);
  if (db !== undefined) {
    const at = join(path, "defaultBackrest");
    const url = readString(db, "url", at, errors, { maxLength: 2048 }) ?? "";
    const problem = url === "" ? undefined : backrestURLProblem(url);
    if (problem !== undefined) {
      errors.add(join(at, "url"), `must be empty or ${problem.replace(/^must be /, "")}`);
    }
    defaultBackrest.url = url;
    const authRef = readSecretRef(db, "authRef", at, errors);
    if (authRef !== undefined) defaultBackrest.authRef = authRef;
  }

  const bindingGeneration: BindingGeneration = { policy: "Disabled", kinds: [], defaultRepo: {} };
  const bg = readObject(v, "bindingGeneration", path, errors);
  if (bg !== undefined) {
    const at = join(path, "bindingGeneration");
    bindingGeneration.policy = readEnum(bg, "policy", at, errors, ["", ...BINDING_POLICIES]) || "Disabled";
    const kinds = bg.kinds;
    if (kinds !== undefined && kinds !== null) {
      if (!Array.isArray(kinds)) {
        errors.add(join(at, "kinds"), "must be an array");
      } else if (kinds.length > VOLSYNC_KINDS.length) {
        errors.add(join(at, "kinds"), `must have at most ${VOLSYNC_KINDS.length} items`);
      } else {
        kinds.forEach((k: unknown, i: number) => {
          if (isOneOf(VOLSYNC_KINDS, k)) {
            bindingGeneration.kinds.push(k);
          } else {
            errors.add(
              `${join(at, "kinds")}[${i}]`,
              `must be one of ${VOLSYNC_KINDS.map((x) => `"${x}"`).join(", ")}`,
            );
          }
        });
      }
    }
    const repo = readObject(bg, "defaultRepo", at, errors);
    if (repo !== undefined) {
      bindingGeneration.defaultRepo = readRepoSettings(repo, join(at, "defaultRepo"), errors);
    }
  }

  const repositoryPolicy = defaultRepositoryPolicy();
  const rp = readObject(v, "repositoryPolicy", path, errors);
  if (rp !== undefined) {
    const at = join(path, "repositoryPolicy");
    const backends = readStringArray(rp, "allowedBackends", at, errors, { maxItems: BACKENDS.length });
    const chosen: Backend[] = [];
    backends?.forEach((b, i) => {
      if (!isOneOf(BACKENDS, b)) {
        errors.add(
          `${join(at, "allowedBackends")}[${i}]`,
          `must be one of ${BACKENDS.map((x) => `"${x}"`).join(", ")}`,
        );
      } else if (!chosen.includes(b)) chosen.push(b);
    });
    if (chosen.length > 0) repositoryPolicy.allowedBackends = chosen;
    repositoryPolicy.allowAmbientCredentials = readBoolean(rp, "allowAmbientCredentials", at, errors) ??
      false;
    repositoryPolicy.allowAdoption = readBoolean(rp, "allowAdoption", at, errors) ?? false;
    repositoryPolicy.allowLocalAddresses = readBoolean(rp, "allowLocalAddresses", at, errors) ?? false;
    const tl = readObject(rp, "taskLimits", at, errors);
    if (tl !== undefined) repositoryPolicy.taskLimits = readTaskLimits(tl, join(at, "taskLimits"), errors);
  }

  if (!errors.empty || resyncPeriod === undefined || resyncPeriodMs === undefined) {
    return { ok: false, errors: errors.list };
  }
  return {
    ok: true,
    value: {
      paused,
      resyncPeriod,
      resyncPeriodMs,
      backrestURLAllowlist: allowlist,
      defaultBackrest,
      bindingGeneration,
      repositoryPolicy,
    },
  };
}

/** Bounds of the task limits' durations, as the CRD's CEL rules state them. */
export const TASK_LIMIT_DURATION_MAX_MS = 365 * 24 * 3_600_000;

/** `taskLimits`, each field defaulted from {@linkcode DEFAULT_TASK_LIMITS}. */
function readTaskLimits(v: Record<string, unknown>, path: string, errors: Errors): TaskLimits {
  const out = { ...DEFAULT_TASK_LIMITS };
  const duration = (key: string, fallback: number): number => {
    const text = readString(v, key, path, errors, {
      maxLength: 32,
      pattern: DURATION_PATTERN,
      patternMessage: "must be a duration such as 30s, 10m or 1h30m",
    });
    if (text === undefined) return fallback;
    const ms = parseDuration(text);
    if (ms === undefined || ms > TASK_LIMIT_DURATION_MAX_MS) {
      errors.add(join(path, key), "must be at most 8760h");
      return fallback;
    }
    return ms;
  };
  out.minScheduleIntervalMs = duration("minScheduleInterval", out.minScheduleIntervalMs);
  out.maxStuckRequestTimeoutMs = duration("maxStuckRequestTimeout", out.maxStuckRequestTimeoutMs);
  out.maxRetryLockMs = duration("maxRetryLock", out.maxRetryLockMs);
  out.allowRaisedPriority = readBoolean(v, "allowRaisedPriority", path, errors) ?? out.allowRaisedPriority;
  out.maxConnections = readNumber(v, "maxConnections", path, errors, {
    integer: true,
    minimum: 1,
    maximum: 1000,
  }) ?? out.maxConnections;
  out.maxReadDataSubsetPercent = readNumber(v, "maxReadDataSubsetPercent", path, errors, {
    minimum: 0,
    maximum: 100,
  }) ?? out.maxReadDataSubsetPercent;
  return out;
}

/** Reads `status` leniently. */
export function parseOperatorConfigStatus(v: unknown): OperatorConfigStatus {
  if (!isRecord(v)) return { conditions: [] };
  const out: OperatorConfigStatus = { conditions: parseConditions(v.conditions) };
  const generation = optNumber(v.observedGeneration);
  if (generation !== undefined) out.observedGeneration = generation;
  return out;
}

/** Parses a whole OperatorConfig as the apiserver returns it. */
export function parseOperatorConfig(v: unknown): ParsedResource<OperatorConfig> {
  return parseResource(
    v,
    OPERATOR_CONFIG_KIND,
    (spec) => parseOperatorConfigSpec(spec),
    parseOperatorConfigStatus,
  );
}

/** Whether `kind` is eligible under `bindingGeneration.kinds` (empty admits both). */
export function kindAllowed(generation: BindingGeneration, kind: VolSyncKind): boolean {
  return generation.kinds.length === 0 || generation.kinds.includes(kind);
}
