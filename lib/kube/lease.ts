/**
 * coordination.k8s.io/v1 Lease: the type, its parser and MicroTime helpers. The election algorithm lives in
 * `lib/runtime/leader_election.ts`; this module only speaks the wire format.
 */

import { isKubeObject, isRecord, type KubeObject } from "./object.ts";
import { type ResourceType, resourceType } from "./resource.ts";

/** `Lease.spec`. Times are MicroTime strings (RFC 3339 with microseconds). */
export interface LeaseSpec {
  /** Who holds the Lease; absent or `""` when nobody does (a leader that stepped down). */
  holderIdentity?: string | undefined;
  /** How long a holder's claim lasts after `renewTime`, in seconds. */
  leaseDurationSeconds?: number | undefined;
  /** When the current holder acquired the Lease. */
  acquireTime?: string | undefined;
  /** When the holder last renewed the Lease. */
  renewTime?: string | undefined;
  /** How many times the Lease changed holders. */
  leaseTransitions?: number | undefined;
}

/** A Lease object. */
export interface Lease extends KubeObject {
  /** `undefined` when the object has no spec. */
  spec?: LeaseSpec | undefined;
}

function opt(v: unknown, type: "string" | "number"): boolean {
  return v === undefined || v === null || typeof v === type;
}

/** `v` as a Lease, or a `TypeError`. */
export function parseLease(v: unknown): Lease {
  if (!isKubeObject(v)) throw new TypeError("Malformed Lease: metadata missing or ill-typed");
  const spec = v.spec;
  if (spec === undefined || spec === null) return { ...v, spec: undefined };
  if (
    !isRecord(spec) || !opt(spec.holderIdentity, "string") || !opt(spec.leaseDurationSeconds, "number") ||
    !opt(spec.acquireTime, "string") || !opt(spec.renewTime, "string") ||
    !opt(spec.leaseTransitions, "number")
  ) throw new TypeError("Malformed Lease: spec ill-typed");
  const out: LeaseSpec = {};
  if (typeof spec.holderIdentity === "string") out.holderIdentity = spec.holderIdentity;
  if (typeof spec.leaseDurationSeconds === "number") out.leaseDurationSeconds = spec.leaseDurationSeconds;
  if (typeof spec.acquireTime === "string") out.acquireTime = spec.acquireTime;
  if (typeof spec.renewTime === "string") out.renewTime = spec.renewTime;
  if (typeof spec.leaseTransitions === "number") out.leaseTransitions = spec.leaseTransitions;
  return { ...v, spec: out };
}

/** The Lease resource. */
export const leases: ResourceType<Lease> = resourceType<Lease>({
  group: "coordination.k8s.io",
  version: "v1",
  resource: "leases",
  kind: "Lease",
  namespaced: true,
}, parseLease);

/** A MicroTime string for `ms` since the epoch, e.g. `2024-05-01T10:00:00.123000Z`. */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}

/** Milliseconds since the epoch of a MicroTime or RFC 3339 string (NaN when malformed). */
export function parseMicroTime(value: string): number {
  return Date.parse(value);
}
