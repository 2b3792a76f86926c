/**
 * The outcome of parsing wire JSON: a typed value, or every problem found, each with the full field path.
 * Parsers never throw on bad input and never return a partly checked value as `ok`.
 */

/** One problem in an object, e.g. `{ path: "spec.repo.idOverride", message: "must not both start and end with '_'" }`. */
export interface FieldError {
  /** Path of the field from the parsed root (`spec.repo.extraFlags[2]`); `""` for the root itself. */
  readonly path: string;
  /** What is wrong, phrased to follow the path (`must be ...`, `required`). */
  readonly message: string;
}

/** A parse result. */
export type Parsed<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly errors: readonly FieldError[] };

/** Joins errors into one line for a condition message: `spec.x: must be ...; spec.y: required`. */
export function formatErrors(errors: readonly FieldError[]): string {
  return errors.map((e) => (e.path === "" ? e.message : `${e.path}: ${e.message}`)).join("; ");
}
