/**
 * Field readers for parsing wire JSON (`unknown`) into typed values without casts. Rule: a reader returns
 * the value when it has the right shape, otherwise records one error at the field's full path (for example
 * `spec.repo.extraFlags[2]`) and returns `undefined`; an absent optional field is neither value nor error.
 */

import type { FieldError, Parsed } from "./result.ts";

import { isRecord, type JsonObject } from "../json.ts";

export { isRecord, type JsonObject };

/** Whether `v` is one of `values` (a type guard without casts). */
export function isOneOf<T extends string>(values: readonly T[], v: unknown): v is T {
  return values.some((x) => x === v);
}

/** Joins a parent path and a key: `join("spec", "repo")` is `spec.repo`. */
export function join(path: string, key: string): string {
  return path === "" ? key : `${path}.${key}`;
}

/** Collects errors while a parser walks an object. */
export class Errors {
  readonly list: FieldError[] = [];

  add(path: string, message: string): void {
    this.list.push({ path, message });
  }

  get empty(): boolean {
    return this.list.length === 0;
  }
}

/** The failed parse of a value at `path` that should be an object: "required" when absent. */
export function notAnObject(v: unknown, path: string): Parsed<never> {
  return {
    ok: false,
    errors: [{ path, message: v === undefined || v === null ? "required" : "must be an object" }],
  };
}

/** Options shared by the readers. */
export interface ReadOptions {
  /** Record an error when the field is absent. */
  readonly required?: boolean;
}

function missing(errors: Errors, path: string, options: ReadOptions | undefined): undefined {
  if (options?.required) errors.add(path, "required");
  return undefined;
}

/**
 * Every reader's first step: the field at `key` and its path when present and accepted by `is`; otherwise
 * `undefined`, with `wrongType` recorded for a value `is` refuses (and "required" for an absent required one).
 */
function field<T>(
  obj: JsonObject,
  key: string,
  path: string,
  errors: Errors,
  options: ReadOptions | undefined,
  is: (v: unknown) => v is T,
  wrongType: string,
): { value: T; at: string } | undefined {
  const v = obj[key];
  const at = join(path, key);
  if (v === undefined || v === null) return missing(errors, at, options);
  if (!is(v)) {
    errors.add(at, wrongType);
    return undefined;
  }
  return { value: v, at };
}

const isString = (v: unknown): v is string => typeof v === "string";
const isBoolean = (v: unknown): v is boolean => typeof v === "boolean";
const isFiniteNumber = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);
const isArray = (v: unknown): v is unknown[] => Array.isArray(v);

/** A nested object. */
export function readObject(
  obj: JsonObject,
  key: string,
  path: string,
  errors: Errors,
  options?: ReadOptions,
): JsonObject | undefined {
  return field(obj, key, path, errors, options, isRecord, "must be an object")?.value;
}

/** String constraints. */
export interface StringOptions extends ReadOptions {
  readonly minLength?: number;
  readonly maxLength?: number;
  readonly pattern?: RegExp;
  /** Message used when `pattern` does not match. */
  readonly patternMessage?: string;
}

function checkString(v: string, at: string, errors: Errors, options: StringOptions | undefined): boolean {
  if (options?.minLength !== undefined && v.length < options.minLength) {
    errors.add(
      at,
      options.minLength === 1 ? "must not be empty" : `must be at least ${options.minLength} characters`,
    );
    return false;
  }
  if (options?.maxLength !== undefined && v.length > options.maxLength) {
    errors.add(at, `must be at most ${options.maxLength} characters`);
    return false;
  }
  if (options?.pattern && !options.pattern.test(v)) {
    errors.add(at, options.patternMessage ?? `must match ${options.pattern.source}`);
    return false;
  }
  return true;
}

/** A string field. */
export function readString(
  obj: JsonObject,
  key: string,
  path: string,
  errors: Errors,
  options?: StringOptions,
): string | undefined {
  const f = field(obj, key, path, errors, options, isString, "must be a string");
  return f && checkString(f.value, f.at, errors, options) ? f.value : undefined;
}

/** A boolean field. */
export function readBoolean(
  obj: JsonObject,
  key: string,
  path: string,
  errors: Errors,
  options?: ReadOptions,
): boolean | undefined {
  return field(obj, key, path, errors, options, isBoolean, "must be a boolean")?.value;
}

/** Number constraints (inclusive bounds). */
export interface NumberOptions extends ReadOptions {
  readonly minimum?: number;
  readonly maximum?: number;
  /** Require a whole number (JSON integers; int64 values must stay within the safe integer range). */
  readonly integer?: boolean;
}

/** A number field. */
export function readNumber(
  obj: JsonObject,
  key: string,
  path: string,
  errors: Errors,
  options?: NumberOptions,
): number | undefined {
  const wrongType = options?.integer ? "must be an integer" : "must be a number";
  const f = field(obj, key, path, errors, options, isFiniteNumber, wrongType);
  if (!f) return undefined;
  const { value: v, at } = f;
  if (options?.integer && !Number.isSafeInteger(v)) {
    errors.add(at, "must be an integer");
    return undefined;
  }
  if (options?.minimum !== undefined && v < options.minimum) {
    errors.add(at, `must be at least ${options.minimum}`);
    return undefined;
  }
  if (options?.maximum !== undefined && v > options.maximum) {
    errors.add(at, `must be at most ${options.maximum}`);
    return undefined;
  }
  return v;
}

/** A string field restricted to `values`. */
export function readEnum<T extends string>(
  obj: JsonObject,
  key: string,
  path: string,
  errors: Errors,
  values: readonly T[],
  options?: ReadOptions,
): T | undefined {
  const wrongType = `must be one of ${values.map((x) => JSON.stringify(x)).join(", ")}`;
  return field(obj, key, path, errors, options, (v): v is T => isOneOf(values, v), wrongType)?.value;
}

/** An array of strings; each item checked against `options`. Bad items are reported and dropped. */
export function readStringArray(
  obj: JsonObject,
  key: string,
  path: string,
  errors: Errors,
  options?: StringOptions & { readonly maxItems?: number },
): string[] | undefined {
  const f = field(obj, key, path, errors, options, isArray, "must be an array of strings");
  if (!f) return undefined;
  const { value: v, at } = f;
  if (options?.maxItems !== undefined && v.length > options.maxItems) {
    errors.add(at, `must have at most ${options.maxItems} items`);
    return undefined;
  }
  const out: string[] = [];
  v.forEach((item: unknown, i: number) => {
    const itemAt = `${at}[${i}]`;
    if (typeof item !== "string") {
      errors.add(itemAt, "must be a string");
    } else if (checkString(item, itemAt, errors, options)) {
      out.push(item);
    }
  });
  return out;
}

/** A map of string to string (labels, annotations); non-string values are skipped, never reported. */
export function readStringMap(v: unknown): Record<string, string> {
  if (!isRecord(v)) return {};
  const out: Record<string, string> = {};
  for (const [k, value] of Object.entries(v)) {
    if (typeof value === "string") out[k] = value;
  }
  return out;
}

/** A string, or `undefined` for anything else (lenient reads of status written by us or by VolSync). */
export function optString(v: unknown): string | undefined {
  return typeof v === "string" ? v : undefined;
}

/** A finite number, or `undefined`. */
export function optNumber(v: unknown): number | undefined {
  return typeof v === "number" && Number.isFinite(v) ? v : undefined;
}
