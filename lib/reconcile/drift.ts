/**
 * Drift repair. Once per resync period, per Backrest instance, one `GetSummaryDashboard` call lists the
 * repo ids Backrest holds (no credentials travel, unlike GetConfig); every Ready Binding whose repo is
 * missing there (deleted in the UI, Backrest restarted on an empty volume) is marked and re-enqueued, so
 * its reconcile re-applies it. When nothing drifted that is O(1) Backrest calls per instance per period.
 * Runs on the leader only (it is started with the controllers).
 */
import { ConditionType, isConditionTrue, parseBindingStatus } from "../api/mod.ts";
import type { BackrestApi, BackrestConnection } from "../backrest/mod.ts";
import { type KubeObject, objectKey } from "../kube/mod.ts";
import type { Logger } from "../observe/mod.ts";
import type { Store } from "../runtime/mod.ts";
import { type DriftState, normalizeURL } from "./binding.ts";

/** Options of {@linkcode DriftRepair}. */
export interface DriftRepairOptions {
  bindings: Store<KubeObject>;
  backrest: (connection: BackrestConnection) => BackrestApi;
  /** The resync period in force (read each round, so OperatorConfig changes apply). */
  periodMs: () => number;
  /** Whether Backrest may be called (false while paused). */
  active: () => boolean;
  enqueue: (key: string) => void;
  logger: Logger;
  /** Deadline of the listing call. */
  timeoutMs?: number;
}

/** Tracks missing repos and lists each Backrest once per period. */
export class DriftRepair implements DriftState {
  readonly #o: DriftRepairOptions;
  readonly #missing = new Set<string>();
  readonly #connections = new Map<string, BackrestConnection>();

  constructor(options: DriftRepairOptions) {
    this.#o = options;
  }

  isMissing(bindingKey: string): boolean {
    return this.#missing.has(bindingKey);
  }

  markPresent(bindingKey: string): void {
    this.#missing.delete(bindingKey);
  }

  rememberConnection(connection: BackrestConnection): void {
    this.#connections.set(normalizeURL(connection.url), connection);
  }

  /** One round: list every known Backrest, mark and enqueue the Bindings whose repo is gone. */
  async check(signal?: AbortSignal): Promise<{ listed: number; missing: number }> {
    const byURL = new Map<string, { key: string; repoId: string }[]>();
    for (const obj of this.#o.bindings.list()) {
      if (obj.metadata.deletionTimestamp) continue;
      const status = parseBindingStatus(obj.status);
      if (!status.repoId || !status.backrestURL) continue;
      if (!isConditionTrue(status.conditions, ConditionType.Ready)) continue;
      const url = normalizeURL(status.backrestURL);
      const list = byURL.get(url) ?? [];
      list.push({ key: objectKey(obj), repoId: status.repoId });
      byURL.set(url, list);
    }
    let listed = 0;
    let missing = 0;
    for (const [url, bindings] of byURL) {
      const connection = this.#connections.get(url);
      if (!connection) continue;
      let ids: Set<string>;
      try {
        ids = new Set(
          await this.#o.backrest(connection).listRepoIds({
            ...(signal ? { signal } : {}),
            timeoutMs: this.#o.timeoutMs ?? 60_000,
          }),
        );
      } catch (e) {
        this.#o.logger.error("Drift check could not list Backrest repos", e, { backrest: url });
        continue;
      }
      listed++;
      for (const { key, repoId } of bindings) {
        if (ids.has(repoId)) continue;
        missing++;
        this.#missing.add(key);
        this.#o.logger.info("Backrest repo missing; re-applying", { repoId, binding: key, backrest: url });
        this.#o.enqueue(key);
      }
    }
    return { listed, missing };
  }

  /** Checks every period until `signal` aborts. */
  async start(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      const wait = Math.max(1000, this.#o.periodMs());
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, wait);
        function done() {
          clearTimeout(timer);
          signal.removeEventListener("abort", done);
          resolve();
        }
        signal.addEventListener("abort", done, { once: true });
      });
      if (signal.aborted) return;
      if (this.#o.active()) await this.check(signal);
    }
  }
}
