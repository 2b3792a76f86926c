/**
 * The status writes the Binding reconciler makes itself: their watch events wake nothing, and until its
 * event arrives a write is what the next reconcile reads.
 *
 * Echoes. Without this every status write costs a second reconcile (a Secret GET, a hash, a comparison)
 * that can only conclude "nothing to do". A write is announced before it is sent, because its watch event
 * often arrives before its answer. An update event is our echo only when it changes nothing but the status
 * (and resourceVersion) and the status is exactly the one we wrote; anyone else's change, status included,
 * wakes the reconciler as before. The first event for the key after a write settles the entry either way,
 * and a failed write drops it, so no entry outlives the next change. A reconcile of the key that starts
 * before the event arrived drops it too, so the event wakes the next one whatever this one concludes.
 *
 * Reading our own writes. A reconcile another change wakes (a Secret, the VolSync object) may start before
 * the event of the last status write reached the cache. Read from the cache it would see the Binding as it
 * was before: an Applied write not there yet means AddRepo again, one more restic run on the Backrest
 * server for nothing. So the object the apiserver answered the write with is read instead, until the cache
 * holds that resourceVersion or a later one (resourceVersions are ordered: KEP-5504), or the object is
 * gone. Where they cannot be ordered, the cache is read, as before.
 */
import { compareResourceVersions, type KubeObject } from "../kube/mod.ts";
import type { StoreChange } from "../runtime/mod.ts";
import { sameJSON } from "../json.ts";

/** The Binding status writes in flight or not yet in the cache, one per Binding key. */
export class OwnWrites {
  /**
   * Binding key -> the status we are writing or wrote, until its watch event arrives. The writer hands over
   * an object it built for this write and does not change afterwards; it is compared with `sameJSON`.
   */
  readonly #pending = new Map<string, unknown>();
  /** Binding key -> the object our last status write was answered with, until the cache holds as new. */
  readonly #written = new Map<string, KubeObject>();

  /** Writes not yet seen back. */
  get size(): number {
    return this.#pending.size;
  }

  /** About to write `status` to the Binding `key` (kept as it is: the caller must not change it later). */
  writing(key: string, status: unknown): void {
    this.#pending.set(key, status);
  }

  /** The write to `key` landed: `obj` is the apiserver's answer. */
  wrote(key: string, obj: KubeObject): void {
    this.#written.set(key, obj);
  }

  /**
   * The Binding `key` as a reconcile must read it: `cached`, or the answer to our last status write while
   * the cache holds an older resourceVersion.
   */
  latest(key: string, cached: KubeObject | undefined): KubeObject | undefined {
    const written = this.#written.get(key);
    if (!written) return cached;
    if (cached && isNewer(written, cached)) return written;
    this.#written.delete(key);
    return cached;
  }

  /** The write to `key` failed (or may not have happened): wake on whatever comes next. */
  failed(key: string): void {
    this.#pending.delete(key);
  }

  /** A reconcile of `key` starts: its view may predate a write not seen back yet, whose event must wake. */
  reconciling(key: string): void {
    this.#pending.delete(key);
  }

  /** Whether `change` (for `key`) is only the echo of our own status write; every change is told here. */
  isEcho(key: string, change: StoreChange<KubeObject>): boolean {
    const written = this.#written.get(key);
    if (written && (change.type === "delete" || !isNewer(written, change.object))) this.#written.delete(key);
    if (!this.#pending.has(key)) return false;
    const status = this.#pending.get(key);
    this.#pending.delete(key);
    if (change.type !== "update") return false;
    const { old, object } = change;
    return onlyStatusChanged(old, object) && sameJSON(object.status ?? {}, status);
  }
}

/** True when `a` is a later version of the object than `b` (false when the two cannot be ordered). */
function isNewer(a: KubeObject, b: KubeObject): boolean {
  return (compareResourceVersions(a.metadata.resourceVersion, b.metadata.resourceVersion) ?? 0) > 0;
}

/** True when `a` and `b` differ at most in status, resourceVersion and managedFields. */
function onlyStatusChanged(a: KubeObject, b: KubeObject): boolean {
  const { resourceVersion: _a, managedFields: _am, ...ma } = a.metadata;
  const { resourceVersion: _b, managedFields: _bm, ...mb } = b.metadata;
  return a.metadata.generation === b.metadata.generation && sameJSON(ma, mb) && sameJSON(a.spec, b.spec);
}
