/**
 * Secret material in transit. A `Sensitive` prints `[redacted]` in every form a log line, a JSON body,
 * a template string or `Deno.inspect` can take; only `reveal()` gives the value, and only the code that
 * builds the Backrest request (and the auth header) may call it. A leak then needs an explicit act.
 */

const REDACTED = "[redacted]";

export class Sensitive {
  readonly #value: string;

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

  toString(): string {
    return REDACTED;
  }

  toJSON(): string {
    return REDACTED;
  }

  [Symbol.toPrimitive](): string {
    return REDACTED;
  }

  [Symbol.for("Deno.customInspect")](): string {
    return REDACTED;
  }

  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return REDACTED;
  }
}
