/**
 * A stand-in for the Kubernetes API, for unit tests (test code, never imported by the operator): `fakeKube`
 * implements the `KubeClient` contract over `MemoryStore`s, one per resource. A reconciler's unit test hands
 * the same stores to the reconciler as its informer caches, so a write is seen by the next reconcile as its
 * watch event would make it seen. The operator's wiring tests keep the stores as the apiserver's storage
 * instead and let the operator's informers list and watch them: every write made through the stand-in (or
 * through its `put` / `remove`, a client other than the operator) becomes an ADDED, MODIFIED or DELETED
 * event for the watches open on its resource. It answers like the apiserver where the operator relies on it
 * (one resourceVersion counter for every write, a uid and creationTimestamp per created object, `null` /
 * `false` for what is gone, 409 on a name taken, a stale resourceVersion or a failed uid or resourceVersion
 * precondition, a merge patch of an object or of its status, lists at a resourceVersion a watch continues
 * from, label selectors `k=v`, `k!=v`, `k`, field selectors on `metadata.name` and `metadata.namespace`,
 * metadata-only lists and watches that carry no data) and records every call. It is not the apiserver: no
 * admission, no defaults, no finalizers, no garbage collector, no bookmarks, no 410 (every event is kept),
 * continue tokens that are offsets rather than a snapshot, watches that stay open until their signal aborts
 * or an `outage` of their resource; any verb, patch type or selector it does not implement rejects, so code
 * that starts using one fails its tests.
 */
import { sameJSON } from "../json.ts";
import {
  isRecord,
  type KubeClient,
  KubeError,
  type KubeObject,
  type ListPage,
  objectKey,
  parsePartialObjectMetadata,
  type WatchEvent,
} from "../kube/mod.ts";
import type { MemoryStore } from "../runtime/mod.ts";

/** One call the fake KubeClient received. */
export interface KubeCall {
  verb: "get" | "list" | "watch" | "create" | "update" | "patch" | "patchStatus" | "delete";
  /** The resource's plural name, e.g. `backrestvolsyncbindings`. */
  resource: string;
  namespace: string | undefined;
  /** The object's name; "" for lists and watches. */
  name: string;
  /** The object or patch sent (writes), the preconditions (delete), the selectors (list, watch). */
  body?: unknown;
}

/** The record of a call of `verb` on the object `name` of `type`. */
function callOf(
  verb: KubeCall["verb"],
  type: { resource: string },
  namespace: string | undefined,
  name: string,
  body: unknown,
): KubeCall {
  return { verb, resource: type.resource, namespace, name, body };
}

/** The verbs that only read. */
const READS: ReadonlySet<KubeCall["verb"]> = new Set(["get", "list", "watch"]);

/** The fake KubeClient and what it records. */
export interface FakeKube {
  client: KubeClient;
  /** Every call, in order. */
  calls: KubeCall[];
  /** The calls that write (everything but `get`, `list` and `watch`), in order. */
  writes(): KubeCall[];
  /** The next resourceVersion, for objects a test puts in a store itself. */
  nextResourceVersion(): string;
  /** Makes every later call of `verb` reject with `error` (undefined: answer again). */
  fail(verb: KubeCall["verb"], error: Error | undefined): void;
  /**
   * Holds every later call of `verb` (a write, or `get`) unanswered, as a slow apiserver would, until the
   * returned function is called; then they go on in order.
   */
  hold(verb: KubeCall["verb"]): () => void;
  /**
   * Holds back what the watches of `type` hear, as a watch lagging behind the apiserver would, until the
   * returned function is called; then they hear it all, in order.
   */
  lag(type: { resource: string }): () => void;
  /**
   * An outage of `type`'s storage, as an apiserver restarting serves it: its open watches break (a dropped
   * connection), its lists and new watches are refused with 429 TooManyRequests; writes still land. Until
   * the returned function is called.
   */
  outage(type: { resource: string }): () => void;
  /**
   * Writes `obj` as a client other than the one under test would (a user's kubectl, VolSync): creates it,
   * or replaces the stored object keeping its uid and creationTimestamp, and its status unless `obj`
   * carries one. Watches hear it; `calls` does not record it. Returns the stored object.
   */
  put(type: { resource: string }, obj: KubeObject): KubeObject;
  /** Deletes `namespace/name` as another client would; watches hear it. False when it was not there. */
  remove(type: { resource: string }, namespace: string | undefined, name: string): boolean;
  /** Watches open now (a watch closes when its signal aborts). */
  readonly openWatches: number;
  /**
   * Forgets what the fake recorded so far: the calls, and the changes watches replay (as a compaction
   * would). For a test measuring the operator's own memory, once every watch has heard everything.
   */
  forget(): void;
}

