/**
 * The gate in front of every Backrest call and every write auto-binding makes: open only while the
 * OperatorConfig in force is known to be the current one. Rules:
 * - Known means every cache is current (synced, each watch open with no failure since): the OperatorConfig's
 *   informer lists again after any failure, so once its watch is open its cache holds the config as it is
 *   now, and the settings in force follow that cache synchronously (operator.ts); the other caches are
 *   required too, so no decision mixes a fresh event with a cache that is behind (docs/architecture.md
 *   lists each such decision). An apiserver restart closes the gate until every watch is open again.
 * - While not known, nothing is sent to Backrest: every client call is refused at the call
 *   ({@linkcode ConfigUnknownError}), and reconciles that would act are held quietly: no status write, no
 *   Event, a counter, one log line while it lasts, and each held key is queued again the moment the gate
 *   opens.
 * - A call is also refused, and its reconcile held, when the settings it was decided on are no longer in
 *   force (paused, a tighter allowlist or policy since), so the kill switch stops calls already on their way.
 */
import { backrestURLAllowed } from "../api/mod.ts";
import type { BackrestApi, BackrestConnection } from "../backrest/mod.ts";
import type { Counter, Gauge, Logger } from "../observe/mod.ts";
import { type Action, type Clock, done, type Reconciler, requeueAfter, systemClock } from "../runtime/mod.ts";
import type { OperatorSettings } from "./settings.ts";

/** A cache that says whether it is current (every `Informer` does). */
export interface CurrentCache {
  /** Names the cache in the hold's log line. */
  readonly name: string;
  /** Synced, and every watch open with no failure since. */
  isCurrent(): boolean;
  /** Calls `listener` each time `isCurrent()` changes. */
  onCurrentChange(listener: (current: boolean) => void): void;
}

/**
 * A Backrest call or a write was refused: the OperatorConfig in force is not known to be current, or the
 * settings the decision was made on are no longer in force. Reconcilers let it through; the controller's
 * wrapper ({@linkcode heldWhileUnknown}) turns it into a quiet hold. Its text names no Secret or URL.
 */
export class ConfigUnknownError extends Error {
  /** Always `"ConfigUnknownError"`. */
  override readonly name = "ConfigUnknownError";
}

/** Options of {@linkcode ConfigGate}. */
export interface ConfigGateOptions {
  /** Every cache decisions read, the OperatorConfig's first. */
  caches: readonly CurrentCache[];
  /** The settings in force (they follow the OperatorConfig cache). */
  settings: () => OperatorSettings;
  /** Where the one line per hold period goes. */
  logger: Logger;
  /** `backrest_volsync_operator_config_known`: 1 while known, else 0. */
  known?: Gauge | undefined;
  /** `backrest_volsync_config_holds_total{controller}`: reconciles held while not known. */
  holds?: Counter | undefined;
  /** Time source for how long a hold lasted (default: the system clock). */
  clock?: Clock | undefined;
}

/** When a reconcile refused although the gate is open (its settings changed under it) runs again. */
const CHANGED_RETRY_MS = 1_000;

/** Whether Backrest may be called now, and the holds while it may not. */
export class ConfigGate {
  readonly #o: ConfigGateOptions;
  readonly #clock: Clock;
  #known: boolean;
  /** Held keys by the function that queues them again. */
  readonly #held = new Map<(key: string) => void, Set<string>>();
  /** When the current period of not knowing began its holds (undefined: nothing held yet). */
  #holdingSince: number | undefined;
  #waiters: (() => void)[] = [];

