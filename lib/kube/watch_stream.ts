/**
 * The watch wire format: newline-delimited JSON `{type, object}` records. Rules: a malformed line ends
 * the stream with a `SyntaxError` (the caller restarts the watch from its last resourceVersion); a BOOKMARK
 * keeps only its resourceVersion; an ERROR keeps only the Status fields.
 */

import type { WatchEvent } from "./contract.ts";
import { isRecord, type KubeObject, parseStatus } from "./object.ts";

/** Splits a byte stream into lines (without the newline), decoding UTF-8 across chunk borders. */
export async function* readLines(body: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) break;
      buffered += value;
      let nl: number;
      while ((nl = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        if (line.trim()) yield line;
      }
    }
    if (buffered.trim()) yield buffered;
  } finally {
    await reader.cancel().catch(() => {});
  }
}

/** Parses one watch line into an event, typing its object with `parse`. */
export function parseWatchLine<T extends KubeObject>(line: string, parse: (v: unknown) => T): WatchEvent<T> {
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch (e) {
    throw new SyntaxError("Malformed watch event: not JSON", { cause: e });
  }
  if (!isRecord(raw) || typeof raw.type !== "string") throw new SyntaxError("Malformed watch event: no type");
  switch (raw.type) {
    case "ADDED":
    case "MODIFIED":
    case "DELETED":
      try {
        return { type: raw.type, object: parse(raw.object) };
      } catch (e) {
        throw new SyntaxError(`Malformed watch event: ${e instanceof Error ? e.message : String(e)}`, {
          cause: e,
        });
      }
    case "BOOKMARK": {
      const meta = isRecord(raw.object) && isRecord(raw.object.metadata) ? raw.object.metadata : undefined;
      const rv = meta?.resourceVersion;
      if (typeof rv !== "string") throw new SyntaxError("Malformed watch bookmark: no resourceVersion");
      return { type: "BOOKMARK", resourceVersion: rv };
    }
    case "ERROR":
      return { type: "ERROR", status: parseStatus(raw.object) };
    default:
      throw new SyntaxError(`Malformed watch event: unknown type ${raw.type}`);
  }
}

/** The events of a watch response body. */
export async function* parseWatchStream<T extends KubeObject>(
  body: ReadableStream<Uint8Array>,
  parse: (v: unknown) => T,
): AsyncGenerator<WatchEvent<T>> {
  for await (const line of readLines(body)) yield parseWatchLine(line, parse);
}
