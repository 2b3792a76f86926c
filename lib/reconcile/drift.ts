/**
 * Drift repair. Once per resync period, per Backrest instance, one `GetSummaryDashboard` call lists the
 * repo ids Backrest holds (no credentials travel, unlike GetConfig); every Ready Binding whose repo is
 * missing there (deleted in the UI, Backrest restarted on an empty volume) is marked and re-enqueued, so
 * its reconcile re-applies it. When nothing drifted that is O(1) Backrest calls per instance per period.
 * The listing is shared with the claim checks and made with credentials that worked (repo_listings.ts).
 * Runs on the leader only (it is started with the controllers). A new period takes effect at once: the
 * wait in progress restarts from the change with the new period. A round starts only once the
 * OperatorConfig in force is known to be current, and one the gate refuses ends quietly (config_gate.ts).
 */
import { canonicalBackrestURL, ConditionType, isConditionTrue, parseBindingStatus } from "../api/mod.ts";
import { type KubeObject, objectKey } from "../kube/mod.ts";
import type { Logger } from "../observe/mod.ts";
import { type Clock, type Store, systemClock } from "../runtime/mod.ts";
import type { DriftState } from "./binding.ts";
import { ConfigUnknownError } from "./config_gate.ts";
import type { RepoListings } from "./repo_listings.ts";

/** Options of {@linkcode DriftRepair}. */
export interface DriftRepairOptions {
  /** Cache of Bindings: the Ready ones are checked against their Backrest's listing. */
  bindings: Store<KubeObject>;
  /** The shared per-Backrest repo id listings. */
  listings: RepoListings;
  /** The resync period in force (read each round, so OperatorConfig changes apply). */
  periodMs: () => number;
  /** Whether Backrest may be called (false while paused). */
  active: () => boolean;
  /** Resolves `true` once the OperatorConfig in force is known to be current, `false` if stopped first. */
  whenKnown?: ((signal: AbortSignal) => Promise<boolean>) | undefined;
  /** Queues the Binding `key` (`namespace/name`) whose repo is missing. */
  enqueue: (key: string) => void;
  /** Told of each repo found missing from the Backrest at `url` (a metric). */
  repaired?: ((url: string) => void) | undefined;
  /** Logs each round's problems and repairs. */
  logger: Logger;
  /** Time source for the period waits (default: the system clock). */
  clock?: Clock | undefined;
}

/** Tracks missing repos and lists each Backrest once per period. */
export class DriftRepair implements DriftState {
  readonly #o: DriftRepairOptions;
  readonly #clock: Clock;
  readonly #missing = new Set<string>();
  /** Ends the wait in progress early (the period changed). */
  #restartWait: (() => void) | undefined;

  /** Nothing is listed until `start(signal)` runs (on the leader, with the controllers). */
  constructor(options: DriftRepairOptions) {
    this.#o = options;
    this.#clock = options.clock ?? systemClock;
  }

  /** The period changed: the wait in progress starts over from now with the new period. */
  periodChanged(): void {
    this.#restartWait?.();
  }

  isMissing(bindingKey: string): boolean {
    return this.#missing.has(bindingKey);
  }

  markPresent(bindingKey: string): void {
    this.#missing.delete(bindingKey);
  }

  /** One round: list every known Backrest, mark and enqueue the Bindings whose repo is gone. */
  async check(signal?: AbortSignal): Promise<{ listed: number; missing: number }> {
    const byURL = new Map<string, { key: string; repoId: string }[]>();
    for (const obj of this.#o.bindings.list()) {
      if (obj.metadata.deletionTimestamp) continue;
      const status = parseBindingStatus(obj.status);
      if (!status.repoId || !status.backrestURL) continue;
      if (!isConditionTrue(status.conditions, ConditionType.Ready)) continue;
      const url = canonicalBackrestURL(status.backrestURL);
      if (url === undefined) continue;
      const list = byURL.get(url) ?? [];
      list.push({ key: objectKey(obj), repoId: status.repoId });
      byURL.set(url, list);
    }
    let listed = 0;
    let missing = 0;
    // Credentials for Backrests no Ready Binding uses any more are dropped, and so are the missing marks
    // of Bindings that are gone.
    this.#o.listings.retain(new Set(byURL.keys()));
    for (const key of [...this.#missing]) if (!this.#o.bindings.get(key)) this.#missing.delete(key);
    for (const [url, bindings] of byURL) {
      let ids: ReadonlySet<string>;
      try {
        ids = await this.#o.listings.ids(url, { maxAgeMs: 0, ...(signal ? { signal } : {}) });
      } catch (e) {
        if (signal?.aborted) return { listed, missing };
        if (e instanceof ConfigUnknownError) {
          // Not known, or paused since the round began: the round ends here, the next period tries again.
          this.#o.logger.debug("Drift check held", { why: e.message });
          return { listed, missing };
        }
        this.#o.logger.error("Drift check could not list Backrest repos", e, { backrest: url });
        continue;
      }
      listed++;
      for (const { key, repoId } of bindings) {
        if (ids.has(repoId)) continue;
        missing++;
        this.#missing.add(key);
        this.#o.logger.info("Backrest repo missing; re-applying", { repoId, binding: key, backrest: url });
        this.#o.repaired?.(url);
        this.#o.enqueue(key);
      }
    }
    return { listed, missing };
  }

  /** Checks every period until `signal` aborts. */
  async start(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      const elapsed = await this.#wait(Math.max(1000, this.#o.periodMs()), signal);
      if (signal.aborted) return;
      if (!elapsed || !this.#o.active()) continue;
      if (this.#o.whenKnown && !(await this.#o.whenKnown(signal))) return;
      if (this.#o.active()) await this.check(signal);
    }
  }

  /** True when `ms` passed; false when the wait ended early (aborted, or the period changed). */
  #wait(ms: number, signal: AbortSignal): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      const end = (elapsed: boolean) => {
        cancel();
        signal.removeEventListener("abort", aborted);
        this.#restartWait = undefined;
        resolve(elapsed);
      };
      const aborted = () => end(false);
      const cancel = this.#clock.timer(() => end(true), ms);
      signal.addEventListener("abort", aborted, { once: true });
      this.#restartWait = () => end(false);
    });
  }
}
