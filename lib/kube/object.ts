/**
 * Kubernetes objects as they arrive on the wire, checked by small type guards instead of casts.
 * Rule: only `metadata` is validated here (what the runtime relies on); the rest of an object is left as
 * `unknown` for the owning module's parser.
 */

import { isRecord, type JsonObject } from "../json.ts";

export { isRecord, type JsonObject };

function isStringMap(v: unknown): v is Record<string, string> {
  return isRecord(v) && Object.values(v).every((x) => typeof x === "string");
}

function isStringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((x) => typeof x === "string");
}

/** `metadata.ownerReferences[]`. */
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
  controller?: boolean | undefined;
  /** Whether foreground deletion of the owner waits for this object. */
  blockOwnerDeletion?: boolean | undefined;
}

/** `metadata` of any object (the fields the runtime reads). */
export interface ObjectMeta {
  /** Set on every stored object; absent on a create that uses `generateName`. */
  name?: string | undefined;
  /** Prefix the apiserver completes into a unique name on create. */
  generateName?: string | undefined;
  /** Absent for cluster-scoped objects. */
  namespace?: string | undefined;
  /** Set by the apiserver on create. */
  uid?: string | undefined;
  /** Opaque version for optimistic concurrency and watches; set by the apiserver. */
  resourceVersion?: string | undefined;
  /** Incremented by the apiserver on spec changes (resources that track it). */
  generation?: number | undefined;
  /** RFC 3339, set by the apiserver. */
  creationTimestamp?: string | undefined;
  /** RFC 3339; present once deletion was requested and finalizers hold the object. */
  deletionTimestamp?: string | undefined;
  /** Label map; selectors match on it. */
  labels?: Record<string, string> | undefined;
  /** Annotation map; metadata-only answers drop {@linkcode LAST_APPLIED_ANNOTATION}. */
  annotations?: Record<string, string> | undefined;
  /** The objects that own this one (garbage collection). */
  ownerReferences?: OwnerReference[] | undefined;
  /** Keys that hold the object after its deletion until each is removed. */
  finalizers?: string[] | undefined;
  /** Server-side apply bookkeeping, unchecked; metadata-only answers drop it. */
  managedFields?: unknown[] | undefined;
  /** Any other metadata field, unchecked. */
  [key: string]: unknown;
}

/** Any Kubernetes object. */
export interface KubeObject {
  /** `group/version`; list items may lack it. */
  apiVersion?: string | undefined;
  /** The kind; list items may lack it. */
  kind?: string | undefined;
  /** Checked by {@linkcode isObjectMeta}. */
  metadata: ObjectMeta;
  /** `spec`, `status`, `data`, ...: unchecked, for the owning module's parser. */
  [key: string]: unknown;
}

function isOwnerReference(v: unknown): v is OwnerReference {
  return isRecord(v) && typeof v.apiVersion === "string" && typeof v.kind === "string" &&
    typeof v.name === "string" && typeof v.uid === "string" &&
    (v.controller === undefined || typeof v.controller === "boolean");
}

function optional(v: unknown, type: "string" | "number"): boolean {
  return v === undefined || v === null || typeof v === type;
}

/** Whether `v` is well-formed object metadata. */
export function isObjectMeta(v: unknown): v is ObjectMeta {
  return isRecord(v) &&
    optional(v.name, "string") && optional(v.namespace, "string") && optional(v.uid, "string") &&
    optional(v.resourceVersion, "string") && optional(v.generation, "number") &&
    optional(v.creationTimestamp, "string") && optional(v.deletionTimestamp, "string") &&
    (v.labels === undefined || v.labels === null || isStringMap(v.labels)) &&
    (v.annotations === undefined || v.annotations === null || isStringMap(v.annotations)) &&
    (v.finalizers === undefined || v.finalizers === null || isStringArray(v.finalizers)) &&
    (v.ownerReferences === undefined || v.ownerReferences === null ||
      (Array.isArray(v.ownerReferences) && v.ownerReferences.every(isOwnerReference))) &&
    (v.managedFields === undefined || v.managedFields === null || Array.isArray(v.managedFields));
}

/** Whether `v` is an object with well-formed metadata. */
export function isKubeObject(v: unknown): v is KubeObject {
  return isRecord(v) && isObjectMeta(v.metadata) &&
    (v.apiVersion === undefined || typeof v.apiVersion === "string") &&
    (v.kind === undefined || typeof v.kind === "string");
}

