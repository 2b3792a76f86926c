/**
 * The status writes the Binding reconciler makes itself, so the watch event each one causes does not wake
 * the reconciler again. Without this every status write costs a second reconcile (a Secret GET, a hash,
 * a comparison) that can only conclude "nothing to do".
 *
 * Rules: a write is announced before it is sent, because its watch event often arrives before its answer.
 * An update event is our echo only when it changes nothing but the status (and resourceVersion) and the
 * status is exactly the one we wrote; anyone else's change, status included, wakes the reconciler as
 * before. The first event for the key after a write settles the entry either way, and a failed write
 * drops it, so no entry outlives the next change. A reconcile of the key that starts before the event
 * arrived drops it too: it reads the cached object from before the write and may conclude that nothing is
 * to be done (a pause lifted before the Paused status came back), so the event must wake the next one.
 */
import type { KubeObject } from "../kube/mod.ts";
import type { StoreChange } from "../runtime/mod.ts";
import { sameJSON } from "../json.ts";

/** The Binding status writes in flight or not yet seen back, one per Binding key. */
export class OwnWrites {
  /**
   * Binding key -> the status we are writing or wrote, until its watch event arrives. The writer hands over
   * an object it built for this write and does not change afterwards; it is compared with `sameJSON`.
   */
  readonly #pending = new Map<string, unknown>();

  /** Writes not yet seen back. */
  get size(): number {
    return this.#pending.size;
  }

  /** About to write `status` to the Binding `key` (kept as it is: the caller must not change it later). */
  writing(key: string, status: unknown): void {
    this.#pending.set(key, status);
  }

  /** The write to `key` failed (or may not have happened): wake on whatever comes next. */
  failed(key: string): void {
    this.#pending.delete(key);
  }

  /** A reconcile of `key` starts: its view may predate a write not seen back yet, whose event must wake. */
  reconciling(key: string): void {
    this.#pending.delete(key);
  }

  /** Whether `change` (for `key`) is only the echo of our own status write. */
  isEcho(key: string, change: StoreChange<KubeObject>): boolean {
    if (!this.#pending.has(key)) return false;
    const status = this.#pending.get(key);
    this.#pending.delete(key);
    if (change.type !== "update") return false;
    const { old, object } = change;
    return onlyStatusChanged(old, object) && sameJSON(object.status ?? {}, status);
  }
}

/** True when `a` and `b` differ at most in status, resourceVersion and managedFields. */
function onlyStatusChanged(a: KubeObject, b: KubeObject): boolean {
  const { resourceVersion: _a, managedFields: _am, ...ma } = a.metadata;
  const { resourceVersion: _b, managedFields: _bm, ...mb } = b.metadata;
  return a.metadata.generation === b.metadata.generation && sameJSON(ma, mb) && sameJSON(a.spec, b.spec);
}
