/**
 * core/v1 Event recording with client-go's correlation: a repeat of the same (object, type, reason,
 * message) within the aggregation window bumps `count` and `lastTimestamp` on the existing Event instead of
 * creating a new one, and a per-object token bucket (burst 25, one token per 5 minutes by default) caps
 * writes, so a flapping failure cannot flood the apiserver. Occurrences dropped by the limiter still count.
 *
 * Rules: `record()` never blocks and never throws; writes happen in `start(signal)`'s loop, which drains
 * what is pending (bounded) when the signal aborts. Messages are cut to 1024 characters; callers must pass
 * reasons and names only, never Secret values.
 */

import { sha256 } from "../sha256.ts";
import type { KubeClient } from "./contract.ts";
import { isConflict, isNotFound } from "./errors.ts";
import type { KubeObject } from "./object.ts";
import { type ResourceType, resourceType } from "./resource.ts";

/** The object an Event is about. */
export interface ObjectReference {
  /** The object's apiVersion. */
  apiVersion?: string | undefined;
  /** The object's kind. */
  kind?: string | undefined;
  /** The object's namespace, where the Event is written; without one nothing is recorded. */
  namespace?: string | undefined;
  /** The object's name. */
  name: string;
  /** The object's uid: Events of a recreated object stay apart. */
  uid?: string | undefined;
  /** The object's resourceVersion when the Event happened. */
  resourceVersion?: string | undefined;
}

/** Event type. */
export type EventType = "Normal" | "Warning";

/** Options of {@linkcode EventRecorder}. */
export interface EventRecorderOptions {
  /** Where Events are created and patched. */
  client: KubeClient;
  /** `source.component` and `reportingController`, e.g. `backrest-volsync-operator`. */
  component: string;
  /** `reportingInstance` (the pod name). */
  instance?: string | undefined;
  /** Time a repeat is folded into the existing Event (default 10 minutes). */
  aggregateWindowMs?: number | undefined;
  /** Writes allowed at once per object (default 25). */
  burst?: number | undefined;
  /** Time to earn one more write per object (default 5 minutes). */
  refillMs?: number | undefined;
  /**
   * Most series remembered (least recently used are forgotten; default 4096); a series past its window is
   * forgotten sooner.
   */
  maxSeries?: number | undefined;
  /** Clock in ms. */
  now?: (() => number) | undefined;
  /** Called when a write fails (the recorder keeps going). */
  onError?: ((error: unknown) => void) | undefined;
}

/** core/v1 Event resource. */
export const events: ResourceType = resourceType({
  group: "",
  version: "v1",
  resource: "events",
  kind: "Event",
  namespaced: true,
});

interface Series {
  ref: ObjectReference;
  type: EventType;
  reason: string;
  message: string;
  /** Name of the Event in the apiserver, once created. */
  eventName?: string | undefined;
  count: number;
  writtenCount: number;
  first: number;
  last: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

/** Folds repeats, limits writes, and writes Events in the background. */
export class EventRecorder {
  readonly #o: EventRecorderOptions & {
    aggregateWindowMs: number;
    burst: number;
    refillMs: number;
    maxSeries: number;
    now: () => number;
  };
  readonly #series = new Map<string, Series>();
  readonly #buckets = new Map<string, Bucket>();
  readonly #pending = new Set<string>();
  #wake: (() => void) | undefined;
  #seq = 0;

