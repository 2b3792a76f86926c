/**
 * Structured logging: one JSON object per line with controller-runtime's keys (`level`, `ts`, `logger`,
 * `msg`, `error`, then bound and call fields such as `controller`, `namespace`, `name`, `reconcileID`),
 * or a human console line. Rules: a logger never throws, never prints an object's full contents on its
 * own (callers pass scalar fields), and an `error` field is rendered from the error's message chain
 * only, never from request bodies or stack-attached data.
 */

/** Severity, lowest first. A logger prints records at or above its level. */
export type LogLevel = "debug" | "info" | "error";

/** Output shape: JSON lines for machines, or `ts LEVEL logger msg k=v` for people. */
export type LogFormat = "json" | "console";

/** Scalar fields a record can carry. Objects are refused by the type so nothing is dumped by accident. */
export type LogValue = string | number | boolean | null | undefined;

/** Key/value fields bound to a logger or passed with one record. */
export type LogFields = Record<string, LogValue>;

/** A structured logger. Child loggers share the sink and level and add fields or a name segment. */
export interface Logger {
  /** A record for diagnosis, printed only at level debug (Backrest's own texts go here). */
  debug(msg: string, fields?: LogFields): void;
  /** A record of normal operation. */
  info(msg: string, fields?: LogFields): void;
  /** `error` may be anything thrown; it becomes the `error` key (message chain, causes joined by ": "). */
  error(msg: string, error?: unknown, fields?: LogFields): void;
  /** Whether records of this level are printed (to skip building costly fields). */
  enabled(level: LogLevel): boolean;
  /** A logger whose records all carry `fields`. */
  with(fields: LogFields): Logger;
  /** A logger named `<parent>.<name>` (the `logger` key). */
  named(name: string): Logger;
}

/** Options for {@linkcode createLogger}. */
export interface LoggerOptions {
  /** Lowest level printed (default `info`). */
  level?: LogLevel | undefined;
  /** Line shape (default `json`). */
  format?: LogFormat | undefined;
  /** Where each finished line goes (without the newline). Defaults to stderr. */
  write?: ((line: string) => void) | undefined;
  /** Clock for `ts` (milliseconds since the epoch). */
  now?: (() => number) | undefined;
  /** The root `logger` key (default `""`); children append `.<name>`. */
  name?: string | undefined;
}

const ORDER: Record<LogLevel, number> = { debug: 0, info: 1, error: 2 };
const encoder = new TextEncoder();

function stderrWrite(line: string): void {
  try {
    Deno.stderr.writeSync(encoder.encode(line + "\n"));
  } catch { /* a closed stderr must not break the program */ }
}

/**
 * The text of an error for a log line, an Event or a status message: the message, then each `cause`'s
 * message, joined by ": ". Non-errors become their string form (objects are not serialised).
 */
export function errorText(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current !== undefined && current !== null; depth++) {
    if (current instanceof Error) {
      if (current.message && !parts.includes(current.message)) parts.push(current.message);
      current = current.cause;
    } else {
      parts.push(typeof current === "object" ? Object.prototype.toString.call(current) : String(current));
      break;
    }
  }
  return parts.join(": ");
}

/** A logger writing to stderr (or `options.write`). */
export function createLogger(options: LoggerOptions = {}): Logger {
  const sink: Sink = {
    level: ORDER[options.level ?? "info"],
    format: options.format ?? "json",
    write: options.write ?? stderrWrite,
    now: options.now ?? Date.now,
  };
  return new LoggerImpl(sink, options.name ?? "", {});
}

/** A logger that prints nothing (tests, benchmarks). */
export function nullLogger(): Logger {
  return createLogger({ level: "error", write: () => {} });
}

interface Sink {
  level: number;
  format: LogFormat;
  write: (line: string) => void;
  now: () => number;
}

class LoggerImpl implements Logger {
  constructor(readonly sink: Sink, readonly name: string, readonly fields: LogFields) {}

  enabled(level: LogLevel): boolean {
    return ORDER[level] >= this.sink.level;
  }

  debug(msg: string, fields?: LogFields): void {
    this.#emit("debug", msg, undefined, fields);
  }

  info(msg: string, fields?: LogFields): void {
    this.#emit("info", msg, undefined, fields);
  }

  error(msg: string, error?: unknown, fields?: LogFields): void {
    this.#emit("error", msg, error, fields);
  }

  with(fields: LogFields): Logger {
    return new LoggerImpl(this.sink, this.name, { ...this.fields, ...fields });
  }

  named(name: string): Logger {
    return new LoggerImpl(this.sink, this.name ? `${this.name}.${name}` : name, this.fields);
  }

  #emit(level: LogLevel, msg: string, error: unknown, fields: LogFields | undefined): void {
    if (!this.enabled(level)) return;
    try {
      const line: Line = {
        level,
        ts: this.sink.now(),
        name: this.name,
        msg,
        error: error === undefined ? undefined : errorText(error),
        fields: { ...this.fields, ...fields },
      };
      this.sink.write(this.sink.format === "json" ? jsonLine(line) : consoleLine(line));
    } catch { /* logging never throws */ }
  }
}

const RESERVED = new Set(["level", "ts", "logger", "msg", "error"]);

/** One log line before it is formatted. */
interface Line {
  level: LogLevel;
  /** Milliseconds since the epoch. */
  ts: number;
  /** The logger's name ("" for the root). */
  name: string;
  msg: string;
  /** The error's text with its causes (`errorText`). */
  error: string | undefined;
  fields: LogFields;
}

function jsonLine({ level, ts, name, msg, error, fields }: Line): string {
  const record: Record<string, LogValue> = { level, ts: ts / 1000 };
  if (name) record.logger = name;
  record.msg = msg;
  if (error !== undefined) record.error = error;
  for (const [k, v] of Object.entries(fields)) {
    if (v !== undefined && !RESERVED.has(k)) record[k] = v;
  }
  return JSON.stringify(record);
}

function consoleLine({ level, ts, name, msg, error, fields }: Line): string {
  const parts = [new Date(ts).toISOString(), level.toUpperCase().padEnd(5)];
  if (name) parts.push(name);
  parts.push(msg);
  for (const [k, v] of Object.entries(fields)) {
    if (v !== undefined && !RESERVED.has(k)) parts.push(`${k}=${formatValue(v)}`);
  }
  if (error !== undefined) parts.push(`error=${formatValue(error)}`);
  return parts.join("\t");
}

function formatValue(v: LogValue): string {
  if (typeof v === "string") return /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v);
  return String(v);
}
