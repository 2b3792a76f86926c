/**
 * An informer: one watcher per namespace (or one for all namespaces) feeding one store, and handlers told
 * of every change. Rules: handlers see the store already updated; a relist tells handlers only what
 * changed (adds, updates, deletes of vanished keys), so nothing is lost or doubled across a 410;
 * `hasSynced()` turns true once every namespace has been listed once, and stays true; `isCurrent()` is true
 * only while, besides, every namespace's watch is open with no failure since (listeners hear each change
 * of it); a periodic resync hands every cached object to the handlers again (to repair drift), without
 * contacting the apiserver.
 */

import type { KubeClient, KubeObject, ResourceType } from "../kube/mod.ts";
import type { Logger } from "../observe/mod.ts";
import { type Clock, sleep, systemClock } from "./clock.ts";
import { type IndexFunc, MemoryStore, type Store, type StoreChange } from "./store.ts";
import {
  type ListWatch,
  listWatch,
  metadataListWatch,
  newWatcherStats,
  runWatcher,
  type Selectors,
  type WatcherOptions,
  type WatcherStats,
} from "./watcher.ts";

/** What a handler is told: a store change, or a periodic resync of one object. */
export type InformerEvent<T> = StoreChange<T> | { type: "resync"; object: T };

/** Called synchronously for each event; must not throw (errors are logged) and must not block. */
export type InformerHandler<T> = (event: InformerEvent<T>) => void;

/** The watchers' tuning, passed through to each (see {@linkcode WatcherOptions}). */
export type WatcherTuning = Pick<
  WatcherOptions<KubeObject>,
  | "pageSize"
  | "watchTimeoutSeconds"
  | "watchTimeoutJitter"
  | "stallGraceMs"
  | "backoff"
  | "relistAfterFailure"
>;

/** Options of {@linkcode Informer}. */
export interface InformerOptions<T extends KubeObject> extends WatcherTuning {
  /** Name for logs (e.g. the resource). */
  name: string;
  /** Where lists and watches come from (see {@linkcode listWatch}). */
  listWatch: ListWatch<T>;
  /** Namespaces to watch; undefined or empty means all namespaces (one cluster-wide watch). */
  namespaces?: readonly string[] | undefined;
  /** The store's indexes by name (default: none). */
  indexers?: Record<string, IndexFunc<T>> | undefined;
  /** Applied to every object before it is cached (e.g. {@linkcode dropManagedFields}). */
  transform?: ((obj: T) => T) | undefined;
  /** Resync period in ms (0 or undefined: none). */
  resyncMs?: number | undefined;
  /** Time source for resyncs and the watchers (default: the system clock). */
  clock?: Clock | undefined;
  /** Logs handler failures and the watchers' lines, with an `informer` field (default: none). */
  logger?: Logger | undefined;
}

/** A transform that drops `metadata.managedFields` (often the largest part of an object). */
export function dropManagedFields<T extends KubeObject>(obj: T): T {
  if (!obj.metadata.managedFields) return obj;
  const { managedFields: _drop, ...metadata } = obj.metadata;
  return { ...obj, metadata };
}

/** A cache of one resource kept current by list+watch. */
export class Informer<T extends KubeObject> {
  /** The name from the options, used in logs. */
  readonly name: string;
  readonly #o: InformerOptions<T>;
  readonly #store: MemoryStore<T>;
  readonly #handlers: InformerHandler<T>[] = [];
  readonly #synced = new Set<string>();
  /** Scopes whose watch is open now, with no failure since. */
  readonly #live = new Set<string>();
  #current = false;
  readonly #currentListeners: ((current: boolean) => void)[] = [];
  readonly #waiters: (() => void)[] = [];
  readonly #clock: Clock;
  /** Per-namespace watcher counters. */
  readonly stats = new Map<string, WatcherStats>();

  /** An empty cache; nothing is listed until `start(signal)`. */
  constructor(options: InformerOptions<T>) {
    this.name = options.name;
    this.#o = options;
    this.#store = new MemoryStore(options.indexers ?? {});
    this.#clock = options.clock ?? systemClock;
  }

  /** The read-only cache. */
  get store(): Store<T> {
    return this.#store;
  }

  /** Registers a handler (before `start`, so it sees the initial adds). */
  addHandler(handler: InformerHandler<T>): void {
    this.#handlers.push(handler);
  }

