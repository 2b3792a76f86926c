/**
 * The parts of Kubernetes object metadata the operator reads. Rule: metadata is parsed leniently (the
 * apiserver wrote it); only a missing name is an error, absent collections become empty ones.
 */

import { Errors, isRecord, notAnObject, optNumber, optString, readStringMap } from "./_fields.ts";
import type { Parsed } from "./result.ts";

/** An owner reference (the fields the operator sets and reads). */
export interface OwnerReference {
  /** The owner's apiVersion. */
  apiVersion: string;
  /** The owner's kind. */
  kind: string;
  /** The owner's name (same namespace as the owned object). */
  name: string;
  /** The owner's uid; an owner recreated under the same name has another. */
  uid: string;
  /** Whether this owner is the managing controller; at most one reference may say true. */
  controller?: boolean;
  /** Whether foreground deletion of the owner waits for this object. */
  blockOwnerDeletion?: boolean;
}

/** Object metadata. `namespace` is `""` for cluster-scoped objects, `generation` 0 when absent. */
export interface ObjectMeta {
  /** Never empty (parsing fails without it). */
  name: string;
  /** `""` for cluster-scoped objects. */
  namespace: string;
  /** `""` when absent (an object not yet created). */
  uid: string;
  /** Opaque version for optimistic concurrency; `""` when absent. */
  resourceVersion: string;
  /** Incremented by the apiserver on every spec change; 0 when absent. */
  generation: number;
  /** RFC 3339, set by the apiserver. */
  creationTimestamp?: string;
  /** RFC 3339; present once deletion was requested and finalizers hold the object. */
  deletionTimestamp?: string;
  /** `{}` when absent. */
  labels: Record<string, string>;
  /** `{}` when absent. */
  annotations: Record<string, string>;
  /** `[]` when absent. */
  finalizers: string[];
  /** `[]` when absent; malformed entries are dropped. */
  ownerReferences: OwnerReference[];
}

function parseOwnerReference(v: unknown): OwnerReference | undefined {
  if (!isRecord(v)) return undefined;
  const apiVersion = optString(v.apiVersion);
  const kind = optString(v.kind);
  const name = optString(v.name);
  const uid = optString(v.uid);
  if (apiVersion === undefined || kind === undefined || name === undefined || uid === undefined) {
    return undefined;
  }
  const ref: OwnerReference = { apiVersion, kind, name, uid };
  if (typeof v.controller === "boolean") ref.controller = v.controller;
  if (typeof v.blockOwnerDeletion === "boolean") ref.blockOwnerDeletion = v.blockOwnerDeletion;
  return ref;
}

/** Parses `metadata`; fails only when it is not an object or has no name. */
export function parseObjectMeta(v: unknown, path = "metadata"): Parsed<ObjectMeta> {
  if (!isRecord(v)) return notAnObject(v, path);
  const errors = new Errors();
  const name = optString(v.name);
  if (name === undefined || name === "") {
    errors.add(`${path}.name`, "required");
    return { ok: false, errors: errors.list };
  }
  const meta: ObjectMeta = {
    name,
    namespace: optString(v.namespace) ?? "",
    uid: optString(v.uid) ?? "",
    resourceVersion: optString(v.resourceVersion) ?? "",
    generation: optNumber(v.generation) ?? 0,
    labels: readStringMap(v.labels),
    annotations: readStringMap(v.annotations),
    finalizers: Array.isArray(v.finalizers)
      ? v.finalizers.filter((f: unknown): f is string => typeof f === "string")
      : [],
    ownerReferences: Array.isArray(v.ownerReferences)
      ? v.ownerReferences.map(parseOwnerReference).filter((r): r is OwnerReference => r !== undefined)
      : [],
  };
  const created = optString(v.creationTimestamp);
  if (created !== undefined) meta.creationTimestamp = created;
  const deleted = optString(v.deletionTimestamp);
  if (deleted !== undefined) meta.deletionTimestamp = deleted;
  return { ok: true, value: meta };
}
