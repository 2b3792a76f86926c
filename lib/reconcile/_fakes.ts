/**
 * Stand-ins the reconcilers' unit tests share (test code, never imported by the operator):
 * - `fakeKube`: a stand-in for the KubeClient whose objects live in the same `MemoryStore`s the reconciler
 *   reads as its informer caches, so a write is seen by the next reconcile as its watch event would make it
 *   seen. It answers like the apiserver where the reconcilers rely on it (a new resourceVersion per write,
 *   a uid per created object, `null` / `false` for what is gone, 409 on a name taken, a stale
 *   resourceVersion or a failed uid precondition, a merge patch of the status) and records every call. It is
 *   not the apiserver: no admission, no defaults, no finalizers, no garbage collector; any verb it does not
 *   implement rejects, so a reconcile that starts using one fails its tests.
 * - `fakeBackrest`: a stand-in for the Backrest clients (every call recorded, repos kept by id).
 * - `eventLog`: a stand-in for the Event recorder (an EventSink that keeps what it is given).
 * - `reconcileContext`: what a controller hands a reconcile (no logging, a signal that never aborts).
 */
import type { BackrestApi, BackrestConnection, DesiredRepo } from "../backrest/mod.ts";
import { isRecord, type KubeClient, KubeError, type KubeObject, objectKey } from "../kube/mod.ts";
import { nullLogger } from "../observe/mod.ts";
import type { MemoryStore, ReconcileContext } from "../runtime/mod.ts";
import type { EventSink } from "./binding_status.ts";
import { sameJSON } from "./same.ts";

/** One call the fake KubeClient received. */
export interface KubeCall {
  verb: "get" | "create" | "update" | "patchStatus" | "delete";
  /** The resource's plural name, e.g. `backrestvolsyncbindings`. */
  resource: string;
  namespace: string | undefined;
  name: string;
  /** The object or patch sent (writes), the preconditions (delete). */
  body?: unknown;
}

/** The fake KubeClient and what it records. */
export interface FakeKube {
  client: KubeClient;
  /** Every call, in order. */
  calls: KubeCall[];
  /** The calls that write (everything but `get`), in order. */
  writes(): KubeCall[];
  /** The next resourceVersion, for objects a test puts in a store itself. */
  nextResourceVersion(): string;
  /** Makes every later call of `verb` reject with `error` (undefined: answer again). */
  fail(verb: KubeCall["verb"], error: Error | undefined): void;
}

/** A KubeClient stand-in over `stores`, keyed by resource plural (`secrets`, `backrestvolsyncbindings`). */
export function fakeKube(stores: Record<string, MemoryStore<KubeObject>>): FakeKube {
  const calls: KubeCall[] = [];
  const failures = new Map<KubeCall["verb"], Error>();
  let rv = 10;
  let uids = 0;
  const nextResourceVersion = () => String(rv++);
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
  const unexpected = (verb: string) => () => Promise.reject(new Error(`fake KubeClient: unexpected ${verb}`));
  type Type = { resource: string };
  type Where = { namespace?: string | undefined };

  const client = {
    get: (type: Type, name: string, o?: Where) =>
      Promise.try(() => {
        const store = call({ verb: "get", resource: type.resource, namespace: o?.namespace, name });
        return store.getByName(o?.namespace, name) ?? null;
      }),
    create: (type: Type, obj: KubeObject) =>
      Promise.try(() => {
        const c: KubeCall = {
          verb: "create",
          resource: type.resource,
          namespace: obj.metadata.namespace,
          name: obj.metadata.name ?? "",
          body: obj,
        };
        const store = call(c);
        if (store.get(objectKey(obj))) {
          throw new KubeError(409, "AlreadyExists", `"${c.name}" already exists`);
        }
        const created: KubeObject = structuredClone(obj);
        created.metadata = {
          ...created.metadata,
          uid: `uid-${++uids}`,
          resourceVersion: nextResourceVersion(),
          generation: 1,
        };
        store.upsert(created);
        return created;
      }),
    update: (type: Type, obj: KubeObject) =>
      Promise.try(() => {
        const c: KubeCall = {
          verb: "update",
          resource: type.resource,
          namespace: obj.metadata.namespace,
          name: obj.metadata.name ?? "",
          body: obj,
        };
        const store = call(c);
        const old = store.get(objectKey(obj));
        if (!old) throw notFound(c);
        const sent = obj.metadata.resourceVersion;
        if (sent !== undefined && sent !== old.metadata.resourceVersion) {
          throw conflict(c, "the object has been modified");
        }
        // The status subresource is written apart: an update keeps the stored status.
        const { status: _ignored, ...rest } = structuredClone(obj);
        const updated: KubeObject = {
          ...rest,
          ...(old.status !== undefined ? { status: old.status } : {}),
          metadata: {
            ...rest.metadata,
            uid: old.metadata.uid,
            resourceVersion: nextResourceVersion(),
            generation: (old.metadata.generation ?? 1) + (sameJSON(old.spec, obj.spec) ? 0 : 1),
          },
        };
        store.upsert(updated);
        return updated;
      }),
    patchStatus: (type: Type, name: string, patch: unknown, o?: Where) =>
      Promise.try(() => {
        const c: KubeCall = {
          verb: "patchStatus",
          resource: type.resource,
          namespace: o?.namespace,
          name,
          body: patch,
        };
        const store = call(c);
        const obj = store.getByName(o?.namespace, name);
        if (!obj) throw notFound(c);
        const status = isRecord(patch) && isRecord(patch.status) ? patch.status : {};
        const next: Record<string, unknown> = { ...(isRecord(obj.status) ? obj.status : {}) };
        for (const [k, v] of Object.entries(status)) {
          if (v === null) delete next[k];
          else next[k] = v;
        }
        const updated = {
          ...obj,
          metadata: { ...obj.metadata, resourceVersion: nextResourceVersion() },
          status: next,
        };
        store.upsert(updated);
        return updated;
      }),
    delete: (
      type: Type,
      name: string,
      o?: Where & { preconditions?: { uid?: string | undefined } | undefined },
    ) =>
      Promise.try(() => {
        const c: KubeCall = {
          verb: "delete",
          resource: type.resource,
          namespace: o?.namespace,
          name,
          body: o?.preconditions,
        };
        const store = call(c);
        const obj = store.getByName(o?.namespace, name);
        if (!obj) return false;
        const uid = o?.preconditions?.uid;
        if (uid !== undefined && uid !== obj.metadata.uid) throw conflict(c, "Precondition failed: UID");
        store.delete(obj);
        return true;
      }),
    list: unexpected("list"),
    listAll: unexpected("listAll"),
    listMetadata: unexpected("listMetadata"),
    patch: unexpected("patch"),
    apply: unexpected("apply"),
    updateStatus: unexpected("updateStatus"),
    applyStatus: unexpected("applyStatus"),
    watch: () => {
      throw new Error("fake KubeClient: unexpected watch");
    },
    watchMetadata: () => {
      throw new Error("fake KubeClient: unexpected watchMetadata");
    },
  } as unknown as KubeClient; // the generic signatures, answered with plain KubeObjects

  return {
    client,
    calls,
    writes: () => calls.filter((c) => c.verb !== "get"),
    nextResourceVersion,
    fail: (verb, error) => error ? failures.set(verb, error) : failures.delete(verb),
  };
}

