/**
 * Comparing API objects the way the apiserver sees them: key order does not matter (the apiserver answers
 * with sorted keys, we build objects in our own order) and `undefined` members do not exist. Writes are
 * skipped when nothing differs, so this decides how many apiserver writes a reconcile costs.
 */
import { isRecord } from "../kube/mod.ts";

/** JSON with sorted keys and `undefined` members dropped. */
export function stableJSON(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map((x) => x === undefined ? "null" : stableJSON(x)).join(",")}]`;
  if (isRecord(v)) {
    const keys = Object.keys(v).filter((k) => v[k] !== undefined).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${stableJSON(v[k])}`).join(",")}}`;
  }
  return JSON.stringify(v) ?? "null";
}

/** Whether `a` and `b` are the same JSON value, whatever their key order. */
export function sameJSON(a: unknown, b: unknown): boolean {
  return stableJSON(a) === stableJSON(b);
}