/** `v` as a `KubeObject`, or a `TypeError` naming what is wrong. */
export function parseKubeObject(v: unknown): KubeObject {
  if (!isKubeObject(v)) throw new TypeError("Malformed Kubernetes object: metadata missing or ill-typed");
  return v;
}

/**
 * Annotation where `kubectl apply` keeps the whole last applied object. On a Secret it holds the data,
 * so metadata-only caches drop it.
 */
export const LAST_APPLIED_ANNOTATION = "kubectl.kubernetes.io/last-applied-configuration";

/**
 * Only `apiVersion`, `kind` and `metadata` of `v` (as a PartialObjectMetadata), without managedFields and
 * without the last-applied annotation. Used for every metadata-only answer, so even an apiserver that
 * ignored the `Accept` header cannot put Secret data into a cache.
 */
export function parsePartialObjectMetadata(v: unknown): KubeObject {
  const obj = parseKubeObject(v);
  const { managedFields: _m, annotations, ...meta } = obj.metadata;
  const out: KubeObject = { metadata: meta };
  if (annotations) {
    const kept: Record<string, string> = {};
    for (const [k, val] of Object.entries(annotations)) if (k !== LAST_APPLIED_ANNOTATION) kept[k] = val;
    out.metadata.annotations = kept;
  }
  if (obj.apiVersion !== undefined) out.apiVersion = obj.apiVersion;
  if (obj.kind !== undefined) out.kind = obj.kind;
  return out;
}

/** `namespace/name` for namespaced objects, `name` for cluster-scoped ones: a store's key. */
export function objectKey(obj: KubeObject): string {
  return namespacedKey(obj.metadata.namespace, obj.metadata.name ?? "");
}

/**
 * Orders two resourceVersions of the same resource: negative, zero or positive as `a` is older, the same or
 * newer; `undefined` when either is not the apiserver's form (a positive decimal integer without leading
 * zeros), which may then only be compared for equality. Kubernetes states the order from 1.35 on (KEP-5504,
 * "Comparable Resource Version"); etcd's revisions had it before.
 */
export function compareResourceVersions(a: string | undefined, b: string | undefined): number | undefined {
  if (!a || !b || !RESOURCE_VERSION.test(a) || !RESOURCE_VERSION.test(b)) return undefined;
  if (a.length !== b.length) return a.length - b.length;
  return a < b ? -1 : a > b ? 1 : 0;
}

const RESOURCE_VERSION = /^[1-9][0-9]*$/;

/** The key of the object `name` in `namespace` (`name` alone without one), as {@linkcode objectKey}. */
export function namespacedKey(namespace: string | undefined, name: string): string {
  return namespace ? `${namespace}/${name}` : name;
}

/** `meta/v1` Status, as carried by error answers and watch ERROR events. */
export interface Status {
  /** The HTTP status code it stands for (410 in a watch ERROR: the resourceVersion is too old). */
  code?: number | undefined;
  /** CamelCase reason, e.g. `NotFound`, `Conflict`, `Expired`. */
  reason?: string | undefined;
  /** The apiserver's human-readable message. */
  message?: string | undefined;
  /** The type of each `details.causes[]` entry (its JSON key is `reason`), e.g. `NamespaceTerminating`. */
  causes?: string[] | undefined;
  /** `details.retryAfterSeconds`: how long the client should wait before trying again. */
  retryAfterSeconds?: number | undefined;
  /** `details.kind` and `details.name`: what the answer is about (e.g. `namespaces` for a namespace gone). */
  subject?: { kind: string; name: string } | undefined;
}

/** The Status fields of `v`, or an empty Status if `v` is not one. */
export function parseStatus(v: unknown): Status {
  if (!isRecord(v)) return {};
  const out: Status = {};
  if (typeof v.code === "number") out.code = v.code;
  if (typeof v.reason === "string") out.reason = v.reason;
  if (typeof v.message === "string") out.message = v.message;
  const causes = isRecord(v.details) && Array.isArray(v.details.causes) ? v.details.causes : [];
  const types = causes.flatMap((c) => isRecord(c) && typeof c.reason === "string" ? [c.reason] : []);
  if (types.length > 0) out.causes = types;
  const retry = isRecord(v.details) ? v.details.retryAfterSeconds : undefined;
  if (typeof retry === "number" && retry >= 0) out.retryAfterSeconds = retry;
  if (isRecord(v.details) && typeof v.details.kind === "string" && typeof v.details.name === "string") {
    out.subject = { kind: v.details.kind, name: v.details.name };
  }
  return out;
}
