/**
 * The pure mapping from a VolSync repository Secret plus a Binding's repo settings to the Backrest `Repo`
 * the operator wants, with a stable hash of everything that would be sent. Rules: secret values leave this
 * module only inside `Sensitive`; errors name keys, never values; the hash is one-way and keyed (status_hash.ts).
 * `autoInitialize` is never sent to Backrest (v1.14.1 rejects AddRepo with `auto_initialize=true`: it
 * demands either a guid or auto-initialize, and AddRepo always derives a guid); it only tells the
 * reconciler whether it may let AddRepo create a repository that CheckRepoExists reported missing.
 * Everything here is tenant input headed for restic in a shared Backrest: the flags pass only through
 * lib/api/restic_flags.ts's allowlist, the URI and env through repository_policy.ts.
 */

import { type StatusHasher, stretchedHasher } from "./status_hash.ts";
import { create, fromJson, type JsonValue, toBinary } from "@bufbuild/protobuf";
import {
  type CheckPolicy,
  CheckPolicySchema,
  type CommandPrefix,
  CommandPrefixSchema,
  type ForgetPolicy,
  ForgetPolicySchema,
  type PrunePolicy,
  PrunePolicySchema,
  type Repo,
  RepoSchema,
} from "../../gen/v1/config_pb.ts";
import type { RepoSpec } from "../api/binding.ts";
import type { VolSyncKind } from "../api/constants.ts";
import { defaultRepoId, repoIdProblem } from "../api/repo_id.ts";
import { normalizeExtraFlags } from "../api/restic_flags.ts";
import { Sensitive } from "../api/sensitive.ts";
import {
  backrestWouldExpand,
  confineRepository,
  DEFAULT_REPOSITORY_POLICY,
  expansionProblem,
  PASSED_ENV_KEYS,
  type RepositoryPolicy,
} from "./repository_policy.ts";
import { taskLimitProblem } from "./task_limits.ts";

/** Why a mapping failed; `key` names the Secret key or setting involved, never a value. */
export type RepoMappingErrorKind =
  /** The repository Secret lacks a key or holds an unusable key or value. */
  | "secret_invalid"
  /** The Secret or VolSync object asks for something Backrest cannot be given (files, a custom CA). */
  | "unsupported"
  /** The Binding's repo settings (id, flags, policies) are invalid. */
  | "spec_invalid"
  /** The OperatorConfig's repository policy does not admit the repository's backend. */
  | "not_allowed"
  /** The repository, or a URL its Secret names, is Backrest's own pod or node, or a metadata service. */
  | "location_not_allowed"
  /** A repo setting asks more of the shared Backrest than the OperatorConfig's task limits allow. */
  | "settings_not_allowed";

/** The mapping's only error: terminal until the Secret or the Binding changes. */
export class RepoMappingError extends Error {
  /** Always `"RepoMappingError"`. */
  override readonly name = "RepoMappingError";
  /** What is wrong, which decides the Binding's reason. */
  readonly kind: RepoMappingErrorKind;
  /** The Secret key or setting the error is about. */
  readonly key: string | undefined;

  /** `message` names keys and settings only, never a Secret value; `cause` is a parser's error, if any. */
  constructor(kind: RepoMappingErrorKind, message: string, key?: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.kind = kind;
    this.key = key;
  }
}

/**
 * Repo settings from a Binding (or the operator config's default repo): lib/api's parsed `spec.repo`, of
 * which the mapping reads the fields below. The four policies are Backrest's proto3 JSON (plain objects) and
 * are parsed here with the generated schemas, so anything Backrest would not understand is `spec_invalid`.
 */
export type DesiredRepoSettings = Pick<
  RepoSpec,
  | "idOverride"
  | "extraFlags"
  | "envAllowlist"
  | "autoUnlock"
  | "autoInitialize"
  | "prunePolicy"
  | "checkPolicy"
  | "forgetPolicy"
  | "commandPrefix"
>;