  /** Records from now on; nothing is written until `start(signal)` runs. */
  constructor(options: EventRecorderOptions) {
    this.#o = {
      ...options,
      aggregateWindowMs: options.aggregateWindowMs ?? 10 * 60_000,
      burst: options.burst ?? 25,
      refillMs: options.refillMs ?? 5 * 60_000,
      maxSeries: options.maxSeries ?? 4096,
      now: options.now ?? Date.now,
    };
  }

  /** Events waiting to be written. */
  get pending(): number {
    return this.#pending.size;
  }

  /** Series and per-object buckets remembered (what is still in its window, or still short of tokens). */
  get remembered(): { series: number; buckets: number } {
    return { series: this.#series.size, buckets: this.#buckets.size };
  }

  /**
   * Forgets, from the least recently touched, series whose window is over (a repeat would start a new Event
   * anyway) and buckets full again (as good as none), so what the recorder holds follows recent Events, not
   * the last 4 096 series ever: under churn of short-lived objects it would otherwise grow for hours.
   */
  #expire(now: number): void {
    for (const [key, s] of this.#series) {
      if (now - s.last <= this.#o.aggregateWindowMs || this.#pending.has(key)) break;
      this.#series.delete(key);
    }
    for (const [key, b] of this.#buckets) {
      if (b.tokens + (now - b.at) / this.#o.refillMs < this.#o.burst) break;
      this.#buckets.delete(key);
    }
  }

  /** Records an Event about `obj` (an object or a reference). */
  record(obj: KubeObject | ObjectReference, type: EventType, reason: string, message: string): void {
    const ref = toRef(obj);
    if (!ref.name || !ref.namespace) return; // cluster-scoped Events go to "default"; we have none
    const now = this.#o.now();
    this.#expire(now);
    const msg = message.length > 1024 ? message.slice(0, 1021) + "..." : message;
    // A digest, not the fields: 4 096 remembered series would otherwise keep a few hundred bytes each.
    const key = sha256()
      .update(JSON.stringify([ref.namespace, ref.kind, ref.name, ref.uid, type, reason, msg]))
      .digest("base64");
    let s = this.#series.get(key);
    if (s && now - s.last > this.#o.aggregateWindowMs) s = undefined; // window over: a new Event
    if (!s) {
      s = { ref, type, reason, message: msg, count: 0, writtenCount: 0, first: now, last: now };
    }
    this.#series.delete(key); // re-insert: the Map's order is the LRU order
    this.#series.set(key, s);
    s.count++;
    s.last = now;
    while (this.#series.size > this.#o.maxSeries) {
      const oldest = this.#series.keys().next().value;
      if (oldest === undefined) break;
      this.#series.delete(oldest);
      this.#pending.delete(oldest);
    }
    if (this.#pending.has(key)) return;
    if (!this.#take(`${ref.namespace}/${ref.kind}/${ref.name}`, now)) return;
    this.#pending.add(key);
    this.#wake?.();
  }

  #take(objectKey: string, now: number): boolean {
    const { burst, refillMs } = this.#o;
    const b = this.#buckets.get(objectKey) ?? { tokens: burst, at: now };
    b.tokens = Math.min(burst, b.tokens + (now - b.at) / refillMs);
    b.at = now;
    this.#buckets.delete(objectKey);
    this.#buckets.set(objectKey, b);
    if (this.#buckets.size > this.#o.maxSeries) {
      const oldest = this.#buckets.keys().next().value;
      if (oldest !== undefined) this.#buckets.delete(oldest);
    }
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  /** Writes everything pending now. */
  async flush(signal?: AbortSignal): Promise<void> {
    for (const key of [...this.#pending]) {
      this.#pending.delete(key);
      const s = this.#series.get(key);
      if (!s || s.writtenCount === s.count) continue;
      try {
        await this.#write(s, signal);
      } catch (e) {
        this.#o.onError?.(e);
      }
    }
  }

  async #write(s: Series, signal: AbortSignal | undefined): Promise<void> {
    const count = s.count;
    const ns = s.ref.namespace ?? "default";
    if (s.eventName) {
      try {
        await this.#o.client.patch(events, s.eventName, {
          count,
          lastTimestamp: new Date(s.last).toISOString(),
        }, { namespace: ns, signal, timeoutMs: 10_000 });
        s.writtenCount = count;
        return;
      } catch (e) {
        if (!isNotFound(e)) throw e;
        s.eventName = undefined; // deleted (TTL): create anew
      }
    }
    const name = `${s.ref.name}.${(s.first * 1e6 + (this.#seq++ % 1e6)).toString(16)}`;
    const involvedObject: Record<string, string> = { name: s.ref.name, namespace: ns };
    for (const k of ["apiVersion", "kind", "uid", "resourceVersion"] as const) {
      const v = s.ref[k];
      if (v) involvedObject[k] = v;
    }
    try {
      await this.#o.client.create(events, {
        apiVersion: "v1",
        kind: "Event",
        metadata: { name, namespace: ns },
        involvedObject,
        reason: s.reason,
        message: s.message,
        type: s.type,
        count,
        firstTimestamp: new Date(s.first).toISOString(),
        lastTimestamp: new Date(s.last).toISOString(),
        source: { component: this.#o.component },
        reportingComponent: this.#o.component,
        reportingInstance: this.#o.instance ?? "",
      }, { signal, timeoutMs: 10_000 });
    } catch (e) {
      if (!isConflict(e)) throw e;
    }
    s.eventName = name;
    s.writtenCount = count;
  }

  /** Writes Events as they come until `signal` aborts, then flushes what is pending (10 s at most). */
  async start(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      if (this.#pending.size === 0) {
        // One abort listener per wait, removed when the wait ends: the signal outlives every wait, and a
        // listener left on it per idle spell grew without bound (and made every request on the signal
        // slower, since adding and removing a listener walks the list).
        let onAbort = () => {};
        await new Promise<void>((resolve) => {
          this.#wake = resolve;
          onAbort = () => resolve();
          signal.addEventListener("abort", onAbort, { once: true });
        });
        signal.removeEventListener("abort", onAbort);
        this.#wake = undefined;
      }
      if (!signal.aborted) await this.flush(signal);
    }
    await this.flush(AbortSignal.timeout(10_000));
  }
}

function toRef(obj: KubeObject | ObjectReference): ObjectReference {
  if ("metadata" in obj) {
    const m = obj.metadata;
    return {
      apiVersion: obj.apiVersion,
      kind: obj.kind,
      namespace: m.namespace,
      name: m.name ?? "",
      uid: m.uid,
      resourceVersion: m.resourceVersion,
    };
  }
  return obj;
}
