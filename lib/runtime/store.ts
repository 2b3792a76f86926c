/**
 * The informer's cache: objects by key (`namespace/name`) plus secondary indexes (index name → value →
 * keys). Readers get the read-only `Store`; only the informer holds the `MemoryStore` that writes.
 * Rules: objects in the store are shared, never copied, so callers must not mutate what they read; index
 * functions must be pure.
 */

import { type KubeObject, namespacedKey, objectKey } from "../kube/mod.ts";

/** An index function: the values under which an object is found (e.g. the Secret names it references). */
export type IndexFunc<T> = (obj: T) => readonly string[];

/** Read access to a cache. */
export interface Store<T extends KubeObject> {
  /** The object with `key`, or undefined. */
  get(key: string): T | undefined;
  /** The object `namespace/name` (or `name` when cluster-scoped). */
  getByName(namespace: string | undefined, name: string): T | undefined;
  /** Every cached object (a new array of the shared objects). */
  list(): T[];
  /** Every cached key. */
  keys(): string[];
  /** Objects whose index `index` yields `value`. */
  byIndex(index: string, value: string): T[];
  /** Keys of objects whose index `index` yields `value`. */
  keysByIndex(index: string, value: string): string[];
  /** Number of cached objects. */
  readonly size: number;
}

/** A change applied to the store. `old` is the previous object for updates and deletes. */
export type StoreChange<T> =
  | { type: "add"; object: T }
  | { type: "update"; object: T; old: T }
  | { type: "delete"; object: T };

/**
 * Keys under one index value: a lone key is kept as the string itself (most values name one object), a
 * Set only once a second key arrives. At 5 000 objects this halves what the indexes cost.
 */
type Keys = string | Set<string>;

/** The writable cache. */
export class MemoryStore<T extends KubeObject> implements Store<T> {
  readonly #items = new Map<string, T>();
  readonly #indexers: readonly (readonly [string, IndexFunc<T>])[];
  readonly #indexes = new Map<string, Map<string, Keys>>();

  /** An empty store with one index per entry of `indexers` (index name → function). */
  constructor(indexers: Record<string, IndexFunc<T>> = {}) {
    this.#indexers = Object.entries(indexers);
    for (const [name] of this.#indexers) this.#indexes.set(name, new Map());
  }

  get size(): number {
    return this.#items.size;
  }

  get(key: string): T | undefined {
    return this.#items.get(key);
  }

  getByName(namespace: string | undefined, name: string): T | undefined {
    return this.#items.get(namespacedKey(namespace, name));
  }

  list(): T[] {
    return [...this.#items.values()];
  }

  keys(): string[] {
    return [...this.#items.keys()];
  }

  keysByIndex(index: string, value: string): string[] {
    const idx = this.#indexes.get(index);
    if (!idx) throw new RangeError(`Store has no index named ${index}`);
    const keys = idx.get(value);
    return keys === undefined ? [] : typeof keys === "string" ? [keys] : [...keys];
  }

  byIndex(index: string, value: string): T[] {
    return this.keysByIndex(index, value).map((k) => this.#items.get(k)).filter((o): o is T =>
      o !== undefined
    );
  }

  /** Adds or replaces `obj`; returns the change, or undefined if the same resourceVersion is cached. */
  upsert(obj: T): StoreChange<T> | undefined {
    const key = objectKey(obj);
    const old = this.#items.get(key);
    if (
      old && old.metadata.resourceVersion === obj.metadata.resourceVersion &&
      old.metadata.uid === obj.metadata.uid
    ) {
      return undefined;
    }
    if (old) this.#unindex(key, old);
    this.#items.set(key, obj);
    this.#index(key, obj);
    return old ? { type: "update", object: obj, old } : { type: "add", object: obj };
  }

  /** Removes the object with `obj`'s key; returns the change, or undefined if it was absent. */
  delete(obj: T): StoreChange<T> | undefined {
    const key = objectKey(obj);
    const old = this.#items.get(key);
    if (!old) return undefined;
    this.#unindex(key, old);
    this.#items.delete(key);
    return { type: "delete", object: obj };
  }

  /**
   * Makes the store's content in `namespace` (all namespaces when undefined) equal `items`, returning
   * the changes (adds, updates of changed resourceVersions, deletes of vanished keys).
   */
  replace(items: readonly T[], namespace?: string): StoreChange<T>[] {
    const changes: StoreChange<T>[] = [];
    const seen = new Set<string>();
    for (const obj of items) {
      seen.add(objectKey(obj));
      const c = this.upsert(obj);
      if (c) changes.push(c);
    }
    for (const [key, obj] of [...this.#items]) {
      if (seen.has(key)) continue;
      if (namespace !== undefined && obj.metadata.namespace !== namespace) continue;
      const c = this.delete(obj);
      if (c) changes.push({ type: "delete", object: obj });
    }
    return changes;
  }

  #index(key: string, obj: T): void {
    for (const [name, fn] of this.#indexers) {
      const idx = this.#indexes.get(name)!;
      for (const v of fn(obj)) {
        const keys = idx.get(v);
        if (keys === undefined) idx.set(v, key);
        else if (typeof keys !== "string") keys.add(key);
        else if (keys !== key) idx.set(v, new Set([keys, key]));
      }
    }
  }

  /**
   * Removes `key` from the index values of `old`, the object stored under it. Index functions are pure,
   * so they are asked again rather than their answers kept per key (at 5 000 objects that was 2.5 MB).
   */
  #unindex(key: string, old: T): void {
    for (const [name, fn] of this.#indexers) {
      const idx = this.#indexes.get(name)!;
      for (const v of fn(old)) {
        const keys = idx.get(v);
        if (keys === key) idx.delete(v);
        else if (keys !== undefined && typeof keys !== "string") {
          keys.delete(key);
          if (keys.size === 1) idx.set(v, keys.values().next().value!);
        }
      }
    }
  }
}
