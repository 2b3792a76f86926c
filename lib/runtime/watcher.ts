/**
 * The watcher (client-go's reflector): list, then watch from the list's resourceVersion with bookmarks,
 * and keep going. Rules:
 * - resume from the last seen resourceVersion (event or bookmark) after any break;
 * - relist from scratch when the apiserver says that version is gone (HTTP 410, or an ERROR event with
 *   code 410), and only then;
 * - every watch asks the server to close it after `timeoutSeconds`, and a watchdog aborts it if it is
 *   still open `stallGraceMs` later (a dead TCP path never closes on its own);
 * - failures wait with capped exponential backoff plus jitter; a healthy watch resets the backoff.
 */

import {
  type KubeClient,
  KubeError,
  type KubeObject,
  type ListPage,
  type ResourceType,
  type WatchEvent,
} from "../kube/mod.ts";
import type { Logger } from "../observe/mod.ts";
import { type Clock, sleep, systemClock } from "./clock.ts";
import { exponentialBackoff } from "./rate_limit.ts";

/** Where a watcher gets its data: one list page, and one watch. */
export interface ListWatch<T extends KubeObject> {
  /** One page of at most `limit` objects, continuing from `continue` when given. */
  list(options: {
    namespace?: string | undefined;
    limit: number;
    continue?: string | undefined;
    signal: AbortSignal;
  }): Promise<ListPage<T>>;
  /** The changes after `resourceVersion`, with bookmarks; the server ends it after `timeoutSeconds`. */
  watch(options: {
    namespace?: string | undefined;
    resourceVersion: string;
    timeoutSeconds: number;
    signal: AbortSignal;
  }): AsyncIterable<WatchEvent<T>>;
}

/** Label and field selectors for {@linkcode listWatch}. */
export interface Selectors {
  /** Only objects whose labels match (the apiserver's syntax); omitted: all. */
  labelSelector?: string | undefined;
  /** Only objects whose fields match, e.g. `metadata.name=x`; omitted: all. */
  fieldSelector?: string | undefined;
}

/** A ListWatch of full objects of `type`. */
export function listWatch<T extends KubeObject>(
  client: KubeClient,
  type: ResourceType<T>,
  selectors: Selectors = {},
): ListWatch<T> {
  return {
    list: (o) => client.list(type, { ...selectors, ...o }),
    watch: (o) => client.watch(type, { ...selectors, ...o, allowWatchBookmarks: true }),
  };
}

/** A ListWatch of PartialObjectMetadata (for Secrets: names, labels, versions; never data). */
export function metadataListWatch(
  client: KubeClient,
  type: ResourceType,
  selectors: Selectors = {},
): ListWatch<KubeObject> {
  return {
    list: (o) => client.listMetadata(type, { ...selectors, ...o }),
    watch: (o) => client.watchMetadata(type, { ...selectors, ...o, allowWatchBookmarks: true }),
  };
}

/** Options of {@linkcode runWatcher}. */
export interface WatcherOptions<T extends KubeObject> {
  /** Where lists and watches come from. */
  listWatch: ListWatch<T>;
  /** Namespace to list and watch (undefined: all). */
  namespace?: string | undefined;
  /** A full list arrived (each item through `transform`): the complete state at `resourceVersion`. */
  onList(items: T[], resourceVersion: string): void;
  /**
   * Applied to each listed object as its page arrives, so a large list never holds more than one page
   * of raw objects (the informer's slimming transform).
   */
  transform?: ((obj: T) => T) | undefined;
  /** One change from the watch. */
  onEvent(type: "ADDED" | "MODIFIED" | "DELETED", object: T): void;
  /** Time source for the watchdog and backoff sleeps (default: the system clock). */
  clock?: Clock | undefined;
  /** Logs failures, relists and stalls (default: none). */
  logger?: Logger | undefined;
  /** List page size (default 500). */
  pageSize?: number | undefined;
  /** Server-side watch timeout (default 300 s), stretched by up to `watchTimeoutJitter` (default 1, i.e. ×2). */
  watchTimeoutSeconds?: number | undefined;
  /** Fraction of `watchTimeoutSeconds` added at random to each watch's timeout, so watches do not align. */
  watchTimeoutJitter?: number | undefined;
  /** How long past its timeout a watch may stay open before it is declared stalled (default 30 s). */
  stallGraceMs?: number | undefined;
  /** Delay before retry `attempt` (default 800 ms doubling to 30 s, plus up to 100 % jitter, as client-go). */
  backoff?: ((attempt: number) => number) | undefined;
  /** Source of jitter in [0, 1) (default `Math.random`). */
  random?: (() => number) | undefined;
}

/** Counters a watcher keeps (for tests and debugging). */
export interface WatcherStats {
  /** Complete lists handed to `onList`. */
  lists: number;
  /** Watches started. */
  watches: number;
  /** Watches the watchdog aborted because they stayed open past their timeout and grace. */
  stalls: number;
  /** Relists because the resourceVersion was gone (410). */
  expired: number;
  /** Failed lists and watches (each followed by a backoff). */
  errors: number;
  /** The last resourceVersion seen (list, event or bookmark); undefined before the first list. */
  resourceVersion: string | undefined;
}

