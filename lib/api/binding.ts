/**
 * The BackrestVolSyncBinding resource. Rule: `parseBinding` accepts exactly what the CRD admits (and
 * applies the CRD's defaults), so the reconciler can rely on the types; the spec is strict, the status is
 * read leniently because only the operator (or the Go prototype before it) writes it.
 */

import {
  Errors,
  isRecord,
  join,
  type JsonObject,
  notAnObject,
  optNumber,
  optString,
  readEnum,
  readObject,
  readString,
} from "./_fields.ts";
import { type ParsedResource, parseResource } from "./_resource.ts";
import { backrestURLProblem } from "./backrest_url.ts";
import { type Condition, parseConditions } from "./conditions.ts";
import { API_VERSION, BINDING_KIND, VOLSYNC_KINDS, type VolSyncKind } from "./constants.ts";
import type { ObjectMeta } from "./meta.ts";
import { readRepoSettings, type RepoSettings } from "./repo_settings.ts";
import { repoIdProblem } from "./repo_id.ts";
import type { Parsed } from "./result.ts";

/** Values of `spec.deletionPolicy`. */
export const DELETION_POLICIES = ["Retain", "Remove"] as const;
/** What happens to the Backrest entry when the Binding is deleted. */
export type DeletionPolicy = typeof DELETION_POLICIES[number];

/** A Secret in the Binding's namespace. An empty name means "none". */
export interface SecretRef {
  /** The Secret's name; `""` when none is named. */
  name: string;
}

/** `spec.backrest` (also the OperatorConfig's `defaultBackrest`). */
export interface BackrestRef {
  /** Base URL of the Backrest API as written (see `canonicalBackrestURL` for the form the operator calls). */
  url: string;
  /** Secret with Backrest credentials (`token`, or `username` and `password`); absent: none of its own. */
  authRef?: SecretRef;
}

/** `spec.source`. */
export interface SourceRef {
  /** Kind of the VolSync object. */
  kind: VolSyncKind;
  /** Name of the VolSync object, in the Binding's namespace. */
  name: string;
}

/** `spec.repo`. */
export interface RepoSpec extends RepoSettings {
  /** Empty or absent: the default id (see {@link defaultRepoId}). */
  idOverride?: string;
}

/**
 * The defaults the Binding CRD's schema applies: `spec.deletionPolicy`, and inside a `spec.repo` that is
 * present, its two switches. One source for the parser and for generated Bindings (which must equal what
 * the apiserver stores, or each write would be a change); a test holds the CRD to them.
 */
export const BINDING_DEFAULTS = {
  deletionPolicy: "Retain",
  repo: { autoUnlock: false, triggerTasksOnSnapshot: false },
} as const satisfies { deletionPolicy: DeletionPolicy; repo: Partial<RepoSpec> };

/** `spec`, after the CRD's defaults (`repo` is `{}` when absent, `deletionPolicy` Retain). */
export interface BindingSpec {
  /** The Backrest instance that receives the repo. */
  backrest: BackrestRef;
  /** The VolSync object whose restic repository is registered. */
  source: SourceRef;
  /** How the repo appears in Backrest; `{}` when absent. */
  repo: RepoSpec;
  /** What happens to the Backrest entry when the Binding is deleted; Retain when absent. */
  deletionPolicy: DeletionPolicy;
}

/** `status`. Every field but `conditions` is absent until the operator sets it. */
export interface BindingStatus {
  /** The `metadata.generation` the status describes. */
  observedGeneration?: number;
  /** Ready, SourceResolved, SecretResolved and Applied; `[]` before the first report. */
  conditions: Condition[];
  /** Name of the VolSync repository Secret last resolved (`spec.restic.repository`). */
  resolvedRepositorySecret?: string;
  /** The repo id in Backrest, set once the repo is applied. */
  repoId?: string;
  /** The canonical Backrest URL the repo was last applied to. */
  backrestURL?: string;
  /** `DesiredRepo.hash` of the last successful apply: while it matches (and Ready holds), no new apply. */
  lastAppliedInputHash?: string;
  /**
   * A repository location this Binding applied (`DesiredRepo.repositoryHash`): it exists, no need to ask.
   * Recorded by an apply while the VolSync object reports no completed sync (which says as much).
   */
  appliedRepositoryHash?: string;
  /** When the repo was last applied to Backrest (RFC 3339). */
  lastApplyTime?: string;
  /** sha256 hex of the last failure's text (`errorHash`), which status does not carry; gone once Ready. */
  lastErrorHash?: string;
  /** `SyncMarker.marker` of the newest completed sync seen (ReplicationSource, `triggerTasksOnSnapshot`). */
  lastSnapshotMarker?: string;
  /** VolSync's `lastSyncTime` belonging to `lastSnapshotMarker`. */
  lastSnapshotSyncTime?: string;
  /** Marker of the newest sync whose repo tasks (index snapshots, stats) succeeded: once per sync. */
  lastIndexedSnapshotMarker?: string;
  /** VolSync's `lastSyncTime` belonging to `lastIndexedSnapshotMarker`. */
  lastIndexedSnapshotSyncTime?: string;
  /** When repo tasks were last triggered, successfully or not (RFC 3339). */
  lastRepoTaskTriggerTime?: string;
  /** sha256 hex of Backrest's text for the last failed repo task (withheld); removed when tasks succeed. */
  lastRepoTaskErrorHash?: string;
}