  #scopes(): (string | undefined)[] {
    const ns = this.#o.namespaces;
    return ns && ns.length ? [...new Set(ns)] : [undefined];
  }

  /** Whether every namespace has been listed once. */
  hasSynced(): boolean {
    return this.#synced.size === this.#scopes().length;
  }

  /**
   * Whether the cache is current: synced, and every namespace's watch open with no list or watch failure
   * since, so each change reaches the cache moments after it is made. (A watch that resumed after a failure
   * delivers what it missed in its first moments; an informer with `relistAfterFailure` lists instead.)
   */
  isCurrent(): boolean {
    return this.#current;
  }

  /** Calls `listener` each time `isCurrent()` changes, with its new value. */
  onCurrentChange(listener: (current: boolean) => void): void {
    this.#currentListeners.push(listener);
  }

  #setLive(scope: string, live: boolean): void {
    if (live) this.#live.add(scope);
    else this.#live.delete(scope);
    const current = this.hasSynced() && this.#live.size === this.#scopes().length;
    if (current === this.#current) return;
    this.#current = current;
    for (const l of this.#currentListeners) {
      try {
        l(current);
      } catch (e) {
        this.#o.logger?.error("Informer listener failed", e, { informer: this.name });
      }
    }
  }

  /** Resolves `true` once synced, or `false` if `signal` aborts first. */
  waitForSync(signal?: AbortSignal): Promise<boolean> {
    if (this.hasSynced()) return Promise.resolve(true);
    if (signal?.aborted) return Promise.resolve(false);
    return new Promise((resolve) => {
      signal?.addEventListener("abort", () => resolve(false), { once: true });
      this.#waiters.push(() => resolve(true));
    });
  }

  #emit(event: InformerEvent<T>): void {
    for (const h of this.#handlers) {
      try {
        h(event);
      } catch (e) {
        this.#o.logger?.error("Informer handler failed", e, { informer: this.name });
      }
    }
  }

  #transform(obj: T): T {
    return this.#o.transform ? this.#o.transform(obj) : obj;
  }

  /** Runs the watchers (and the resync timer) until `signal` aborts. */
  async start(signal: AbortSignal): Promise<void> {
    const log = this.#o.logger?.with({ informer: this.name });
    const runs = this.#scopes().map((namespace) => {
      const stats = newWatcherStats();
      this.stats.set(namespace ?? "", stats);
      return runWatcher(
        {
          listWatch: this.#o.listWatch,
          namespace,
          clock: this.#clock,
          logger: log,
          pageSize: this.#o.pageSize,
          watchTimeoutSeconds: this.#o.watchTimeoutSeconds,
          watchTimeoutJitter: this.#o.watchTimeoutJitter,
          stallGraceMs: this.#o.stallGraceMs,
          backoff: this.#o.backoff,
          relistAfterFailure: this.#o.relistAfterFailure,
          onLive: (live) => this.#setLive(namespace ?? "", live),
          transform: (o) => this.#transform(o),
          onList: (items) => {
            const changes = this.#store.replace(items, namespace);
            for (const c of changes) this.#emit(c);
            this.#markSynced(namespace ?? "");
          },
          onEvent: (type, object) => {
            const obj = this.#transform(object);
            const change = type === "DELETED" ? this.#store.delete(obj) : this.#store.upsert(obj);
            if (change) this.#emit(change);
          },
        },
        signal,
        stats,
      );
    });
    await Promise.all([...runs, this.#resync(signal)]);
  }

  #markSynced(scope: string): void {
    this.#synced.add(scope);
    if (this.hasSynced()) this.#waiters.splice(0).forEach((w) => w());
  }

  async #resync(signal: AbortSignal): Promise<void> {
    const period = this.#o.resyncMs ?? 0;
    if (period <= 0) return;
    while (await sleep(this.#clock, period, signal)) {
      for (const object of this.#store.list()) this.#emit({ type: "resync", object });
    }
  }
}

/** Options of {@linkcode informerFor} and {@linkcode metadataInformerFor}. */
export type ResourceInformerOptions<T extends KubeObject> =
  & Omit<InformerOptions<T>, "listWatch" | "name">
  & Selectors
  & { name?: string | undefined };

/** An informer of full objects of `type`. */
export function informerFor<T extends KubeObject>(
  client: KubeClient,
  type: ResourceType<T>,
  options: ResourceInformerOptions<T> = {},
): Informer<T> {
  return new Informer({
    ...options,
    name: options.name ?? type.resource,
    listWatch: listWatch(client, type, options),
  });
}

/** An informer of PartialObjectMetadata of `type` (use it for Secrets: the cache never holds data). */
export function metadataInformerFor(
  client: KubeClient,
  type: ResourceType,
  options: ResourceInformerOptions<KubeObject> = {},
): Informer<KubeObject> {
  return new Informer({
    ...options,
    name: options.name ?? type.resource,
    listWatch: metadataListWatch(client, type, options),
  });
}