/** Counters at zero, before a watcher's first list. */
export function newWatcherStats(): WatcherStats {
  return { lists: 0, watches: 0, stalls: 0, expired: 0, errors: 0, resourceVersion: undefined };
}

class Expired extends Error {}

/**
 * Lists and watches until `signal` aborts. Resolves once stopped; never rejects. Shutdown does not wait
 * for the HTTP stream to wind down: under load a watch body was seen to outlive its aborted request, and a
 * stuck stream must not hold the operator past its termination grace period.
 */
export function runWatcher<T extends KubeObject>(
  options: WatcherOptions<T>,
  signal: AbortSignal,
  stats: WatcherStats = newWatcherStats(),
): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  const stopped = new Promise<void>((resolve) =>
    signal.addEventListener("abort", () => resolve(), { once: true })
  );
  return Promise.race([watchLoop(options, signal, stats), stopped]);
}

async function watchLoop<T extends KubeObject>(
  options: WatcherOptions<T>,
  signal: AbortSignal,
  stats: WatcherStats,
): Promise<void> {
  const clock = options.clock ?? systemClock;
  const random = options.random ?? Math.random;
  const backoff = options.backoff ??
    exponentialBackoff({ baseMs: 800, maxMs: 30_000, jitter: 1, random });
  const pageSize = options.pageSize ?? 500;
  const log = options.logger?.with({ namespace: options.namespace });
  let rv: string | undefined;
  let attempt = 0;

  const fail = async (e: unknown, what: string) => {
    stats.errors++;
    attempt++;
    const delay = backoff(attempt);
    log?.error(`${what} failed; retrying`, e, { attempt, delayMs: Math.round(delay) });
    await sleep(clock, delay, signal);
  };

  /**
   * Lists every page, hands the items to `onList` and returns the list's resourceVersion. A function of its
   * own so the raw items die with its frame: kept in this loop's suspended frame they stayed alive for the
   * whole watch that follows (5 000 raw objects, managedFields and all).
   */
  const list = async (): Promise<string> => {
    const items: T[] = [];
    let page = await options.listWatch.list({ namespace: options.namespace, limit: pageSize, signal });
    const listRv = page.resourceVersion;
    const slim = options.transform ?? ((o: T) => o);
    for (const item of page.items) items.push(slim(item));
    while (page.continue) {
      page = await options.listWatch.list({
        namespace: options.namespace,
        limit: pageSize,
        continue: page.continue,
        signal,
      });
      for (const item of page.items) items.push(slim(item));
    }
    stats.lists++;
    options.onList(items, listRv);
    log?.debug("Listed", { count: items.length, resourceVersion: listRv });
    return listRv;
  };

  while (!signal.aborted) {
    if (rv === undefined) {
      try {
        rv = await list();
        stats.resourceVersion = rv;
      } catch (e) {
        if (signal.aborted) break;
        await fail(e, "List");
        continue;
      }
    }

    const timeoutSeconds = Math.round(
      (options.watchTimeoutSeconds ?? 300) * (1 + (options.watchTimeoutJitter ?? 1) * random()),
    );
    const graceMs = options.stallGraceMs ?? 30_000;
    const watchAbort = new AbortController();
    let stalled = false;
    const cancelWatchdog = clock.timer(() => {
      stalled = true;
      watchAbort.abort(new DOMException("Watch stalled", "TimeoutError"));
    }, timeoutSeconds * 1000 + graceMs);
    const onAbort = () => watchAbort.abort(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    const started = clock.now();
    let received = 0;
    try {
      stats.watches++;
      for await (
        const ev of options.listWatch.watch({
          namespace: options.namespace,
          resourceVersion: rv,
          timeoutSeconds,
          signal: watchAbort.signal,
        })
      ) {
        received++;
        if (ev.type === "BOOKMARK") {
          rv = ev.resourceVersion;
        } else if (ev.type === "ERROR") {
          if (ev.status.code === 410) throw new Expired(ev.status.message ?? "resourceVersion expired");
          throw new KubeError(
            ev.status.code ?? 500,
            ev.status.reason ?? "WatchError",
            ev.status.message ?? "",
          );
        } else {
          options.onEvent(ev.type, ev.object);
          rv = ev.object.metadata.resourceVersion ?? rv;
        }
        stats.resourceVersion = rv;
      }
      // A clean close (the server's timeout). Back off only if it closed at once with nothing to say.
      if (received === 0 && clock.now() - started < 1000) {
        await fail(new Error("watch closed at once"), "Watch");
      } else attempt = 0;
    } catch (e) {
      if (signal.aborted) break;
      if (e instanceof Expired || (e instanceof KubeError && e.status === 410)) {
        stats.expired++;
        log?.info("Watch resourceVersion expired; relisting", { resourceVersion: rv });
        rv = undefined;
        continue;
      }
      if (stalled) {
        stats.stalls++;
        log?.info("Watch stalled; restarting", { resourceVersion: rv, afterMs: clock.now() - started });
        attempt = 0;
        continue;
      }
      if (received > 0) attempt = 0; // it was healthy for a while
      await fail(e, "Watch");
    } finally {
      cancelWatchdog();
      signal.removeEventListener("abort", onAbort);
    }
  }
}