/** A Binding. */
export interface Binding {
  /** Always {@link API_VERSION}. */
  apiVersion: typeof API_VERSION;
  /** Always {@link BINDING_KIND}. */
  kind: typeof BINDING_KIND;
  /** The object's metadata. */
  metadata: ObjectMeta;
  /** The desired state, defaults applied. */
  spec: BindingSpec;
  /** What the operator last reported; `{ conditions: [] }` before it wrote any. */
  status: BindingStatus;
}

/** Reads `authRef` of a `backrest`-shaped object. */
export function readSecretRef(
  obj: JsonObject,
  key: string,
  path: string,
  errors: Errors,
): SecretRef | undefined {
  const ref = readObject(obj, key, path, errors);
  if (ref === undefined) return undefined;
  return { name: readString(ref, "name", join(path, key), errors, { maxLength: 253 }) ?? "" };
}

/** Parses `spec` of a Binding; `path` prefixes error paths. */
export function parseBindingSpec(v: unknown, path = "spec"): Parsed<BindingSpec> {
  if (!isRecord(v)) return notAnObject(v, path);
  const errors = new Errors();
  const backrest = readObject(v, "backrest", path, errors, { required: true });
  let url: string | undefined;
  let authRef: SecretRef | undefined;
  if (backrest !== undefined) {
    const at = join(path, "backrest");
    url = readString(backrest, "url", at, errors, { required: true, minLength: 1, maxLength: 2048 });
    const problem = url === undefined ? undefined : backrestURLProblem(url);
    if (problem !== undefined) errors.add(join(at, "url"), problem);
    authRef = readSecretRef(backrest, "authRef", at, errors);
  }
  const source = readObject(v, "source", path, errors, { required: true });
  let kind: VolSyncKind | undefined;
  let name: string | undefined;
  if (source !== undefined) {
    const at = join(path, "source");
    kind = readEnum(source, "kind", at, errors, VOLSYNC_KINDS, { required: true });
    name = readString(source, "name", at, errors, { required: true, minLength: 1, maxLength: 253 });
  }
  const repoObj = readObject(v, "repo", path, errors);
  const repo: RepoSpec = {};
  if (repoObj !== undefined) {
    const at = join(path, "repo");
    const id = readString(repoObj, "idOverride", at, errors, { maxLength: 253 });
    if (id !== undefined && id !== "") {
      const problem = repoIdProblem(id);
      if (problem !== undefined) errors.add(join(at, "idOverride"), problem);
    }
    if (id !== undefined) repo.idOverride = id;
    Object.assign(repo, readRepoSettings(repoObj, at, errors));
  }
  const deletionPolicy = readEnum(v, "deletionPolicy", path, errors, DELETION_POLICIES) ??
    BINDING_DEFAULTS.deletionPolicy;
  if (!errors.empty || url === undefined || kind === undefined || name === undefined) {
    return { ok: false, errors: errors.list };
  }
  const backrestRef: BackrestRef = { url };
  if (authRef !== undefined) backrestRef.authRef = authRef;
  return { ok: true, value: { backrest: backrestRef, source: { kind, name }, repo, deletionPolicy } };
}

/** Reads `status` leniently: fields of the wrong type are dropped. */
export function parseBindingStatus(v: unknown): BindingStatus {
  if (!isRecord(v)) return { conditions: [] };
  const out: BindingStatus = { conditions: parseConditions(v.conditions) };
  const generation = optNumber(v.observedGeneration);
  if (generation !== undefined) out.observedGeneration = generation;
  for (
    const key of [
      "resolvedRepositorySecret",
      "repoId",
      "backrestURL",
      "lastAppliedInputHash",
      "appliedRepositoryHash",
      "lastApplyTime",
      "lastErrorHash",
      "lastSnapshotMarker",
      "lastSnapshotSyncTime",
      "lastIndexedSnapshotMarker",
      "lastIndexedSnapshotSyncTime",
      "lastRepoTaskTriggerTime",
      "lastRepoTaskErrorHash",
    ] as const
  ) {
    const s = optString(v[key]);
    if (s !== undefined) out[key] = s;
  }
  return out;
}

/** Parses a whole Binding as the apiserver returns it. */
export function parseBinding(v: unknown): ParsedResource<Binding> {
  return parseResource(v, BINDING_KIND, (spec) => parseBindingSpec(spec), parseBindingStatus);
}
