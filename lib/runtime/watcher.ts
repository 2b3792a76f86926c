/**
 * The watcher (client-go's reflector): list, then watch from the list's resourceVersion with bookmarks,
 * and keep going. Rules:
 * - resume from the last seen resourceVersion (event or bookmark) after any break, unless told to relist
 *   after a failure (`relistAfterFailure`: a resumed watch delivers what it missed only after it opened);
 * - relist from scratch when the apiserver says that version is gone (HTTP 410, or an ERROR event with
 *   code 410);
 * - every watch asks the server to close it after `timeoutSeconds`, and a watchdog aborts it if it is
 *   still open `stallGraceMs` later (a dead TCP path never closes on its own);
 * - it is live (`onLive(true)`) from the moment a watch is open until a list or watch fails, stalls or is
 *   expired; a server's timeout close is not a failure (the next watch opens at once);
 * - failures wait a bounded, jittered backoff; a watch that lived (delivered a change, or stayed open for
 *   `WATCH_LIVED_MS`) resets it, and an answer that says when to come back (429 with `Retry-After`, as the
 *   apiserver sends while a resource's storage is (re)initializing) is waited out without escalating it.
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

/** Where a watcher gets its data: one list page, and one watch. */
export interface ListWatch<T extends KubeObject> {
  /** One page of at most `limit` objects, continuing from `continue` when given. */
  list(options: {
    namespace?: string | undefined;
    limit: number;
    continue?: string | undefined;
    signal: AbortSignal;
  }): Promise<ListPage<T>>;
  /**
   * The changes after `resourceVersion`, with bookmarks; the server ends it after `timeoutSeconds`.
   * `onOpen` is called once the server accepted it, before any event (a source that cannot tell is taken
   * to be open at its first event).
   */
  watch(options: {
    namespace?: string | undefined;
    resourceVersion: string;
    timeoutSeconds: number;
    signal: AbortSignal;
    onOpen?: (() => void) | undefined;
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
  /**
   * Told `true` when a watch opened (from then on each change arrives moments after it is made) and `false`
   * when a list or watch failed, stalled or expired, and when the watcher stops.
   */
  onLive?: ((live: boolean) => void) | undefined;
  /**
   * After a failure, list again instead of resuming from the last resourceVersion (default false). For a
   * small resource whose current state must be known before anyone acts: a resumed watch replays what it
   * missed only after it opened, so for a moment it is open and behind; a list is the state now.
   */
  relistAfterFailure?: boolean | undefined;
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
  /** Delay before retry `attempt` (default {@linkcode watchBackoff}: 500 ms doubling to 5 s, jittered). */
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

/** How long an open watch must last to count as healthy (its failure then starts the backoff over). */
export const WATCH_LIVED_MS = 5_000;
/** The longest `Retry-After` honoured as asked; a longer one is cut to this. */
const MAX_RETRY_AFTER_MS = 60_000;

/**
 * The default retry delay: 500 ms doubling to a 5 s cap, each drawn from the upper half of its step
 * ([d/2, d]), so watches that failed together (an apiserver restart) do not come back together, and none
 * waits more than 5 s once the apiserver answers again.
 */
export function watchBackoff(random: () => number = Math.random): (attempt: number) => number {
  return (attempt) => {
    const step = Math.min(5_000, 500 * Math.pow(2, Math.max(0, attempt - 1)));
    return step * (0.5 + 0.5 * random());
  };
}

/**
 * The wait a 429 asks for with `Retry-After` (the apiserver sends one while a resource's storage is
 * (re)initializing), in ms, jittered up by up to a fifth; else undefined. A 503's is not taken: a starting
 * apiserver answers "not all HTTP paths installed yet" with 5 s, a second or two before it serves them,
 * and the bounded backoff already spaces those retries.
 */
function askedWait(e: unknown, random: () => number): number | undefined {
  if (!(e instanceof KubeError) || e.retryAfterSeconds === undefined || e.status !== 429) return undefined;
  return Math.min(MAX_RETRY_AFTER_MS, Math.max(100, e.retryAfterSeconds * 1000)) * (1 + 0.2 * random());
}

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
  const backoff = options.backoff ?? watchBackoff(random);
  const pageSize = options.pageSize ?? 500;
  const log = options.logger?.with({ namespace: options.namespace });
  let rv: string | undefined;
  let attempt = 0;
  let live = false;
  const setLive = (next: boolean) => {
    if (next === live || (next && signal.aborted)) return;
    live = next;
    options.onLive?.(next);
  };
  // Stopping ends liveness at once, not when the stream below winds down (see runWatcher).
  signal.addEventListener("abort", () => setLive(false), { once: true });

  const fail = async (e: unknown, what: string) => {
    setLive(false);
    stats.errors++;
    if (options.relistAfterFailure) rv = undefined;
    const asked = askedWait(e, random);
    if (asked === undefined) attempt++;
    const delay = asked ?? backoff(attempt);
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
    let changes = 0;
    let openedAt: number | undefined;
    const opened = () => {
      openedAt ??= clock.now();
      setLive(true);
    };
    /** Whether this watch was healthy for a while: its failure is news, not a streak. */
    const lived = () => changes > 0 || (openedAt !== undefined && clock.now() - openedAt >= WATCH_LIVED_MS);
    try {
      stats.watches++;
      for await (
        const ev of options.listWatch.watch({
          namespace: options.namespace,
          resourceVersion: rv,
          timeoutSeconds,
          signal: watchAbort.signal,
          onOpen: opened,
        })
      ) {
        received++;
        if (ev.type === "BOOKMARK") {
          opened();
          changes++;
          rv = ev.resourceVersion;
        } else if (ev.type === "ERROR") {
          if (ev.status.code === 410) throw new Expired(ev.status.message ?? "resourceVersion expired");
          throw new KubeError(
            ev.status.code ?? 500,
            ev.status.reason ?? "WatchError",
            ev.status.message ?? "",
            { retryAfterSeconds: ev.status.retryAfterSeconds },
          );
        } else {
          opened();
          changes++;
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
        setLive(false);
        stats.expired++;
        log?.info("Watch resourceVersion expired; relisting", { resourceVersion: rv });
        rv = undefined;
        continue;
      }
      if (stalled) {
        setLive(false);
        stats.stalls++;
        log?.info("Watch stalled; restarting", { resourceVersion: rv, afterMs: clock.now() - started });
        if (options.relistAfterFailure) rv = undefined;
        attempt = 0;
        continue;
      }
      if (lived()) attempt = 0;
      await fail(e, "Watch");
    } finally {
      cancelWatchdog();
      signal.removeEventListener("abort", onAbort);
    }
  }
}
