/**
 * Read-only accessors for VolSync ReplicationSource / ReplicationDestination objects. Rule: only what the
 * operator uses is read, leniently (VolSync's own CRD validated the object); the only hard errors are a
 * missing name or a kind that contradicts the resource it came from.
 */

import { isRecord, notAnObject, optString } from "./_fields.ts";
import { VOLSYNC_GROUP, VOLSYNC_KINDS, VOLSYNC_VERSION, type VolSyncKind } from "./constants.ts";
import { type ObjectMeta, parseObjectMeta } from "./meta.ts";
import type { Parsed } from "./result.ts";

/** `spec.restic.customCA`. */
export interface CustomCA {
  /** Secret holding the CA bundle, in the object's namespace. */
  secretName?: string;
  /** ConfigMap holding the CA bundle, in the object's namespace. */
  configMapName?: string;
  /** Key of the CA bundle in that Secret or ConfigMap. */
  key?: string;
}

/** The parts of `spec.restic` the operator reads. */
export interface ResticMover {
  /** Name of the repository Secret in the object's namespace; `undefined` when unset or empty. */
  repository?: string;
  /** The CA restic should trust for the repository; see {@link hasCustomCA}. */
  customCA?: CustomCA;
}

/** `status.latestMoverStatus`. */
export interface MoverStatus {
  /** `Successful` or `Failed`. */
  result?: string;
  /** The lines of the mover's log VolSync kept (it filters them). */
  logs?: string;
}

/** The status fields worth surfacing. Times are RFC 3339 strings as VolSync wrote them. */
export interface VolSyncStatus {
  /** When the last sync completed; moves on every completed sync (see {@link completedSyncMarker}). */
  lastSyncTime?: string;
  /** When the last (or current) sync started. */
  lastSyncStartTime?: string;
  /** How long the last sync took, as a Go duration string (`1m30.5s`). */
  lastSyncDuration?: string;
  /** When the next scheduled sync is due; absent without a schedule. */
  nextSyncTime?: string;
  /** The `spec.trigger.manual` value of the last completed manual sync. */
  lastManualSync?: string;
  /** Outcome and logs of the latest mover run. */
  latestMoverStatus?: MoverStatus;
  /** ReplicationDestination: `status.latestImage.name`. */
  latestImageName?: string;
}

/** A VolSync object as the operator sees it. */
export interface VolSyncObject {
  /** The kind of the resource it was read from. */
  kind: VolSyncKind;
  /** The object's metadata. */
  metadata: ObjectMeta;
  /** `spec.restic`; `undefined` for other movers (rclone, rsync, rsyncTLS, syncthing, external). */
  restic: ResticMover | undefined;
  /** `{}` when VolSync has not written a status yet. */
  status: VolSyncStatus;
}

/** The `apiVersion` of VolSync objects. */
export const VOLSYNC_API_VERSION = `${VOLSYNC_GROUP}/${VOLSYNC_VERSION}`;

function setIf<T extends object, K extends keyof T>(target: T, key: K, value: T[K] | undefined): void {
  if (value !== undefined) target[key] = value;
}

function parseRestic(v: unknown): ResticMover | undefined {
  if (!isRecord(v)) return undefined;
  const out: ResticMover = {};
  const repository = optString(v.repository);
  if (repository !== undefined && repository !== "") out.repository = repository;
  if (isRecord(v.customCA)) {
    const ca: CustomCA = {};
    setIf(ca, "secretName", optString(v.customCA.secretName));
    setIf(ca, "configMapName", optString(v.customCA.configMapName));
    setIf(ca, "key", optString(v.customCA.key));
    out.customCA = ca;
  }
  return out;
}

function parseStatus(v: unknown): VolSyncStatus {
  const out: VolSyncStatus = {};
  if (!isRecord(v)) return out;
  setIf(out, "lastSyncTime", optString(v.lastSyncTime));
  setIf(out, "lastSyncStartTime", optString(v.lastSyncStartTime));
  setIf(out, "lastSyncDuration", optString(v.lastSyncDuration));
  setIf(out, "nextSyncTime", optString(v.nextSyncTime));
  setIf(out, "lastManualSync", optString(v.lastManualSync));
  if (isRecord(v.latestMoverStatus)) {
    const mover: MoverStatus = {};
    setIf(mover, "result", optString(v.latestMoverStatus.result));
    setIf(mover, "logs", optString(v.latestMoverStatus.logs));
    out.latestMoverStatus = mover;
  }
  if (isRecord(v.latestImage)) setIf(out, "latestImageName", optString(v.latestImage.name));
  return out;
}

/**
 * Parses a VolSync object read from the resource of `kind` (list items may lack `kind`; when present it
 * must agree).
 */
export function parseVolSyncObject(v: unknown, kind: VolSyncKind): Parsed<VolSyncObject> {
  if (!isRecord(v)) return notAnObject(v, "");
  if (v.kind !== undefined && v.kind !== kind) {
    return { ok: false, errors: [{ path: "kind", message: `must be ${kind}` }] };
  }
  const meta = parseObjectMeta(v.metadata);
  if (!meta.ok) return meta;
  const spec = isRecord(v.spec) ? v.spec : {};
  return {
    ok: true,
    value: { kind, metadata: meta.value, restic: parseRestic(spec.restic), status: parseStatus(v.status) },
  };
}

/** Whether `v` names a VolSync kind. */
export function isVolSyncKind(v: unknown): v is VolSyncKind {
  return VOLSYNC_KINDS.some((k) => k === v);
}

/** The repository Secret's name (`spec.restic.repository`), or `undefined` when there is none. */
export function repositorySecretName(obj: VolSyncObject): string | undefined {
  return obj.restic?.repository;
}

/** Whether `spec.restic.customCA` points at a Secret or ConfigMap (restic would need it as a file). */
export function hasCustomCA(obj: VolSyncObject): boolean {
  const ca = obj.restic?.customCA;
  return ca !== undefined && ((ca.secretName ?? "") !== "" || (ca.configMapName ?? "") !== "");
}

/** A completed sync, identified for de-duplication of repository tasks. */
export interface SyncMarker {
  /** `lastSyncTime=<time>`; stored in Binding status as `lastSnapshotMarker`. */
  marker: string;
  /** The sync's `lastSyncTime`. */
  syncTime: string;
}

/**
 * The newest completed sync, or `undefined` before the first one. VolSync moves `lastSyncTime` on every
 * completed sync, scheduled or manual, so it alone identifies a sync. (The prototype preferred
 * `lastManualSync` when set, which stays constant across later scheduled syncs and so hid them; markers it
 * stored as `lastSyncTime=...` compare equal to ours, a stored `lastManualSync=...` one triggers at most one
 * extra run after migrating.)
 */
export function completedSyncMarker(obj: VolSyncObject): SyncMarker | undefined {
  const t = obj.status.lastSyncTime?.trim();
  if (t === undefined || t === "") return undefined;
  return { marker: `lastSyncTime=${t}`, syncTime: t };
}
