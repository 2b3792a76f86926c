/**
 * The Kubernetes client over `fetch`: one `request()` that every verb goes through, so timeouts, abort,
 * auth refresh on 401 and error mapping live in one place. Rules: see `contract.ts`. Request bodies are
 * sent but never kept: errors carry the verb, path and the apiserver's `Status` only.
 */

import type {
  ApplyOptions,
  CallOptions,
  DeleteOptions,
  KubeClient,
  ListOptions,
  ListPage,
  NamespaceOption,
  PatchType,
  WatchEvent,
  WatchOptions,
  WriteOptions,
} from "./contract.ts";
import type { Connection } from "./connection.ts";
import { readTextCapped } from "../body.ts";
import { KubeError, parseRetryAfter } from "./errors.ts";
import { isRecord, type KubeObject, parsePartialObjectMetadata, parseStatus } from "./object.ts";
import { resourcePath, type ResourceType } from "./resource.ts";
import { parseWatchStream } from "./watch_stream.ts";

/** Options of {@linkcode createClient}. */
export interface ClientOptions {
  /** Default per-call timeout (default 30 s). */
  timeoutMs?: number | undefined;
  /** `User-Agent` header. */
  userAgent?: string | undefined;
}

const ACCEPT_JSON = "application/json";
/** How much of an error answer is read: a Status is a few hundred bytes. */
const ERROR_BODY_LIMIT = 64 * 1024;
const ACCEPT_META_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1";
const ACCEPT_META = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1";
const PATCH_TYPES: Record<PatchType | "apply", string> = {
  merge: "application/merge-patch+json",
  json: "application/json-patch+json",
  strategic: "application/strategic-merge-patch+json",
  apply: "application/apply-patch+yaml",
};

type Query = Record<string, string | number | boolean | undefined>;

interface RequestSpec {
  method: string;
  path: string;
  query?: Query | undefined;
  body?: unknown;
  contentType?: string | undefined;
  accept?: string | undefined;
  signal?: AbortSignal | undefined;
  timeoutMs?: number | undefined;
  /** For watches: the timeout covers only the time until the response headers arrive. */
  streaming?: boolean | undefined;
}

/** A client for `connection`. */
export function createClient(connection: Connection, options: ClientOptions = {}): KubeClient {
  return new FetchClient(connection, options);
}

function queryString(q: Query | undefined): string {
  if (!q) return "";
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) if (v !== undefined && v !== "") p.set(k, String(v));
  const s = p.toString();
  return s ? `?${s}` : "";
}

function nameOf(obj: KubeObject): string {
  const name = obj.metadata.name;
  if (!name) throw new TypeError("Object has no metadata.name");
  return name;
}

class FetchClient implements KubeClient {
  readonly #conn: Connection;
  readonly #timeoutMs: number;
  readonly #userAgent: string;

  constructor(connection: Connection, options: ClientOptions) {
    this.#conn = connection;
    this.#timeoutMs = options.timeoutMs ?? 30_000;
    this.#userAgent = options.userAgent ?? "backrest-volsync-operator";
  }

