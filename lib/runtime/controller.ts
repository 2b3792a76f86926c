/**
 * A controller: a work queue, N workers, and one reconcile function `reconcile(key, ctx) => Action`.
 * Rules: keys are queued only while the controller runs (a replica that does not lead holds no work, so
 * keys of objects that come and go while another leads never pile up), and starting it queues every object
 * its informers hold, as their first listing would; the runtime never reconciles the same key twice at
 * once; a thrown error retries with per-key backoff; a `TerminalError` does not retry (until the key is
 * added again), nor does a write refused because the object's namespace is gone (`isNamespaceGone`);
 * `requeueAfter(ms)` comes back after `ms`; on shutdown intake stops at once and in-flight reconciles get
 * `shutdownTimeoutMs` to finish before their `ctx.signal` aborts, or less when leadership was lost: no
 * longer than the old Lease still keeps a successor out (`LeadershipLostError.graceMs`).
 */

import { isNamespaceGone, type KubeObject, objectKey } from "../kube/mod.ts";
import { type LogFields, type Logger, nullLogger, type RuntimeMetrics } from "../observe/mod.ts";
import { type Clock, systemClock } from "./clock.ts";
import type { Informer, InformerEvent } from "./informer.ts";
import { LeadershipLostError } from "./leader_election.ts";
import { WorkQueue, type WorkQueueOptions } from "./queue.ts";

/** What a reconcile asks for next. */
export type Action = { readonly type: "done" } | { readonly type: "requeueAfter"; readonly ms: number };

/** Nothing more to do until the key is added again (or the next resync). */
export const done: Action = Object.freeze({ type: "done" });

/** Reconcile the key again after `ms` milliseconds. */
export function requeueAfter(ms: number): Action {
  return { type: "requeueAfter", ms: Math.max(0, ms) };
}

/** An error that retrying cannot fix (e.g. an invalid spec): logged and counted, not retried. */
export class TerminalError extends Error {
  /** Always `"TerminalError"`. */
  override readonly name = "TerminalError";
}

/** What a reconcile receives besides the key. */
export interface ReconcileContext {
  /** Aborts when the controller stops and the shutdown bound has passed. */
  readonly signal: AbortSignal;
  /** A logger bound to controller, namespace, name and reconcileID. */
  readonly log: Logger;
  /** A fresh UUID per reconcile, bound into `log`. */
  readonly reconcileID: string;
  /** Failed attempts before this one (0 on a fresh key). */
  readonly retries: number;
}

/** The one function a controller author writes. */
export type Reconciler = (key: string, ctx: ReconcileContext) => Promise<Action>;

/** Options of {@linkcode Controller}. */
export interface ControllerOptions {
  /** The controller's name: the `controller` log field and metrics label. */
  name: string;
  /** Called for each key taken from the queue. */
  reconcile: Reconciler;
  /** Workers (default 1). */
  concurrency?: number | undefined;
  /** Time in-flight reconciles get on shutdown before their signal aborts (default 30 s). */
  shutdownTimeoutMs?: number | undefined;
  /**
   * A reconcile running longer than this means the controller is wedged (default 15 min): `healthy()`
   * turns false, so the liveness probe restarts the process.
   */
  stuckAfterMs?: number | undefined;
  /** Logs with a `controller` field; each `ctx.log` derives from it (default: none). */
  logger?: Logger | undefined;
  /** The log fields naming what a key stands for (default: `namespace` and `name` of a `ns/name` key). */
  logFields?: ((key: string) => LogFields) | undefined;
  /** Where the reconcile and workqueue metrics go (default: none). */
  metrics?: RuntimeMetrics | undefined;
  /** Time source for the queue and reconcile timing (default: the system clock). */
  clock?: Clock | undefined;
  /** Backoff, rate and sharding of the work queue (its clock and metrics are the controller's). */
  queue?: Omit<WorkQueueOptions, "clock" | "metrics"> | undefined;
}

