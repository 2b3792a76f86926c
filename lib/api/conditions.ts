/**
 * Status conditions in the metav1.Condition shape. Rule: setting a condition whose status is unchanged
 * keeps its `lastTransitionTime` (only reason, message and observedGeneration move), so writing the same
 * state twice produces an identical status and the caller can skip the write.
 */

import { isOneOf, isRecord, optNumber, optString } from "./_fields.ts";

/** Values of `condition.status`. */
export const CONDITION_STATUSES = ["True", "False", "Unknown"] as const;
/** A condition status. */
export type ConditionStatus = typeof CONDITION_STATUSES[number];

/** A condition as stored in status. */
export interface Condition {
  /** CamelCase type, e.g. `Ready` (see `ConditionType`). */
  type: string;
  /** True, False or Unknown. */
  status: ConditionStatus;
  /** The `metadata.generation` the condition was set for; absent when the writer did not say. */
  observedGeneration?: number;
  /** RFC 3339, seconds precision (`2024-05-01T10:00:00Z`). */
  lastTransitionTime: string;
  /** Machine-readable CamelCase reason for the last transition (see `Reason`). */
  reason: string;
  /** Human-readable details and what to do about them. */
  message: string;
}

/** What a caller decides; the transition time is filled in by {@link setCondition}. */
export interface ConditionUpdate {
  /** The condition type to set. */
  type: string;
  /** The new status; a change moves `lastTransitionTime`. */
  status: ConditionStatus;
  /** CamelCase reason for the status (see `Reason`). */
  reason: string;
  /** Human-readable details and what to do about them (status never holds a Secret value). */
  message: string;
  /** The generation to record; absent leaves the field out of the new condition. */
  observedGeneration?: number;
}

/** RFC 3339 with seconds precision, the form metav1.Time serializes to. */
export function formatTime(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, "Z");
}

/**
 * Returns a new list with `update` applied: an existing condition of that type is replaced in place
 * (keeping `lastTransitionTime` when the status is unchanged), a new one is appended.
 */
export function setCondition(
  conditions: readonly Condition[],
  update: ConditionUpdate,
  now: Date,
): Condition[] {
  const existing = conditions.find((c) => c.type === update.type);
  const next: Condition = {
    type: update.type,
    status: update.status,
    lastTransitionTime: existing !== undefined && existing.status === update.status
      ? existing.lastTransitionTime
      : formatTime(now),
    reason: update.reason,
    message: update.message,
  };
  if (update.observedGeneration !== undefined) next.observedGeneration = update.observedGeneration;
  if (existing === undefined) return [...conditions, next];
  return conditions.map((c) => (c.type === update.type ? next : c));
}

/** Returns a new list without the condition of `type`. */
export function removeCondition(conditions: readonly Condition[], type: string): Condition[] {
  return conditions.filter((c) => c.type !== type);
}

/** The condition of `type`, if present. */
export function findCondition(conditions: readonly Condition[], type: string): Condition | undefined {
  return conditions.find((c) => c.type === type);
}

/** Whether the condition of `type` is present with status True. */
export function isConditionTrue(conditions: readonly Condition[], type: string): boolean {
  return findCondition(conditions, type)?.status === "True";
}

/** Whether two lists hold the same conditions (order-insensitive, every field compared). */
export function conditionsEqual(a: readonly Condition[], b: readonly Condition[]): boolean {
  if (a.length !== b.length) return false;
  return a.every((x) => {
    const y = b.find((c) => c.type === x.type);
    return y !== undefined && y.status === x.status && y.reason === x.reason && y.message === x.message &&
      y.lastTransitionTime === x.lastTransitionTime && y.observedGeneration === x.observedGeneration;
  });
}

/** Reads a stored condition list leniently: malformed entries are dropped, never reported. */
export function parseConditions(v: unknown): Condition[] {
  if (!Array.isArray(v)) return [];
  const out: Condition[] = [];
  for (const item of v) {
    if (!isRecord(item)) continue;
    const type = optString(item.type);
    const status = item.status;
    if (type === undefined || type === "" || !isOneOf(CONDITION_STATUSES, status)) continue;
    const c: Condition = {
      type,
      status,
      lastTransitionTime: optString(item.lastTransitionTime) ?? "",
      reason: optString(item.reason) ?? "",
      message: optString(item.message) ?? "",
    };
    const generation = optNumber(item.observedGeneration);
    if (generation !== undefined) c.observedGeneration = generation;
    out.push(c);
  }
  return out;
}