/** Everything {@linkcode desiredRepo} maps: the VolSync object's identity, its Secret and the settings. */
export interface DesiredRepoInput {
  /** The VolSync object's namespace, kind and name (the default repo id is built from them). */
  namespace: string;
  /** The VolSync object's kind. */
  kind: VolSyncKind;
  /** The VolSync object's name. */
  name: string;
  /** The repository Secret's data, decoded from base64 (raw bytes). */
  secretData: Record<string, Uint8Array>;
  /** The Binding's repo settings; absent: all defaults. */
  settings?: DesiredRepoSettings;
  /** True when the VolSync object sets `spec.restic.customCA` (restic would need it as a file). */
  customCA?: boolean;
  /** What the OperatorConfig admits (default {@linkcode DEFAULT_REPOSITORY_POLICY}). */
  policy?: RepositoryPolicy;
  /** More inputs for the hash (e.g. the Backrest URL, the auth Secret's fingerprint); values are not kept. */
  hashInputs?: Record<string, string>;
  /** How the hashes are made (default: stretched, the format before keys; the operator passes its keyed one). */
  hasher?: StatusHasher;
}

/**
 * One environment variable for restic: a Secret key among {@linkcode PASSED_ENV_KEYS} with its value (no line
 * break or NUL), or a variable the repository's backend reads that the Secret does not supply, sent empty
 * (repository_policy.ts).
 */
export type RepoEnv = RepoFields<Sensitive>["env"][number];

/**
 * The most bytes one value (the URI, the password, one env value) may hold: well above what real credentials
 * need (an AWS session token is under 4 KiB, an Azure SAS or an OpenStack token well under 1 KiB). Every
 * value sent lives in Backrest's config, which every GetConfig returns and every AddRepo rewrites.
 */
export const MAX_VALUE_BYTES = 8192;
/** The most bytes a whole repo (id, URI, password, env entries and flags together) may hold. */
export const MAX_REPO_BYTES = 32768;

/**
 * The fields of Backrest's `Repo` the operator sends, with secret values as `S`: `string` only while they
 * are hashed and sent, `Sensitive` everywhere else. {@linkcode repoMessage} turns them into the message, in
 * one place for both the status hash and the request, so no field reaches one and not the other. The four
 * policies are Backrest's generated messages (gen/v1/config_pb.ts), absent when not declared; they are left
 * out of `deno doc`, which counts protobuf-es's `Message` type as private.
 */
export interface RepoFields<S> {
  /** The repo id in Backrest (see {@linkcode repoId}). */
  id: string;
  /** `RESTIC_REPOSITORY` from the Secret: the repository's location, which may embed credentials. */
  uri: S;
  /** `RESTIC_PASSWORD` from the Secret, byte for byte (line breaks kept). */
  password: S;
  /** Sorted by name: the Secret's keys and the masked variables (empty). */
  env: { name: string; value: S }[];
  /** In their canonical spelling, sorted (see lib/api/restic_flags.ts). */
  flags: string[];
  /** Whether Backrest removes stale restic locks before forget and prune. */
  autoUnlock: boolean;
  /**
   * Backrest's `PrunePolicy`, parsed from the settings' proto3 JSON.
   * @ignore
   */
  prunePolicy?: PrunePolicy;
  /**
   * Backrest's `CheckPolicy`, parsed from the settings' proto3 JSON.
   * @ignore
   */
  checkPolicy?: CheckPolicy;
  /**
   * Backrest's `ForgetPolicy`, parsed from the settings' proto3 JSON.
   * @ignore
   */
  forgetPolicy?: ForgetPolicy;
  /**
   * Backrest's `CommandPrefix`, parsed from the settings' proto3 JSON.
   * @ignore
   */
  commandPrefix?: CommandPrefix;
}

/**
 * Backrest's `Repo` message for `f`. `auto_initialize` stays false: v1.14.1 rejects it on AddRepo (see the
 * module rules).
 * @ignore
 */
export function repoMessage(f: RepoFields<string>): Repo {
  return create(RepoSchema, {
    id: f.id,
    uri: f.uri,
    password: f.password,
    env: f.env.map((e) => `${e.name}=${e.value}`),
    flags: f.flags,
    autoUnlock: f.autoUnlock,
    ...(f.prunePolicy ? { prunePolicy: f.prunePolicy } : {}),
    ...(f.checkPolicy ? { checkPolicy: f.checkPolicy } : {}),
    ...(f.forgetPolicy ? { forgetPolicy: f.forgetPolicy } : {}),
    ...(f.commandPrefix ? { commandPrefix: f.commandPrefix } : {}),
  });
}