/** The fake Backrest and what it records. */
export interface FakeBackrest {
  /** The client factory the reconciler and `createOperator` take (`backrest`). */
  connect: (connection: BackrestConnection) => BackrestApi;
  /** Every call by RPC name (`addRepo`, `checkRepoExists`, ...), in order; `probe` is not recorded. */
  calls: string[];
  /** Each repo an AddRepo that succeeded was given, in order. */
  applied: DesiredRepo[];
  /** The connection (URL, credentials) of each entry of `applied`. */
  connections: BackrestConnection[];
  /** The repos held now, by id (added, not removed since). */
  repos: Map<string, DesiredRepo>;
  /** Makes every later AddRepo reject with `error` (undefined: succeed again). */
  failAddRepo(error: Error | undefined): void;
}

/**
 * A stand-in for the Backrest clients: every call recorded, AddRepo kept by id, CheckRepoExists always
 * true, DoRepoTask answering operation 0, ListRepoIds the ids it holds. No restic, no HTTP, no auth check.
 */
export function fakeBackrest(): FakeBackrest {
  const calls: string[] = [];
  const applied: DesiredRepo[] = [];
  const connections: BackrestConnection[] = [];
  const repos = new Map<string, DesiredRepo>();
  let addRepoFailure: Error | undefined;
  const connect = (connection: BackrestConnection): BackrestApi => ({
    url: connection.url,
    addRepo: (r) => {
      calls.push("addRepo");
      if (addRepoFailure) return Promise.reject(addRepoFailure);
      applied.push(r);
      connections.push(connection);
      repos.set(r.id, r);
      return Promise.resolve();
    },
    removeRepo: (id) => (calls.push("removeRepo"), repos.delete(id), Promise.resolve()),
    checkRepoExists: () => (calls.push("checkRepoExists"), Promise.resolve(true)),
    doRepoTask: () => (calls.push("doRepoTask"), Promise.resolve(0n)),
    listRepoIds: () => (calls.push("listRepoIds"), Promise.resolve([...repos.keys()])),
    probe: () => Promise.resolve(),
  });
  return {
    connect,
    calls,
    applied,
    connections,
    repos,
    failAddRepo: (e) => addRepoFailure = e,
  };
}

/** One Event the stand-in recorder was given. */
export interface RecordedEvent {
  /** `namespace/name` of the object the Event is about. */
  object: string;
  type: "Normal" | "Warning";
  reason: string;
  message: string;
}

/** A stand-in for the Event recorder: keeps every Event, and their reasons as a list of their own. */
export function eventLog(): { sink: EventSink; events: RecordedEvent[]; reasons: string[] } {
  const events: RecordedEvent[] = [];
  const reasons: string[] = [];
  const sink: EventSink = {
    record: (obj, type, reason, message) => {
      events.push({ object: objectKey(obj), type, reason, message });
      reasons.push(reason);
    },
  };
  return { sink, events, reasons };
}

/** The context a controller hands a reconcile: no logging, a signal that never aborts. */
export function reconcileContext(): ReconcileContext {
  return { signal: new AbortController().signal, log: nullLogger(), reconcileID: "t", retries: 0 };
}
