/**
 * Bounded reads of HTTP answers. A peer (a Backrest a Binding points at, a proxy, an apiserver's error
 * page) decides how many bytes it sends; the operator decides how many it reads. Rules: nothing reads past
 * its limit; past it the rest is cancelled (the connection is dropped, not drained) and the reader learns
 * it from an {@linkcode AnswerTooLargeError} or a cut text, never from running out of memory.
 */

/** An answer larger than its reader allows; nothing past `limit` bytes was read. */
export class AnswerTooLargeError extends Error {
  /** Always `"AnswerTooLargeError"`. */
  override readonly name = "AnswerTooLargeError";
  /** The reader's limit in bytes. */
  readonly limit: number;

  /** The message names the limit only, nothing of the answer. */
  constructor(limit: number) {
    super(`the answer is larger than ${limit} bytes; it was not read`);
    this.limit = limit;
  }
}

/**
 * `res` with a body that errors with {@linkcode AnswerTooLargeError} (and cancels the rest) once more than
 * `limit` bytes have come, so whoever reads it (a protocol library) stops there.
 */
export function limitBody(res: Response, limit: number): Response {
  const body = res.body;
  if (!body) return res;
  // A Content-Length within the limit bounds the body already: the HTTP client frames the answer by it and
  // hands on no byte past it (the rest of a lying peer's bytes are a broken connection, not a longer body).
  // Most answers are small and declared, so most skip the extra stream.
  const declared = res.headers.get("content-length");
  if (declared !== null && /^\d{1,15}$/.test(declared) && Number(declared) <= limit) return res;
  const reader = body.getReader();
  let seen = Number(declared ?? 0) > limit ? limit + 1 : 0;
  const stream = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (seen > limit) {
        await reader.cancel().catch(() => {});
        controller.error(new AnswerTooLargeError(limit));
        return;
      }
      const chunk = await reader.read();
      if (chunk.done) {
        controller.close();
        return;
      }
      seen += chunk.value.byteLength;
      if (seen > limit) {
        await reader.cancel().catch(() => {});
        controller.error(new AnswerTooLargeError(limit));
        return;
      }
      controller.enqueue(chunk.value);
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  });
  return new Response(stream, { status: res.status, statusText: res.statusText, headers: res.headers });
}

/** At most `limit` bytes of `res`'s body as text (the rest cancelled, unread); `""` without a body. */
export async function readTextCapped(res: Response, limit: number): Promise<string> {
  const body = res.body;
  if (!body) return "";
  const reader = body.getReader();
  const parts: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < limit) {
      const chunk = await reader.read();
      if (chunk.done) break;
      const room = limit - size;
      parts.push(chunk.value.byteLength > room ? chunk.value.subarray(0, room) : chunk.value);
      size += Math.min(chunk.value.byteLength, room);
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
  const all = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    all.set(p, at);
    at += p.byteLength;
  }
  return new TextDecoder().decode(all);
}

/** Whether `e` or one of its causes is an {@linkcode AnswerTooLargeError}. */
export function tooLarge(e: unknown): AnswerTooLargeError | undefined {
  for (let cur: unknown = e, depth = 0; cur instanceof Error && depth < 8; cur = cur.cause, depth++) {
    if (cur instanceof AnswerTooLargeError) return cur;
  }
  return undefined;
}
