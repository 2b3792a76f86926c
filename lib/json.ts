/**
 * The one guard for "a JSON object" that every layer uses (`lib/api` parses with it, `lib/kube` checks
 * objects on the wire with it): not null, not an array.
 */

/** A plain JSON object as it arrives on the wire. */
export type JsonObject = { [key: string]: unknown };

/** Whether `v` is a non-null, non-array object. */
export function isRecord(v: unknown): v is JsonObject {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