/** A stored change, as watches replay it. */
interface Change {
  rv: number;
  type: "ADDED" | "MODIFIED" | "DELETED";
  object: KubeObject;
  /** The object before a MODIFIED (to tell selector transitions). */
  old?: KubeObject | undefined;
}

type Type = { resource: string; parse?: (value: unknown) => KubeObject };
type Where = { namespace?: string | undefined };
type Selection = Where & { labelSelector?: string | undefined; fieldSelector?: string | undefined };

/** A predicate for `selector` (the apiserver's label selector syntax, equality and existence only). */
function labelMatcher(selector: string | undefined): (obj: KubeObject) => boolean {
  if (!selector) return () => true;
  const terms = selector.split(",").map((t) => {
    const m = /^\s*(!?)([\w./-]+)\s*(?:(==|=|!=)\s*([\w.-]*))?\s*$/.exec(t);
    if (!m || (m[1] && m[3])) throw new Error(`fake KubeClient: label selector "${selector}" not understood`);
    const [, not, key, op, value] = m;
    return (labels: Record<string, string>) => {
      const has = Object.hasOwn(labels, key!);
      if (!op) return not ? !has : has;
      return op === "!=" ? labels[key!] !== value : labels[key!] === value;
    };
  });
  return (obj) => terms.every((t) => t(obj.metadata.labels ?? {}));
}

/** A predicate for `selector` (field selectors on metadata.name and metadata.namespace only). */
function fieldMatcher(selector: string | undefined): (obj: KubeObject) => boolean {
  if (!selector) return () => true;
  const terms = selector.split(",").map((t) => {
    const m = /^\s*metadata\.(name|namespace)\s*(==|=|!=)\s*([\w.-]*)\s*$/.exec(t);
    if (!m) throw new Error(`fake KubeClient: field selector "${selector}" not understood`);
    const [, field, op, value] = m;
    return (obj: KubeObject) => {
      const v = field === "name" ? obj.metadata.name : obj.metadata.namespace;
      return op === "!=" ? v !== value : v === value;
    };
  });
  return (obj) => terms.every((t) => t(obj));
}

/** A predicate for the namespace and selectors of a list or watch. */
function matcher(o: Selection | undefined): (obj: KubeObject) => boolean {
  const labels = labelMatcher(o?.labelSelector);
  const fields = fieldMatcher(o?.fieldSelector);
  const ns = o?.namespace;
  return (obj) => (ns === undefined || obj.metadata.namespace === ns) && labels(obj) && fields(obj);
}

