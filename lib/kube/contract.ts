/**
 * The whole Kubernetes client contract in one place. Rules: every call takes an `AbortSignal` and has a
 * timeout; every non-OK answer throws {@linkcode KubeError} (status, reason, the apiserver's message;
 * never the request body); `get` returns `null` on 404 and `delete` returns `false`; every returned object
 * went through its `ResourceType.parse`. Metadata-only calls return PartialObjectMetadata without
 * managedFields or the last-applied annotation (for Secrets: nothing that could hold data).
 */

import type { KubeObject, Status } from "./object.ts";
import type { ResourceType } from "./resource.ts";
export type { KubeError } from "./errors.ts";

/** Options every call accepts. */
export interface CallOptions {
  /** Aborts the call, which then throws the signal's reason (not a `KubeError`). */
  signal?: AbortSignal | undefined;
  /** Per-call timeout in ms (default: the client's, 30 s). Watches apply it to the response headers only. */
  timeoutMs?: number | undefined;
}

/** Where an object or collection lives. */
export interface NamespaceOption {
  /** Namespace for namespaced resources; omitted on a list/watch means all namespaces. */
  namespace?: string | undefined;
}

/** Label and field selectors (the apiserver's string syntax). */
export interface SelectorOptions {
  /** Only objects whose labels match, e.g. `app=x,tier!=db`; omitted: all. */
  labelSelector?: string | undefined;
  /** Only objects whose fields match, e.g. `metadata.name=x`; omitted: all. */
  fieldSelector?: string | undefined;
}

/** One page of a list call. */
export interface ListOptions extends CallOptions, NamespaceOption, SelectorOptions {
  /** Page size (the apiserver may return fewer). */
  limit?: number | undefined;
  /** Continue token from the previous page. */
  continue?: string | undefined;
  /** "" or omitted: a consistent read; "0": any cached state. */
  resourceVersion?: string | undefined;
}

/** A page of objects plus the list's resourceVersion and continue token. */
export interface ListPage<T> {
  /** This page's objects, each through its `ResourceType.parse`. */
  items: T[];
  /** The list's resourceVersion: where a watch continuing this list starts. */
  resourceVersion: string;
  /** Present when more pages follow. */
  continue?: string | undefined;
  /** The apiserver's estimate of the objects in later pages; often absent. */
  remainingItemCount?: number | undefined;
}

/** Options of a watch. */
export interface WatchOptions extends CallOptions, NamespaceOption, SelectorOptions {
  /** Start after this resourceVersion (from a list or bookmark). */
  resourceVersion?: string | undefined;
  /** Ask for BOOKMARK events (default true). */
  allowWatchBookmarks?: boolean | undefined;
  /** The apiserver closes the stream after this many seconds. */
  timeoutSeconds?: number | undefined;
  /**
   * Called once the apiserver accepted the watch (its answer's headers arrived), before any event: from
   * then on every change after `resourceVersion` is on its way.
   */
  onOpen?: (() => void) | undefined;
}

/** One watch event. ERROR carries a Status (code 410 means: relist). */
export type WatchEvent<T> =
  | { type: "ADDED" | "MODIFIED" | "DELETED"; object: T }
  | { type: "BOOKMARK"; resourceVersion: string }
  | { type: "ERROR"; status: Status };

/** A patch body and how the apiserver should read it. */
export type PatchType = "merge" | "json" | "strategic";

/** Options of writes. */
export interface WriteOptions extends CallOptions {
  /** Field manager recorded in managedFields. */
  fieldManager?: string | undefined;
  /** `All` validates without persisting. */
  dryRun?: boolean | undefined;
}

/** Options of server-side apply. */
export interface ApplyOptions extends WriteOptions {
  /** Required for apply: the manager that will own the fields sent. */
  fieldManager: string;
  /** Take ownership of conflicting fields. */
  force?: boolean | undefined;
}

/** Options of delete. */
export interface DeleteOptions extends CallOptions, NamespaceOption {
  /** How dependents are deleted; omitted: the resource's default. */
  propagationPolicy?: "Foreground" | "Background" | "Orphan" | undefined;
  /** Seconds before the object is gone (pods); 0 deletes at once; omitted: the default. */
  gracePeriodSeconds?: number | undefined;
  /** Delete only while the object has the uid and resourceVersion given (otherwise 409 Conflict). */
  preconditions?: { uid?: string | undefined; resourceVersion?: string | undefined } | undefined;
}

/** The Kubernetes API, typed per resource. */
export interface KubeClient {
  /** The object, or `null` when it does not exist. */
  get<T extends KubeObject>(
    type: ResourceType<T>,
    name: string,
    options?: CallOptions & NamespaceOption,
  ): Promise<T | null>;
  /** One page of a list. */
  list<T extends KubeObject>(type: ResourceType<T>, options?: ListOptions): Promise<ListPage<T>>;
  /** Every page of a list (following `continue`), as one result at the first page's resourceVersion. */
  listAll<T extends KubeObject>(type: ResourceType<T>, options?: ListOptions): Promise<ListPage<T>>;
  /** One page of PartialObjectMetadata (no data, no spec, no status). */
  listMetadata(type: ResourceType, options?: ListOptions): Promise<ListPage<KubeObject>>;
  /** Creates `obj` in `obj.metadata.namespace`. */
  create<T extends KubeObject>(type: ResourceType<T>, obj: KubeObject, options?: WriteOptions): Promise<T>;
  /** Replaces `obj` (PUT; conflicts on a stale resourceVersion). */
  update<T extends KubeObject>(type: ResourceType<T>, obj: KubeObject, options?: WriteOptions): Promise<T>;
  /** Patches `name` (merge patch unless `patchType` says otherwise). */
  patch<T extends KubeObject>(
    type: ResourceType<T>,
    name: string,
    patch: unknown,
    options?: WriteOptions & NamespaceOption & { patchType?: PatchType | undefined },
  ): Promise<T>;
  /** Server-side apply of `obj` (apiVersion, kind, metadata.name set). */
  apply<T extends KubeObject>(type: ResourceType<T>, obj: KubeObject, options: ApplyOptions): Promise<T>;
  /** Replaces the status subresource. */
  updateStatus<T extends KubeObject>(
    type: ResourceType<T>,
    obj: KubeObject,
    options?: WriteOptions,
  ): Promise<T>;
  /** Patches the status subresource. */
  patchStatus<T extends KubeObject>(
    type: ResourceType<T>,
    name: string,
    patch: unknown,
    options?: WriteOptions & NamespaceOption & { patchType?: PatchType | undefined },
  ): Promise<T>;
  /** Server-side apply to the status subresource. */
  applyStatus<T extends KubeObject>(
    type: ResourceType<T>,
    obj: KubeObject,
    options: ApplyOptions,
  ): Promise<T>;
  /** Deletes `name`; `false` when it was already gone. */
  delete(type: ResourceType, name: string, options?: DeleteOptions): Promise<boolean>;
  /**
   * Watch events until the server closes the stream or `signal` aborts. A non-OK answer throws
   * `KubeError` before the first event (410 when `resourceVersion` is too old).
   */
  watch<T extends KubeObject>(type: ResourceType<T>, options?: WatchOptions): AsyncIterable<WatchEvent<T>>;
  /** Watch of PartialObjectMetadata. */
  watchMetadata(type: ResourceType, options?: WatchOptions): AsyncIterable<WatchEvent<KubeObject>>;
}