/** The Repo the operator wants in Backrest: what is sent (secret parts `Sensitive`), and what decides it. */
export interface DesiredRepo extends RepoFields<Sensitive> {
  /** Secret keys left out of `env` (not among the keys VolSync passes, or naming Backrest's files), sorted. */
  ignoredKeys: string[];
  /** Whether AddRepo may create a repository that does not exist yet (the Binding's autoInitialize). */
  mayInitialize: boolean;
  /** The hash status records (status_hash.ts); changes whenever anything above or any hash input changes. */
  hash: string;
  /** Whether `stored` (status, in any build's format) is `hash` of these very inputs. */
  hashMatches(stored: string | undefined): Promise<boolean>;
  /**
   * The hash of the repository's location alone (the URI): the same while only credentials rotate, so a
   * Binding that applied this location before knows the repository exists without asking Backrest.
   * Computed on the first call, then remembered.
   */
  repositoryHash(): Promise<string>;
  /** Whether `stored` (status, in any build's format) is the hash of this location. */
  repositoryHashMatches(stored: string | undefined): Promise<boolean>;
}

const decoder = new TextDecoder("utf-8", { fatal: true });

/**
 * The repo id Backrest holds for a VolSync object: lib/api's default id unless overridden; an id Backrest's
 * rules refuse (lib/api/repo_id.ts) is a `spec_invalid` error.
 */
export function repoId(namespace: string, kind: VolSyncKind, name: string, idOverride?: string): string {
  const id = idOverride ? idOverride : defaultRepoId(namespace, kind, name);
  const problem = repoIdProblem(id);
  if (problem) {
    throw new RepoMappingError("spec_invalid", `repo id ${JSON.stringify(id)} ${problem}`, "idOverride");
  }
  return id;
}

function decode(key: string, bytes: Uint8Array): string {
  try {
    return decoder.decode(bytes);
  } catch {
    throw new RepoMappingError("secret_invalid", `Secret key ${key} is not valid UTF-8`, key);
  }
}

/** `value` as a JSON value, or undefined if it holds anything JSON cannot (functions, bigints, cycles...). */
function asJson(value: unknown, depth = 0): JsonValue | undefined {
  if (depth > 32) return undefined;
  if (value === null || typeof value === "string" || typeof value === "boolean") return value;
  if (typeof value === "number") return Number.isFinite(value) ? value : undefined;
  if (Array.isArray(value)) {
    const out: JsonValue[] = [];
    for (const v of value) {
      const j = asJson(v, depth + 1);
      if (j === undefined) return undefined;
      out.push(j);
    }
    return out;
  }
  if (typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype) {
    const out: { [k: string]: JsonValue } = {};
    for (const [k, v] of Object.entries(value)) {
      if (v === undefined) continue;
      const j = asJson(v, depth + 1);
      if (j === undefined) return undefined;
      out[k] = j;
    }
    return out;
  }
  return undefined;
}

function policy<T>(key: string, value: unknown, parse: (json: JsonValue) => T): T | undefined {
  if (value === undefined || value === null) return undefined;
  const json = asJson(value);
  if (json === undefined) throw new RepoMappingError("spec_invalid", `${key} is not a JSON object`, key);
  try {
    return parse(json);
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    throw new RepoMappingError("spec_invalid", `${key} is not a valid Backrest ${key}: ${why}`, key, e);
  }
}