  /**
   * Sends `spec`. Resolves with the answer's text, read whole under the timeout; a streaming request (a
   * watch) resolves with the Response once its headers are in, the body left to the caller. The text is
   * handed on as it is, not wrapped in a new Response to be read again.
   */
  #request(spec: RequestSpec & { streaming: true }): Promise<Response>;
  #request(spec: RequestSpec): Promise<string>;
  async #request(spec: RequestSpec): Promise<Response | string> {
    const what = `${spec.method} ${spec.path}`;
    for (let attempt = 0;; attempt++) {
      // One controller per request, fed by the caller's signal and our timer. Not AbortSignal.any(): a
      // composite signal is only weakly held by its sources, so a long-lived watch could lose it to GC and
      // then ignore the caller's abort (seen as a shutdown that never finished).
      const abort = new AbortController();
      const timeoutMs = spec.timeoutMs ?? this.#timeoutMs;
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        abort.abort(new DOMException(`${what}: no answer within ${timeoutMs} ms`, "TimeoutError"));
      }, timeoutMs);
      const onCallerAbort = () => abort.abort(spec.signal?.reason);
      if (spec.signal?.aborted) onCallerAbort();
      else spec.signal?.addEventListener("abort", onCallerAbort, { once: true });
      const signal = abort.signal;
      let res: Response;
      let text = "";
      try {
        const { client, headers } = await this.#conn.prepare();
        const h: Record<string, string> = {
          ...headers,
          accept: spec.accept ?? ACCEPT_JSON,
          "user-agent": this.#userAgent,
        };
        let body: string | undefined;
        if (spec.body !== undefined) {
          body = JSON.stringify(spec.body);
          h["content-type"] = spec.contentType ?? ACCEPT_JSON;
        }
        res = await fetch(this.#conn.server + spec.path + queryString(spec.query), {
          method: spec.method,
          headers: h,
          ...(body === undefined ? {} : { body }),
          client,
          signal,
        });
        if (!res.ok) {
          // An error answer is read only as far as a Status needs (a proxy's page may be anything).
          text = await readTextCapped(res, ERROR_BODY_LIMIT);
        } else if (!spec.streaming) {
          // Read the whole body under the timeout; streaming callers read it under their own watchdog.
          text = await res.text();
        }
      } catch (e) {
        if (spec.signal?.aborted) throw spec.signal.reason;
        if (timedOut) {
          throw new KubeError(0, "Timeout", `${what}: no answer within ${timeoutMs} ms`, { cause: e });
        }
        throw new KubeError(0, "NetworkError", `${what}: ${e instanceof Error ? e.message : String(e)}`, {
          cause: e,
        });
      } finally {
        clearTimeout(timer); // for watches the headers have arrived; the caller's watchdog takes over
        // A watch keeps listening (the caller's abort must end its body); anything else is finished here,
        // and a long-lived caller signal must not collect one listener per request.
        if (!spec.streaming) spec.signal?.removeEventListener("abort", onCallerAbort);
      }
      if (res.ok) return spec.streaming ? res : text;
      if (res.status === 401 && attempt === 0) {
        this.#conn.invalidate(); // a rotated token or expired exec credential: reload once
        continue;
      }
      let status = parseStatus(undefined);
      try {
        status = parseStatus(JSON.parse(text));
      } catch { /* not a Status body */ }
      const reason = status.reason ?? (res.statusText || "Unknown");
      throw new KubeError(
        res.status,
        reason,
        `${what}: ${res.status} ${reason}: ${status.message ?? "(no message)"}`,
        {
          causes: status.causes,
          subject: status.subject,
          retryAfterSeconds: parseRetryAfter(res.headers.get("retry-after")) ?? status.retryAfterSeconds,
        },
      );
    }
  }

  async #json(spec: RequestSpec): Promise<unknown> {
    const text = await this.#request(spec);
    try {
      return JSON.parse(text);
    } catch (e) {
      throw new KubeError(200, "BadResponse", `${spec.method} ${spec.path}: answer is not JSON`, {
        cause: e,
      });
    }
  }

  #parse<T>(spec: RequestSpec, parse: (v: unknown) => T, v: unknown): T {
    try {
      return parse(v);
    } catch (e) {
      throw new KubeError(
        200,
        "BadResponse",
        `${spec.method} ${spec.path}: ${e instanceof Error ? e.message : String(e)}`,
        {
          cause: e,
        },
      );
    }
  }

  async get<T extends KubeObject>(
    type: ResourceType<T>,
    name: string,
    options: CallOptions & NamespaceOption = {},
  ): Promise<T | null> {
    const spec: RequestSpec = {
      method: "GET",
      path: resourcePath(type, { namespace: options.namespace, name }),
      signal: options.signal,
      timeoutMs: options.timeoutMs,
    };
    try {
      return this.#parse(spec, type.parse, await this.#json(spec));
    } catch (e) {
      if (e instanceof KubeError && e.status === 404) return null;
      throw e;
    }
  }

  async #list<T>(
    type: ResourceType<KubeObject>,
    options: ListOptions,
    accept: string,
    parse: (v: unknown) => T,
  ): Promise<ListPage<T>> {
    const spec: RequestSpec = {
      method: "GET",
      path: resourcePath(type, { namespace: options.namespace }),
      query: {
        labelSelector: options.labelSelector,
        fieldSelector: options.fieldSelector,
        limit: options.limit,
        continue: options.continue,
        resourceVersion: options.resourceVersion,
      },
      accept,
      signal: options.signal,
      timeoutMs: options.timeoutMs,
    };
    const body = await this.#json(spec);
    const bad = (why: string) => new KubeError(200, "BadResponse", `GET ${spec.path}: ${why}`);
    // An empty PartialObjectMetadataList comes without `items` at all (omitempty on the Go side).
    if (!isRecord(body) || !(Array.isArray(body.items) || body.items === undefined || body.items === null)) {
      throw bad("list has no items");
    }
    const items: unknown[] = Array.isArray(body.items) ? body.items : [];
    const meta = isRecord(body.metadata) ? body.metadata : {};
    if (typeof meta.resourceVersion !== "string") throw bad("list has no resourceVersion");
    const page: ListPage<T> = {
      items: items.map((i) => this.#parse(spec, parse, i)),
      resourceVersion: meta.resourceVersion,
    };
    if (typeof meta.continue === "string" && meta.continue) page.continue = meta.continue;
    if (typeof meta.remainingItemCount === "number") page.remainingItemCount = meta.remainingItemCount;
    return page;
  }

  list<T extends KubeObject>(type: ResourceType<T>, options: ListOptions = {}): Promise<ListPage<T>> {
    return this.#list(type, options, ACCEPT_JSON, type.parse);
  }

  async listAll<T extends KubeObject>(
    type: ResourceType<T>,
    options: ListOptions = {},
  ): Promise<ListPage<T>> {
    const first = await this.list(type, { limit: 500, ...options });
    const items = first.items;
    let next = first.continue;
    while (next) {
      const page = await this.list(type, {
        limit: 500,
        ...options,
        continue: next,
        resourceVersion: undefined,
      });
      items.push(...page.items);
      next = page.continue;
    }
    return { items, resourceVersion: first.resourceVersion };
  }

  listMetadata(type: ResourceType, options: ListOptions = {}): Promise<ListPage<KubeObject>> {
    return this.#list(type, options, ACCEPT_META_LIST, parsePartialObjectMetadata);
  }

  async #write<T extends KubeObject>(
    type: ResourceType<T>,
    method: string,
    path: string,
    body: unknown,
    options: WriteOptions & { force?: boolean | undefined },
    contentType?: string,
  ): Promise<T> {
    const spec: RequestSpec = {
      method,
      path,
      body,
      contentType,
      query: {
        fieldManager: options.fieldManager,
        dryRun: options.dryRun ? "All" : undefined,
        force: options.force,
      },
      signal: options.signal,
      timeoutMs: options.timeoutMs,
    };
    return this.#parse(spec, type.parse, await this.#json(spec));
  }

  create<T extends KubeObject>(
    type: ResourceType<T>,
    obj: KubeObject,
    options: WriteOptions = {},
  ): Promise<T> {
    const path = resourcePath(type, { namespace: obj.metadata.namespace });
    return this.#write(type, "POST", path, obj, options);
  }

  update<T extends KubeObject>(
    type: ResourceType<T>,
    obj: KubeObject,
    options: WriteOptions = {},
  ): Promise<T> {
    const path = resourcePath(type, { namespace: obj.metadata.namespace, name: nameOf(obj) });
    return this.#write(type, "PUT", path, obj, options);
  }

  patch<T extends KubeObject>(
    type: ResourceType<T>,
    name: string,
    patch: unknown,
    options: WriteOptions & NamespaceOption & { patchType?: PatchType | undefined } = {},
  ): Promise<T> {
    const path = resourcePath(type, { namespace: options.namespace, name });
    return this.#write(type, "PATCH", path, patch, options, PATCH_TYPES[options.patchType ?? "merge"]);
  }

  apply<T extends KubeObject>(type: ResourceType<T>, obj: KubeObject, options: ApplyOptions): Promise<T> {
    const path = resourcePath(type, { namespace: obj.metadata.namespace, name: nameOf(obj) });
    return this.#write(type, "PATCH", path, obj, options, PATCH_TYPES.apply);
  }

  updateStatus<T extends KubeObject>(
    type: ResourceType<T>,
    obj: KubeObject,
    options: WriteOptions = {},
  ): Promise<T> {
    const path = resourcePath(type, {
      namespace: obj.metadata.namespace,
      name: nameOf(obj),
      subresource: "status",
    });
    return this.#write(type, "PUT", path, obj, options);
  }

  patchStatus<T extends KubeObject>(
    type: ResourceType<T>,
    name: string,
    patch: unknown,
    options: WriteOptions & NamespaceOption & { patchType?: PatchType | undefined } = {},
  ): Promise<T> {
    const path = resourcePath(type, { namespace: options.namespace, name, subresource: "status" });
    return this.#write(type, "PATCH", path, patch, options, PATCH_TYPES[options.patchType ?? "merge"]);
  }

  applyStatus<T extends KubeObject>(
    type: ResourceType<T>,
    obj: KubeObject,
    options: ApplyOptions,
  ): Promise<T> {
    const path = resourcePath(type, {
      namespace: obj.metadata.namespace,
      name: nameOf(obj),
      subresource: "status",
    });
    return this.#write(type, "PATCH", path, obj, options, PATCH_TYPES.apply);
  }

  async delete(type: ResourceType, name: string, options: DeleteOptions = {}): Promise<boolean> {
    const body: Record<string, unknown> = { apiVersion: "v1", kind: "DeleteOptions" };
    if (options.propagationPolicy) body.propagationPolicy = options.propagationPolicy;
    if (options.gracePeriodSeconds !== undefined) body.gracePeriodSeconds = options.gracePeriodSeconds;
    if (options.preconditions) body.preconditions = options.preconditions;
    try {
      await this.#request({
        method: "DELETE",
        path: resourcePath(type, { namespace: options.namespace, name }),
        body,
        signal: options.signal,
        timeoutMs: options.timeoutMs,
      });
      return true;
    } catch (e) {
      if (e instanceof KubeError && e.status === 404) return false;
      throw e;
    }
  }

  async *#watch<T extends KubeObject>(
    type: ResourceType<KubeObject>,
    options: WatchOptions,
    accept: string,
    parse: (v: unknown) => T,
  ): AsyncGenerator<WatchEvent<T>> {
    const path = resourcePath(type, { namespace: options.namespace });
    const res = await this.#request({
      method: "GET",
      path,
      query: {
        watch: true,
        allowWatchBookmarks: options.allowWatchBookmarks ?? true,
        resourceVersion: options.resourceVersion,
        timeoutSeconds: options.timeoutSeconds,
        labelSelector: options.labelSelector,
        fieldSelector: options.fieldSelector,
      },
      accept,
      signal: options.signal,
      timeoutMs: options.timeoutMs,
      streaming: true,
    });
    options.onOpen?.();
    if (!res.body) return;
    try {
      yield* parseWatchStream(res.body, parse);
    } catch (e) {
      if (options.signal?.aborted) throw options.signal.reason;
      if (e instanceof SyntaxError) {
        throw new KubeError(200, "BadResponse", `GET ${path} (watch): ${e.message}`, { cause: e });
      }
      throw new KubeError(0, "NetworkError", `GET ${path} (watch): stream broke`, { cause: e });
    }
  }

  watch<T extends KubeObject>(
    type: ResourceType<T>,
    options: WatchOptions = {},
  ): AsyncIterable<WatchEvent<T>> {
    return this.#watch(type, options, ACCEPT_JSON, type.parse);
  }

  watchMetadata(type: ResourceType, options: WatchOptions = {}): AsyncIterable<WatchEvent<KubeObject>> {
    return this.#watch(type, options, ACCEPT_META, parsePartialObjectMetadata);
  }
}
