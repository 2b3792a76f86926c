/**
 * String interning for cached objects. `JSON.parse` gives every object its own copy of strings such as
 * the apiVersion, kind, namespace and condition texts; with thousands of cached objects those copies
 * are a large share of the heap. Rules: only low-cardinality fields are interned; the table is bounded
 * (cleared when full, which only loses sharing, never correctness); objects are copied, never mutated.
 */

import { isRecord, type KubeObject } from "../kube/mod.ts";

const MAX_ENTRIES = 4096;
const table = new Map<string, string>();

/** The shared copy of `s` (the first one seen). */
export function intern<S extends string | undefined>(s: S): S {
  if (s === undefined) return s;
  const known = table.get(s);
  if (known !== undefined) return known as S;
  if (table.size >= MAX_ENTRIES) table.clear();
  table.set(s, s);
  return s;
}

/**
 * Copy of a `status.conditions` entry with its type, status, reason, message and lastTransitionTime
 * interned (objects handled in one burst share their timestamps' seconds).
 */
function condition(c: unknown): unknown {
  if (!isRecord(c)) return c;
  const out: Record<string, unknown> = { ...c };
  for (const k of ["type", "status", "reason", "message", "lastTransitionTime"]) {
    if (typeof out[k] === "string") out[k] = intern(out[k]);
  }
  return out;
}

/**
 * An informer transform: drops `metadata.managedFields` (often the largest part of an object) and
 * interns apiVersion, kind, namespace, creationTimestamp, owner references and status conditions.
 */
export function compactObject<T extends KubeObject>(obj: T): T {
  const { managedFields: _drop, ...metadata } = obj.metadata;
  if (metadata.namespace !== undefined) metadata.namespace = intern(metadata.namespace);
  if (metadata.creationTimestamp !== undefined) {
    metadata.creationTimestamp = intern(metadata.creationTimestamp);
  }
  if (metadata.ownerReferences) {
    metadata.ownerReferences = metadata.ownerReferences.map((r) => ({
      ...r,
      apiVersion: intern(r.apiVersion),
      kind: intern(r.kind),
    }));
  }
  const out: T = { ...obj, metadata };
  if (obj.apiVersion !== undefined) out.apiVersion = intern(obj.apiVersion);
  if (obj.kind !== undefined) out.kind = intern(obj.kind);
  if (isRecord(obj.status) && Array.isArray(obj.status.conditions)) {
    (out as KubeObject).status = { ...obj.status, conditions: obj.status.conditions.map(condition) };
  }
  return out;
}

/**
 * An informer transform for objects whose content the operator never reads (Secrets' metadata): keeps
 * only the namespace, name and resourceVersion, which is all that change detection needs (a
 * resourceVersion is unique across the cluster, so a Secret deleted and created again differs too).
 */
export function identityOnly<T extends KubeObject>(obj: T): T {
  const { namespace, name, resourceVersion } = obj.metadata;
  return {
    metadata: {
      name,
      ...(namespace !== undefined ? { namespace: intern(namespace) } : {}),
      ...(resourceVersion !== undefined ? { resourceVersion } : {}),
    },
  } as T;
}