/** Maps a VolSync repository Secret and repo settings to the desired Backrest repo; throws `RepoMappingError`. */
export async function desiredRepo(input: DesiredRepoInput): Promise<DesiredRepo> {
  const settings = input.settings ?? {};
  const id = repoId(input.namespace, input.kind, input.name, settings.idOverride);
  if (input.customCA) {
    throw new RepoMappingError(
      "unsupported",
      "spec.restic.customCA is set: restic in Backrest needs the CA as a file in Backrest's pod, which the operator cannot place",
      "customCA",
    );
  }

  const data = input.secretData;
  const required = (key: string, allowLineBreaks: boolean): string => {
    const bytes = data[key];
    if (bytes === undefined) throw new RepoMappingError("secret_invalid", `Secret has no key ${key}`, key);
    const value = decode(key, bytes);
    if (value.length === 0) throw new RepoMappingError("secret_invalid", `Secret key ${key} is empty`, key);
    if (value.includes("\0") || (!allowLineBreaks && /[\r\n]/.test(value))) {
      throw new RepoMappingError("secret_invalid", `Secret key ${key} contains a line break or NUL`, key);
    }
    return value;
  };
  const uri = required("RESTIC_REPOSITORY", false);
  // VolSync hands the password to restic byte for byte, so a trailing newline (from `echo`) may be part of
  // the real password: keep line breaks; NUL cannot pass through an environment variable.
  const password = required("RESTIC_PASSWORD", true);

  // Env: only the keys VolSync passes (see repository_policy.ts), narrowed by the allowlist; the others
  // are left out and named, so the user sees what Backrest did not get.
  const allow = settings.envAllowlist && settings.envAllowlist.length > 0
    ? new Set(settings.envAllowlist)
    : undefined;
  const env: { name: string; value: string }[] = [];
  const ignoredKeys: string[] = [];
  for (const key of Object.keys(data).sort()) {
    if (key === "RESTIC_REPOSITORY" || key === "RESTIC_PASSWORD") continue;
    if (allow && !allow.has(key)) continue;
    if (key === "GOOGLE_APPLICATION_CREDENTIALS") {
      throw new RepoMappingError(
        "unsupported",
        "Secret key GOOGLE_APPLICATION_CREDENTIALS holds file contents, but restic in Backrest needs a path to a file in Backrest's pod",
        key,
      );
    }
    if (!PASSED_ENV_KEYS.has(key)) {
      ignoredKeys.push(key);
      continue;
    }
    const value = decode(key, data[key]!);
    if (/[\r\n\0]/.test(value)) {
      throw new RepoMappingError("secret_invalid", `Secret key ${key} contains a line break or NUL`, key);
    }
    if (backrestWouldExpand(value)) {
      const p = expansionProblem(key);
      throw new RepoMappingError("secret_invalid", p.message, key);
    }
    env.push({ name: key, value });
  }
  const policyInForce = input.policy ?? DEFAULT_REPOSITORY_POLICY;
  const confined = confineRepository(uri, new Map(env.map((e) => [e.name, e.value])), policyInForce);
  if ("kind" in confined) {
    const kind = confined.kind === "backend_not_allowed"
      ? "not_allowed"
      : confined.kind === "location_not_allowed"
      ? "location_not_allowed"
      : "secret_invalid";
    throw new RepoMappingError(kind, confined.message, confined.key);
  }
  for (const name of confined.masked) env.push({ name, value: "" });
  env.sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

  const normalized = normalizeExtraFlags(settings.extraFlags ?? []);
  if (!normalized.ok) {
    throw new RepoMappingError("spec_invalid", `extraFlags: ${normalized.problem}`, "extraFlags");
  }
  const flags = normalized.flags;
  checkSize(id, uri, password, env, flags);

  const prunePolicy = policy("prunePolicy", settings.prunePolicy, (j) => fromJson(PrunePolicySchema, j));
  const checkPolicy = policy("checkPolicy", settings.checkPolicy, (j) => fromJson(CheckPolicySchema, j));
  const forgetPolicy = policy("forgetPolicy", settings.forgetPolicy, (j) => fromJson(ForgetPolicySchema, j));
  const commandPrefix = policy(
    "commandPrefix",
    settings.commandPrefix,
    (j) => fromJson(CommandPrefixSchema, j),
  );
  const limited = taskLimitProblem(
    { flags, prunePolicy, checkPolicy, forgetPolicy, commandPrefix },
    policyInForce.taskLimits,
  );
  if (limited) throw new RepoMappingError("settings_not_allowed", limited.message, limited.field);
  const autoUnlock = settings.autoUnlock ?? false;
  const mayInitialize = settings.autoInitialize ?? false;

  const fields: RepoFields<string> = {
    id,
    uri,
    password,
    env,
    flags,
    autoUnlock,
    ...(prunePolicy ? { prunePolicy } : {}),
    ...(checkPolicy ? { checkPolicy } : {}),
    ...(forgetPolicy ? { forgetPolicy } : {}),
    ...(commandPrefix ? { commandPrefix } : {}),
  };
  // The hash covers the exact Repo message that would be sent, plus what is not sent but decides what
  // the reconciler does (mayInitialize) and the caller's extra inputs.
  const hasher = input.hasher ?? STRETCHED;
  const inputs = hashInput(toBinary(RepoSchema, repoMessage(fields)), mayInitialize, input.hashInputs ?? {});
  const hash = await hasher.hash(inputs);
  // Made only when asked: most reconciles decide without it (an unchanged repo, a reported sync).
  let location: Uint8Array | undefined;
  const locationInput = () =>
    location ??= hashInput(new TextEncoder().encode(uri), false, { part: "repository location" });
  let locationHash: Promise<string> | undefined;
  const repositoryHash = () => locationHash ??= hasher.hash(locationInput());

  return {
    ...fields,
    uri: new Sensitive(uri),
    password: new Sensitive(password),
    env: env.map((e) => ({ name: e.name, value: new Sensitive(e.value) })),
    ignoredKeys,
    mayInitialize,
    hash,
    hashMatches: async (stored) =>
      stored !== undefined && (stored === hash || await hasher.matches(stored, inputs)),
    repositoryHash,
    repositoryHashMatches: async (stored) =>
      stored !== undefined &&
      (stored === await repositoryHash() || await hasher.matches(stored, locationInput())),
  };
}

