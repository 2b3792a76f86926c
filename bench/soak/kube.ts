/**
 * The driver's admin requests to the apiserver, which the soak itself restarts: a request that cannot reach
 * it, that it does not answer within 30 s, or that it answers 429 or 5xx, is sent again until `timeoutMs`
 * (default 2 min) has passed. Rule: a write sent again may have been applied the first time, so callers
 * treat AlreadyExists after a create and NotFound after a delete as done.
 */
import type { ControlPlane } from "../../tests/harness/control_plane.ts";

/** Options of {@linkcode kubeCall}. */
export interface KubeCallOptions {
  /** `content-type` of the body (default JSON; merge patches pass `application/merge-patch+json`). */
  contentType?: string;
  /** Statuses that count as done besides 2xx (e.g. 404 for a delete, 409 for a create). */
  ok?: number[];
  timeoutMs?: number;
}

/** One answer: the status and the parsed body (null when empty or not JSON). */
export interface KubeAnswer {
  status: number;
  body: unknown;
}

/** How long one attempt may wait for its whole answer. */
const ATTEMPT_MS = 30_000;

/** `method path` as admin, retried while the apiserver is away; throws on any other failure. */
export async function kubeCall(
  cp: ControlPlane,
  method: string,
  path: string,
  body?: unknown,
  opts: KubeCallOptions = {},
): Promise<KubeAnswer> {
  const deadline = Date.now() + (opts.timeoutMs ?? 120_000);
  let last = "";
  while (true) {
    try {
      // An apiserver that takes the connection and never answers (while it starts) counts as away.
      let timer: ReturnType<typeof setTimeout> | undefined;
      const { res, text } = await Promise.race([
        cp.api(method, path, body, opts.contentType ? { "content-type": opts.contentType } : {})
          .then(async (res) => ({ res, text: await res.text() })),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${ATTEMPT_MS} ms`)), ATTEMPT_MS);
        }),
      ]).finally(() => clearTimeout(timer));
      if (res.ok || opts.ok?.includes(res.status)) {
        let parsed: unknown = null;
        try {
          parsed = text ? JSON.parse(text) : null;
        } catch { /* not JSON */ }
        return { status: res.status, body: parsed };
      }
      last = `HTTP ${res.status}: ${text.slice(0, 300)}`;
      if (res.status !== 429 && res.status < 500) throw new Error(`${method} ${path}: ${last}`);
    } catch (e) {
      if (e instanceof Error && e.message.startsWith(`${method} ${path}:`)) throw e;
      last = e instanceof Error ? e.message : String(e);
    }
    if (Date.now() > deadline) throw new Error(`${method} ${path}: gave up: ${last}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** A list's items (cluster-wide when `path` has no namespace). */
export async function kubeList(cp: ControlPlane, path: string): Promise<Record<string, unknown>[]> {
  const { body } = await kubeCall(cp, "GET", path);
  const items = (body as { items?: unknown } | null)?.items;
  return Array.isArray(items) ? items as Record<string, unknown>[] : [];
}