/** The log fields of a `namespace/name` key (a cluster-scoped object's key is its name). */
function objectKeyFields(key: string): LogFields {
  const slash = key.indexOf("/");
  return slash < 0 ? { name: key } : { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
}

/** Maps an informer event to the keys to reconcile. */
export type KeyMapper<T> = (event: InformerEvent<T>) => readonly string[];

/** Runs reconciles for keys from a queue. */
export class Controller {
  /** The name from the options. */
  readonly name: string;
  /** The controller's work queue of keys. */
  readonly queue: WorkQueue;
  readonly #o: ControllerOptions;
  readonly #log: Logger;
  readonly #clock: Clock;
  /** For each watched informer: hand its cached objects to the key mapper (run by `start`). */
  readonly #replays: (() => void)[] = [];
  #started = false;

  /** Nothing runs, and nothing is queued, until `start(signal)`. */
  constructor(options: ControllerOptions) {
    this.name = options.name;
    this.#o = options;
    this.#clock = options.clock ?? systemClock;
    this.#log = (options.logger ?? nullLogger()).with({ controller: options.name });
    const m = options.metrics;
    const labels = { name: options.name, controller: options.name };
    this.queue = new WorkQueue({
      ...options.queue,
      clock: this.#clock,
      metrics: m && {
        depth: (n) => m.workqueueDepth.set(labels, n),
        added: () => m.workqueueAdds.inc(labels),
        queueLatency: (s) => m.workqueueQueueDuration.observe(labels, s),
        workDuration: (s) => m.workqueueWorkDuration.observe(labels, s),
        retried: () => m.workqueueRetries.inc(labels),
      },
    });
  }

  /** False while a reconcile has run past `stuckAfterMs` (a hung call with no deadline, a deadlock). */
  healthy(): boolean {
    return this.queue.oldestInFlightMs() <= (this.#o.stuckAfterMs ?? 15 * 60_000);
  }

  /** Queues `key` (namespace/name); before `start` nothing is queued (`start` queues every cached object). */
  enqueue(key: string): void {
    if (this.#started) this.queue.add(key);
  }

  /**
   * Enqueues keys for `informer`'s events: the object's own key by default, or whatever `map` returns
   * (e.g. the Bindings that reference a changed Secret, found through a store index).
   */
  watch<T extends KubeObject>(informer: Informer<T>, map?: KeyMapper<T>): this {
    const handle = (event: InformerEvent<T>) => {
      const keys = map ? map(event) : [objectKey(event.object)];
      // Once each: an idle worker takes a key at once, so adding it again in the same breath would mark it
      // to run a second time, against the same, possibly stale, cached object. A resync leaves keys in
      // backoff alone; a real change runs them at once.
      for (const k of new Set(keys)) {
        if (event.type === "resync") this.queue.addUnlessBackingOff(k);
        else this.queue.add(k);
      }
    };
    informer.addHandler((event) => {
      if (this.#started) handle(event);
    });
    this.#replays.push(() => {
      for (const object of informer.store.list()) handle({ type: "add", object });
    });
    return this;
  }

  /** Runs the workers until `signal` aborts, then drains (bounded) and resolves. */
  async start(signal: AbortSignal): Promise<void> {
    // Until now another replica led (or the caches were filling): what changed meanwhile is in the caches,
    // and the keys of objects that came and went are not queued for nothing.
    this.#started = true;
    for (const replay of this.#replays) replay();
    const concurrency = Math.max(1, this.#o.concurrency ?? 1);
    const hard = new AbortController();
    const m = this.#o.metrics;
    m?.maxConcurrentReconciles.set({ controller: this.name }, concurrency);
    this.#log.info("Starting workers", { workerCount: concurrency });
    const workers = Array.from({ length: concurrency }, () => this.#worker(hard.signal));
    const stop = async () => {
      this.queue.shutDown();
      const lost = signal.reason instanceof LeadershipLostError ? signal.reason.graceMs : Infinity;
      const bound = Math.min(this.#o.shutdownTimeoutMs ?? 30_000, lost);
      if (!(await this.queue.drain(bound))) {
        this.#log.info("Reconciles still running after the shutdown bound; cancelling them", {
          inFlight: this.queue.inFlight,
        });
      }
      hard.abort(new DOMException("Controller stopped", "AbortError"));
    };
    const stopped = new Promise<void>((resolve) => {
      const go = () => stop().then(resolve);
      if (signal.aborted) go();
      else signal.addEventListener("abort", go, { once: true });
    });
    await Promise.all([stopped, ...workers]);
    this.#log.info("Workers stopped");
  }

  async #worker(hard: AbortSignal): Promise<void> {
    while (true) {
      const key = await this.queue.get();
      if (key === undefined) return;
      try {
        await this.#process(key, hard);
      } finally {
        this.queue.done(key);
      }
    }
  }

  async #process(key: string, signal: AbortSignal): Promise<void> {
    const m = this.#o.metrics;
    const c = { controller: this.name };
    const reconcileID = crypto.randomUUID();
    const log = this.#log.with({ ...(this.#o.logFields ?? objectKeyFields)(key), reconcileID });
    const started = this.#clock.now();
    m?.activeWorkers.inc(c);
    let result: string;
    try {
      const action = await this.#o.reconcile(key, {
        signal,
        log,
        reconcileID,
        retries: this.queue.retries(key),
      });
      if (action.type === "requeueAfter") {
        this.queue.forget(key);
        this.queue.addAfter(key, action.ms);
        result = "requeue_after";
      } else {
        this.queue.forget(key);
        result = "success";
      }
    } catch (e) {
      // A write into a namespace that is gone cannot succeed on a retry: the key waits for a change (the
      // namespace made again) or a resync.
      const gone = key.includes("/") && isNamespaceGone(e, key.slice(0, key.indexOf("/")));
      if (e instanceof TerminalError || gone) {
        this.queue.forget(key);
        m?.reconcileTerminalErrors.inc(c);
        log.error(
          gone
            ? "Reconciler error (its namespace is gone; Kubernetes left the object in storage; not retried)"
            : "Reconciler error (terminal; not retried)",
          e,
        );
      } else {
        this.queue.addRateLimited(key);
        log.error("Reconciler error", e, { retries: this.queue.retries(key) });
      }
      m?.reconcileErrors.inc(c);
      result = "error";
    } finally {
      m?.activeWorkers.dec(c);
    }
    m?.reconcileTotal.inc({ controller: this.name, result });
    m?.reconcileTime.observe(c, (this.#clock.now() - started) / 1000);
  }
}