const STRETCHED = stretchedHasher();

/** Refuses a repo whose values would weigh on Backrest's config beyond {@linkcode MAX_VALUE_BYTES} / {@linkcode MAX_REPO_BYTES}. */
function checkSize(
  id: string,
  uri: string,
  password: string,
  env: readonly { name: string; value: string }[],
  flags: readonly string[],
): void {
  const enc = new TextEncoder();
  let total = enc.encode(id).length;
  const values: [string, string][] = [
    ["RESTIC_REPOSITORY", uri],
    ["RESTIC_PASSWORD", password],
    ...env.map((e): [string, string] => [e.name, e.value]),
  ];
  for (const [key, value] of values) {
    const bytes = enc.encode(value).length;
    if (bytes > MAX_VALUE_BYTES) {
      throw new RepoMappingError(
        "secret_invalid",
        `Secret key ${key} holds ${bytes} bytes; at most ${MAX_VALUE_BYTES} are sent to Backrest for one value`,
        key,
      );
    }
    total += bytes + enc.encode(key).length + 1;
  }
  for (const f of flags) total += enc.encode(f).length;
  if (total > MAX_REPO_BYTES) {
    throw new RepoMappingError(
      "secret_invalid",
      `the repository Secret's values add up to ${total} bytes; at most ${MAX_REPO_BYTES} are sent to ` +
        "Backrest for one repo",
      "RESTIC_REPOSITORY",
    );
  }
}

/**
 * The input of a status hash: the Repo message's bytes, whether AddRepo may initialize, and the caller's
 * extra inputs, length-prefixed so no two different input lists encode alike.
 */
export function hashInput(
  repo: Uint8Array,
  mayInitialize: boolean,
  extra: Record<string, string>,
): Uint8Array {
  const enc = new TextEncoder();
  const parts: Uint8Array[] = [repo, enc.encode(mayInitialize ? "1" : "0")];
  for (const key of Object.keys(extra).sort()) parts.push(enc.encode(key), enc.encode(extra[key]!));
  let size = 0;
  for (const p of parts) size += 4 + p.length;
  const buf = new Uint8Array(size);
  const view = new DataView(buf.buffer);
  let at = 0;
  for (const p of parts) {
    view.setUint32(at, p.length);
    buf.set(p, at + 4);
    at += 4 + p.length;
  }
  return buf;
}
