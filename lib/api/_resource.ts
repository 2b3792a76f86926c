/**
 * The one way a whole custom resource is parsed: apiVersion and kind checked when present, metadata and
 * spec strictly, status leniently (so a condition can still be written on an object with a bad spec).
 */
import { isRecord } from "./_fields.ts";
import { API_VERSION } from "./constants.ts";
import { type ObjectMeta, parseObjectMeta } from "./meta.ts";
import type { FieldError, Parsed } from "./result.ts";

/** A parsed resource, or the errors plus what could still be read (metadata, status). */
export type ParsedResource<T extends { metadata: ObjectMeta; status: unknown }> =
  | { readonly ok: true; readonly value: T }
  | {
    readonly ok: false;
    readonly errors: FieldError[];
    readonly metadata: ObjectMeta | undefined;
    readonly status: T["status"];
  };

/** Parses `v` as a `kind` of our group with the given spec and status parsers. */
export function parseResource<K extends string, S, St>(
  v: unknown,
  kind: K,
  parseSpec: (spec: unknown) => Parsed<S>,
  parseStatus: (status: unknown) => St,
): ParsedResource<{ apiVersion: typeof API_VERSION; kind: K; metadata: ObjectMeta; spec: S; status: St }> {
  if (!isRecord(v)) {
    return {
      ok: false,
      errors: [{ path: "", message: "must be an object" }],
      metadata: undefined,
      status: parseStatus(undefined),
    };
  }
  const errors: FieldError[] = [];
  if (v.apiVersion !== undefined && v.apiVersion !== API_VERSION) {
    errors.push({ path: "apiVersion", message: `must be ${API_VERSION}` });
  }
  if (v.kind !== undefined && v.kind !== kind) errors.push({ path: "kind", message: `must be ${kind}` });
  const meta = parseObjectMeta(v.metadata);
  if (!meta.ok) errors.push(...meta.errors);
  const spec = parseSpec(v.spec);
  if (!spec.ok) errors.push(...spec.errors);
  const status = parseStatus(v.status);
  if (!meta.ok || !spec.ok || errors.length > 0) {
    return { ok: false, errors, metadata: meta.ok ? meta.value : undefined, status };
  }
  return {
    ok: true,
    value: { apiVersion: API_VERSION, kind, metadata: meta.value, spec: spec.value, status },
  };
}
