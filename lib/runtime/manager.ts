/**
 * The manager runs the parts in order: informers (on every replica, so caches are warm for a fast
 * failover), then — once every cache has synced and this replica leads — the controllers. On shutdown it
 * reverses the order: controllers stop intake and finish in-flight work (bounded), the Lease is released,
 * then informers and the other runnables stop. Rules: `start(signal)` awaits every promise it started;
 * it rejects only when leadership is lost or a runnable fails, after everything has stopped. Liveness
 * (`healthy()`) fails when a cache's loop has ended while the manager runs or a controller is wedged;
 * readiness (`ready()`) when the caches have not synced or this replica leads on a Lease it could not renew.
 */

import type { Logger } from "../observe/mod.ts";
import { nullLogger, type RuntimeMetrics } from "../observe/mod.ts";
import type { Clock } from "./clock.ts";
import type { Controller } from "./controller.ts";
import { type LeaderElectionOptions, LeaderElector } from "./leader_election.ts";

/** A cache the manager starts and waits for (every `Informer` is one). */
export interface Cache {
  /** Names the cache in logs. */
  readonly name: string;
  /** Whether the cache holds a complete first listing. */
  hasSynced(): boolean;
  /** Resolves `true` once synced, or `false` if `signal` aborts first. */
  waitForSync(signal?: AbortSignal): Promise<boolean>;
  /** Keeps the cache current until `signal` aborts; resolves once stopped. */
  start(signal: AbortSignal): Promise<void>;
}

/** Anything long-running: resolves after `signal` aborts and it has stopped. */
export interface Runnable {
  /** Runs until `signal` aborts and resolves once stopped; a rejection makes the manager's `start` reject. */
  start(signal: AbortSignal): Promise<void>;
}

/** Options of {@linkcode Manager}. */
export interface ManagerOptions {
  /** Started first, on every replica; the controllers wait until all have synced. */
  caches: readonly Cache[];
  /** Started while this replica leads (always, without leader election), after `beforeControllers`. */
  controllers: readonly Controller[];
  /** Runnables that, like controllers, run only while this replica leads (e.g. periodic drift checks). */
  leaderRunnables?: readonly Runnable[] | undefined;
  /** Runnables on every replica (Event recorder, HTTP server); stopped last. */
  runnables?: readonly Runnable[] | undefined;
  /**
   * Called with synced caches each time this replica is about to start the controllers (e.g. to read the
   * settings every reconciler depends on before the first reconcile).
   */
  beforeControllers?: (() => void) | undefined;
  /** Omit to run controllers without leader election. */
  leaderElection?: Omit<LeaderElectionOptions, "logger" | "metrics" | "clock"> | undefined;
  /** Logs as its `manager` child; the elector gets it too (default: none). */
  logger?: Logger | undefined;
  /** Passed to the elector for `leader_election_master_status` (default: none). */
  metrics?: RuntimeMetrics | undefined;
  /** Passed to the elector (default: the system clock). */
  clock?: Clock | undefined;
}

/** Starts and stops caches, leader election and controllers. */
export class Manager {
  readonly #o: ManagerOptions;
  readonly #log: Logger;
  /** The leader election candidate; undefined without leader election. */
  readonly elector: LeaderElector | undefined;
  #running = false;
  /** Caches whose loop ended while the manager was still running (a dead watch loop). */
  readonly #deadCaches = new Set<string>();

  /** Builds the elector (if configured); nothing starts until `start(signal)`. */
  constructor(options: ManagerOptions) {
    this.#o = options;
    this.#log = (options.logger ?? nullLogger()).named("manager");
    this.elector = options.leaderElection &&
      new LeaderElector({
        ...options.leaderElection,
        logger: options.logger,
        metrics: options.metrics,
        clock: options.clock,
      });
  }

  /**
   * Readiness: every cache has synced, and, when this replica leads, its Lease is current (a follower is
   * ready: its warm caches are what a failover needs).
   */
  ready(): boolean {
    return this.#o.caches.every((c) => c.hasSynced()) && (this.elector?.leaseCurrent() ?? true);
  }

  /** Liveness: running, every cache's loop alive, no controller wedged. */
  healthy(): boolean {
    return this.#running && this.#deadCaches.size === 0 && this.#o.controllers.every((c) => c.healthy());
  }

  /** Runs until `signal` aborts (or leadership is lost), then stops everything in order. */
  async start(signal: AbortSignal): Promise<void> {
    this.#running = true;
    const cachesStop = new AbortController();
    const runnablesStop = new AbortController();
    const caches = this.#o.caches.map((c) =>
      c.start(cachesStop.signal).finally(() => {
        if (!cachesStop.signal.aborted) {
          this.#deadCaches.add(c.name);
          this.#log.error("A cache stopped while the manager runs", new Error(`${c.name} ended`));
        }
      })
    );
    const runnables = (this.#o.runnables ?? []).map((r) => r.start(runnablesStop.signal));
    let failure: unknown;
    try {
      this.#log.info("Waiting for caches to sync", { caches: this.#o.caches.map((c) => c.name).join(",") });
      const synced = await Promise.all(this.#o.caches.map((c) => c.waitForSync(signal)));
      if (synced.every(Boolean) && !signal.aborted) {
        this.#log.info("Caches synced");
        if (this.elector) await this.elector.run(signal, (leading) => this.#runControllers(leading));
        else await this.#runControllers(signal);
      }
    } catch (e) {
      failure = e;
    } finally {
      cachesStop.abort();
      runnablesStop.abort();
      const settled = await Promise.allSettled([...caches, ...runnables]);
      for (const s of settled) if (s.status === "rejected") failure ??= s.reason;
      this.#running = false;
      this.#log.info("Stopped");
    }
    if (failure !== undefined) throw failure;
  }

  async #runControllers(signal: AbortSignal): Promise<void> {
    this.#o.beforeControllers?.();
    this.#log.info("Starting controllers", { controllers: this.#o.controllers.map((c) => c.name).join(",") });
    await Promise.all([
      ...this.#o.controllers.map((c) => c.start(signal)),
      ...(this.#o.leaderRunnables ?? []).map((r) => r.start(signal)),
    ]);
  }
}