  /** Watches every cache in `options.caches`; starts closed until each is current. */
  constructor(options: ConfigGateOptions) {
    this.#o = options;
    this.#clock = options.clock ?? systemClock;
    this.#known = this.#compute();
    options.known?.set({}, this.#known ? 1 : 0);
    for (const c of options.caches) c.onCurrentChange(() => this.#refresh());
  }

  /** Whether the OperatorConfig in force is known to be current (every cache is current). */
  known(): boolean {
    return this.#known;
  }

  /** The names of the caches that are not current now (none while known). */
  notCurrent(): string[] {
    return this.#o.caches.filter((c) => !c.isCurrent()).map((c) => c.name);
  }

  /**
   * Throws {@linkcode ConfigUnknownError} unless the config is known and, when given, `used` (the settings
   * a decision was made on) is still the one in force. Call it right before the write or call it guards.
   */
  check(used?: OperatorSettings): void {
    if (!this.#known) throw new ConfigUnknownError("the OperatorConfig in force is not known to be current");
    if (used !== undefined && this.#o.settings() !== used) {
      throw new ConfigUnknownError("the OperatorConfig changed since this reconcile read it");
    }
  }

  /** Resolves `true` once known (at once if it is), or `false` when `signal` aborts first. */
  waitKnown(signal: AbortSignal): Promise<boolean> {
    if (this.#known) return Promise.resolve(true);
    if (signal.aborted) return Promise.resolve(false);
    return new Promise((resolve) => {
      const onAbort = () => resolve(false);
      signal.addEventListener("abort", onAbort, { once: true });
      this.#waiters.push(() => {
        signal.removeEventListener("abort", onAbort);
        resolve(true);
      });
    });
  }

  /**
   * Holds `key` of `controller`: counted, the period's one log line, and `resume(key)` once known. When the
   * gate is open already (the settings changed under the reconcile), the key simply runs again shortly.
   */
  hold(controller: string, key: string, resume: (key: string) => void): Action {
    if (this.#known) return requeueAfter(CHANGED_RETRY_MS);
    this.#o.holds?.inc({ controller });
    const keys = this.#held.get(resume) ?? new Set<string>();
    keys.add(key);
    this.#held.set(resume, keys);
    if (this.#holdingSince === undefined) {
      this.#holdingSince = this.#clock.now();
      this.#o.logger.info(
        "Holding Backrest calls and auto-binding writes: the OperatorConfig in force is not known to be " +
          "current until every cache's watch is open again",
        { notCurrent: this.notCurrent().join(",") },
      );
    }
    return done;
  }

  /** Backrest clients from `factory` whose every call is refused while not known, paused or not allowed. */
  gatedBackrest(
    factory: (connection: BackrestConnection) => BackrestApi,
  ): (connection: BackrestConnection) => BackrestApi {
    return (connection) => {
      const api = factory(connection);
      /** `call()` if admitted now (decided as it is made, nothing awaited in between), else a rejection. */
      const admitted = <T>(call: () => Promise<T>): Promise<T> => {
        try {
          this.check();
        } catch (e) {
          return Promise.reject(e);
        }
        const s = this.#o.settings();
        // The settings now, not those the caller decided on: a pause or a tighter allowlist that arrived
        // since stops the call.
        if (s.spec.paused || !backrestURLAllowed(connection.url, s.spec.backrestURLAllowlist)) {
          return Promise.reject(
            new ConfigUnknownError("the OperatorConfig in force no longer allows this Backrest call"),
          );
        }
        return call();
      };
      return {
        url: api.url,
        addRepo: (r, o) => admitted(() => api.addRepo(r, o)),
        removeRepo: (id, o) => admitted(() => api.removeRepo(id, o)),
        checkRepoExists: (r, o) => admitted(() => api.checkRepoExists(r, o)),
        doRepoTask: (id, task, o) => admitted(() => api.doRepoTask(id, task, o)),
        listRepoIds: (o) => admitted(() => api.listRepoIds(o)),
        probe: (o) => admitted(() => api.probe(o)),
      };
    };
  }

  #compute(): boolean {
    return this.#o.caches.every((c) => c.isCurrent());
  }

  #refresh(): void {
    const known = this.#compute();
    if (known === this.#known) return;
    this.#known = known;
    this.#o.known?.set({}, known ? 1 : 0);
    if (!known) return;
    for (const w of this.#waiters.splice(0)) w();
    if (this.#holdingSince === undefined) return;
    let held = 0;
    for (const keys of this.#held.values()) held += keys.size;
    this.#o.logger.info("The OperatorConfig in force is known again; resuming held work", {
      held,
      heldForMs: this.#clock.now() - this.#holdingSince,
    });
    this.#holdingSince = undefined;
    const all = [...this.#held];
    this.#held.clear();
    for (const [resume, keys] of all) for (const k of keys) resume(k);
  }
}

/**
 * `reconcile`, held while the gate is closed: it does not start then, and one that meets a refused call
 * ({@linkcode ConfigUnknownError}) ends without a status write; either way the key is queued again through
 * `resume` once the gate opens.
 */
export function heldWhileUnknown(
  gate: ConfigGate,
  controller: string,
  resume: (key: string) => void,
  reconcile: Reconciler,
): Reconciler {
  return async (key, ctx) => {
    if (!gate.known()) return gate.hold(controller, key, resume);
    try {
      return await reconcile(key, ctx);
    } catch (e) {
      if (!(e instanceof ConfigUnknownError)) throw e;
      ctx.log.debug("Held", { why: e.message });
      return gate.hold(controller, key, resume);
    }
  };
}