/** RFC 7386 JSON merge patch of `target` by `patch` (a new value; `target` is left alone). */
function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isRecord(patch)) return structuredClone(patch);
  const out: Record<string, unknown> = isRecord(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

/** A KubeClient stand-in over `stores`, keyed by resource plural (`secrets`, `backrestvolsyncbindings`). */
export function fakeKube(stores: Record<string, MemoryStore<KubeObject>>): FakeKube {
  const calls: KubeCall[] = [];
  const failures = new Map<KubeCall["verb"], Error>();
  const holds = new Map<KubeCall["verb"], Promise<void>>();
  const history = new Map<string, Change[]>();
  const listeners = new Map<string, Set<() => void>>();
  const lagging = new Set<string>();
  const down = new Set<string>();
  const refused = (resource: string) =>
    new KubeError(429, "TooManyRequests", `${resource}: storage is (re)initializing`);
  let openWatches = 0;
  let rv = 10;
  let uids = 0;
  const nextResourceVersion = () => String(rv++);
  /** The resourceVersion of the latest write (a list's). */
  const currentResourceVersion = () => String(rv - 1);
  const storeOf = (resource: string) => {
    const store = stores[resource];
    if (!store) throw new Error(`fake KubeClient: no store for ${resource}`);
    return store;
  };
  const call = (c: KubeCall) => {
    calls.push(c);
    const failure = failures.get(c.verb);
    if (failure) throw failure;
    return storeOf(c.resource);
  };
  const notFound = (c: KubeCall) => new KubeError(404, "NotFound", `${c.resource} "${c.name}" not found`);
  const conflict = (c: KubeCall, why: string) =>
    new KubeError(409, "Conflict", `Operation cannot be fulfilled on ${c.resource} "${c.name}": ${why}`);
  /** Runs `fn` now, or once the hold on `verb` is let go (`hold`). */
  const answer = <T>(verb: KubeCall["verb"], fn: () => T): Promise<T> => {
    const held = holds.get(verb);
    return held ? held.then(fn) : Promise.try(fn);
  };
  const unexpected = (verb: string) => () => Promise.reject(new Error(`fake KubeClient: unexpected ${verb}`));

  /** Stores `obj` (or deletes it) and tells the watches of `resource`. */
  const commit = (resource: string, type: Change["type"], obj: KubeObject) => {
    const store = storeOf(resource);
    const old = store.get(objectKey(obj));
    if (type === "DELETED") store.delete(obj);
    else store.upsert(obj);
    const changes = history.get(resource) ?? [];
    history.set(resource, changes);
    changes.push({ rv: Number(obj.metadata.resourceVersion), type, object: obj, old });
    for (const wake of listeners.get(resource) ?? []) wake();
    return obj;
  };
  const created = (obj: KubeObject): KubeObject => {
    const made: KubeObject = structuredClone(obj);
    made.metadata = {
      ...made.metadata,
      uid: `uid-${++uids}`,
      resourceVersion: nextResourceVersion(),
      generation: 1,
      creationTimestamp: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
    };
    return made;
  };
  /** `next` stored in place of `old`: same identity, a new resourceVersion, generation bumped by spec. */
  const replaced = (old: KubeObject, next: KubeObject): KubeObject => ({
    ...next,
    metadata: {
      ...next.metadata,
      uid: old.metadata.uid,
      ...(old.metadata.creationTimestamp ? { creationTimestamp: old.metadata.creationTimestamp } : {}),
      resourceVersion: nextResourceVersion(),
      generation: (old.metadata.generation ?? 1) + (sameJSON(old.spec, next.spec) ? 0 : 1),
    },
  });
  /** The status subresource is written apart: a write of the object keeps the stored status. */
  const keepStatus = (old: KubeObject, obj: KubeObject): KubeObject => {
    const { status: _ignored, ...rest } = structuredClone(obj);
    return { ...rest, ...(old.status !== undefined ? { status: old.status } : {}) };
  };
  const parsed = (type: Type, obj: KubeObject, metadataOnly: boolean): KubeObject =>
    metadataOnly
      ? parsePartialObjectMetadata(structuredClone(obj))
      : (type.parse ?? ((v: unknown) => v as KubeObject))(structuredClone(obj));

  const list = (type: Type, o: Selection & { limit?: number; continue?: string } = {}, meta = false) =>
    Promise.try((): ListPage<KubeObject> => {
      const { signal: _s, ...selectors } = o as typeof o & { signal?: unknown };
      const store = call({
        verb: "list",
        resource: type.resource,
        namespace: o.namespace,
        name: "",
        body: selectors,
      });
      if (down.has(type.resource)) throw refused(type.resource);
      const match = matcher(o);
      const all = store.list().filter(match).sort((a, b) => objectKey(a).localeCompare(objectKey(b)));
      const from = o.continue ? Number(o.continue) : 0;
      const to = o.limit ? from + o.limit : all.length;
      return {
        items: all.slice(from, to).map((obj) => parsed(type, obj, meta)),
        resourceVersion: currentResourceVersion(),
        ...(to < all.length ? { continue: String(to) } : {}),
      };
    });

  async function* watch(
    type: Type,
    o: Selection & { resourceVersion?: string; signal?: AbortSignal; onOpen?: () => void } = {},
    meta = false,
  ): AsyncGenerator<WatchEvent<KubeObject>> {
    const { signal, onOpen, ...selectors } = o;
    call({ verb: "watch", resource: type.resource, namespace: o.namespace, name: "", body: selectors });
    if (down.has(type.resource)) throw refused(type.resource);
    const match = matcher(o);
    if (signal?.aborted) return;
    let wake: (() => void) | undefined;
    const poke = () => wake?.();
    const waiting = listeners.get(type.resource) ?? new Set();
    listeners.set(type.resource, waiting);
    waiting.add(poke);
    signal?.addEventListener("abort", poke);
    openWatches++;
    onOpen?.();
    try {
      let since: number;
      if (!o.resourceVersion || o.resourceVersion === "0") {
        // No version: the current objects as ADDED first, then what follows.
        since = Number(currentResourceVersion());
        for (const obj of storeOf(type.resource).list().filter(match)) {
          yield { type: "ADDED", object: parsed(type, obj, meta) };
        }
      } else since = Number(o.resourceVersion);
      while (!signal?.aborted) {
        if (down.has(type.resource)) throw new KubeError(0, "NetworkError", "watch: stream broke");
        const due = lagging.has(type.resource)
          ? []
          : (history.get(type.resource) ?? []).filter((c) => c.rv > since);
        for (const c of due) {
          since = c.rv;
          const now = match(c.object);
          const before = c.old !== undefined && match(c.old);
          // A selector the object enters or leaves turns its change into an ADDED or a DELETED.
          const seen = c.type === "MODIFIED"
            ? (now && before ? "MODIFIED" : now ? "ADDED" : before ? "DELETED" : undefined)
            : now
            ? c.type
            : undefined;
          if (seen) yield { type: seen, object: parsed(type, c.object, meta) };
          if (signal?.aborted) return;
        }
        if (due.length === 0) await new Promise<void>((resolve) => wake = resolve);
        wake = undefined;
      }
    } finally {
      openWatches--;
      waiting.delete(poke);
      signal?.removeEventListener("abort", poke);
    }
  }

  const client = {
    get: (type: Type, name: string, o?: Where) =>
      answer("get", () => {
        const store = call({ verb: "get", resource: type.resource, namespace: o?.namespace, name });
        return store.getByName(o?.namespace, name) ?? null;
      }),
    list: (type: Type, o?: Selection) => list(type, o),
    listAll: (type: Type, o?: Selection) => list(type, { ...o, limit: 0 }),
    listMetadata: (type: Type, o?: Selection) => list(type, o, true),
    watch: (type: Type, o?: Selection) => watch(type, o),
    watchMetadata: (type: Type, o?: Selection) => watch(type, o, true),
    create: (type: Type, obj: KubeObject) =>
      answer("create", () => {
        const c = callOf("create", type, obj.metadata.namespace, obj.metadata.name ?? "", obj);
        const store = call(c);
        if (store.get(objectKey(obj))) {
          throw new KubeError(409, "AlreadyExists", `"${c.name}" already exists`);
        }
        return commit(type.resource, "ADDED", created(obj));
      }),
    update: (type: Type, obj: KubeObject) =>
      answer("update", () => {
        const c = callOf("update", type, obj.metadata.namespace, obj.metadata.name ?? "", obj);
        const store = call(c);
        const old = store.get(objectKey(obj));
        if (!old) throw notFound(c);
        const sent = obj.metadata.resourceVersion;
        if (sent !== undefined && sent !== old.metadata.resourceVersion) {
          throw conflict(c, "the object has been modified");
        }
        return commit(type.resource, "MODIFIED", replaced(old, keepStatus(old, obj)));
      }),
    patch: (type: Type, name: string, patch: unknown, o?: Where & { patchType?: string }) =>
      answer("patch", () => {
        const c = callOf("patch", type, o?.namespace, name, patch);
        const store = call(c);
        if ((o?.patchType ?? "merge") !== "merge") {
          throw new Error(`fake KubeClient: unexpected ${o?.patchType} patch`);
        }
        const old = store.getByName(o?.namespace, name);
        if (!old) throw notFound(c);
        const sent = isRecord(patch) && isRecord(patch.metadata) ? patch.metadata.resourceVersion : undefined;
        if (sent !== undefined && sent !== old.metadata.resourceVersion) {
          throw conflict(c, "the object has been modified");
        }
        const next = mergePatch(old, patch) as KubeObject;
        return commit(type.resource, "MODIFIED", replaced(old, keepStatus(old, next)));
      }),
    patchStatus: (type: Type, name: string, patch: unknown, o?: Where) =>
      answer("patchStatus", () => {
        const c = callOf("patchStatus", type, o?.namespace, name, patch);
        const store = call(c);
        const obj = store.getByName(o?.namespace, name);
        if (!obj) throw notFound(c);
        const status = isRecord(patch) && isRecord(patch.status) ? patch.status : {};
        const next: Record<string, unknown> = { ...(isRecord(obj.status) ? obj.status : {}) };
        for (const [k, v] of Object.entries(status)) {
          if (v === null) delete next[k];
          else next[k] = v;
        }
        return commit(type.resource, "MODIFIED", {
          ...obj,
          metadata: { ...obj.metadata, resourceVersion: nextResourceVersion() },
          status: next,
        });
      }),
    delete: (
      type: Type,
      name: string,
      o?: Where & { preconditions?: { uid?: string | undefined; resourceVersion?: string | undefined } },
    ) =>
      answer("delete", () => {
        const c = callOf("delete", type, o?.namespace, name, o?.preconditions);
        const store = call(c);
        const obj = store.getByName(o?.namespace, name);
        if (!obj) return false;
        const { uid, resourceVersion } = o?.preconditions ?? {};
        if (uid !== undefined && uid !== obj.metadata.uid) throw conflict(c, "Precondition failed: UID");
        if (resourceVersion !== undefined && resourceVersion !== obj.metadata.resourceVersion) {
          throw conflict(c, "Precondition failed: ResourceVersion");
        }
        commit(type.resource, "DELETED", {
          ...obj,
          metadata: { ...obj.metadata, resourceVersion: nextResourceVersion() },
        });
        return true;
      }),
    apply: unexpected("apply"),
    updateStatus: unexpected("updateStatus"),
    applyStatus: unexpected("applyStatus"),
  } as unknown as KubeClient; // the generic signatures, answered with plain KubeObjects

  return {
    client,
    calls,
    writes: () => calls.filter((c) => !READS.has(c.verb)),
    nextResourceVersion,
    fail: (verb, error) => error ? failures.set(verb, error) : failures.delete(verb),
    hold: (verb) => {
      let go = () => {};
      holds.set(verb, new Promise<void>((resolve) => go = resolve));
      return () => {
        holds.delete(verb);
        go();
      };
    },
    lag: (type) => {
      lagging.add(type.resource);
      return () => {
        lagging.delete(type.resource);
        for (const wake of listeners.get(type.resource) ?? []) wake();
      };
    },
    outage: (type) => {
      down.add(type.resource);
      for (const wake of listeners.get(type.resource) ?? []) wake();
      return () => {
        down.delete(type.resource);
      };
    },
    put: (type, obj) => {
      const old = storeOf(type.resource).get(objectKey(obj));
      if (!old) return commit(type.resource, "ADDED", created(obj));
      const next = obj.status !== undefined ? structuredClone(obj) : keepStatus(old, obj);
      return commit(type.resource, "MODIFIED", replaced(old, next));
    },
    remove: (type, namespace, name) => {
      const obj = storeOf(type.resource).getByName(namespace, name);
      if (!obj) return false;
      commit(type.resource, "DELETED", {
        ...obj,
        metadata: { ...obj.metadata, resourceVersion: nextResourceVersion() },
      });
      return true;
    },
    get openWatches() {
      return openWatches;
    },
    forget: () => {
      calls.length = 0;
      history.clear();
    },
  };
}
