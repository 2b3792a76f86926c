/**
 * Secret material in transit. A `Sensitive` prints `[redacted]` in every form a log line, a JSON body,
 * a template string or `Deno.inspect` can take; only `reveal()` gives the value, and only the code that
 * builds the Backrest request (and the auth header) may call it. A leak then needs an explicit act.
 */

const REDACTED = "[redacted]";

/** A secret string that prints as `[redacted]` everywhere; `reveal()` is the only way to the value. */
export class Sensitive {
  readonly #value: string;

  /** Wraps `value`; from here on only `reveal()` returns it. */
  constructor(value: string) {
    this.#value = value;
  }

  /** The secret value. Call only where it leaves for Backrest. */
  reveal(): string {
    return this.#value;
  }

  /** Whether the value is the empty string (safe to ask: says nothing about the content). */
  get isEmpty(): boolean {
    return this.#value.length === 0;
  }

  /** `[redacted]` for explicit `toString()` calls (coercions go through `Symbol.toPrimitive`). */
  toString(): string {
    return REDACTED;
  }

  /** `[redacted]`, so `JSON.stringify` (a log line, a status) never shows the value. */
  toJSON(): string {
    return REDACTED;
  }

  /** `[redacted]` for every coercion hint (template strings, `+`, `String()`). */
  [Symbol.toPrimitive](): string {
    return REDACTED;
  }

  /** `[redacted]` in `Deno.inspect` and `console.log`. */
  [Symbol.for("Deno.customInspect")](): string {
    return REDACTED;
  }

  /** `[redacted]` in Node's `util.inspect` (npm libraries that log objects). */
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return REDACTED;
  }
}
