/**
 * Which repo ids each Backrest holds, from one shared `GetSummaryDashboard` call per Backrest (it carries
 * no credentials, but walks Backrest's whole operation log: never one per Binding). Drift repair refreshes
 * it once per period; a Binding that must know whether an id exists uses an answer at most a few seconds
 * old, and concurrent askers share one call. Rules: a listing is made only with credentials that reached
 * this Backrest for a Ready Binding (its inputs, auth included, were applied), tried in the order they last
 * worked; credentials Backrest refuses are dropped, so one Binding's bogus `authRef` cannot stop the
 * listing for everyone.
 */
import {
  authFingerprint,
  type BackrestApi,
  type BackrestConnection,
  BackrestError,
} from "../backrest/mod.ts";

/** Options of {@linkcode RepoListings}. */
export interface RepoListingsOptions {
  /** A (pooled) Backrest client for a connection; listings call its `listRepoIds`. */
  backrest: (connection: BackrestConnection) => BackrestApi;
  /** Deadline of a listing call (default 60 s). */
  timeoutMs?: number;
  /** How many credentials to keep per Backrest (default 8). */
  maxConnections?: number;
  /** Clock in epoch milliseconds, for listing ages and when credentials worked (default `Date.now`). */
  now?: () => number;
}

interface Known {
  connection: BackrestConnection;
  /** When a call with it last succeeded (0: not yet). */
  workedAt: number;
}

interface Listing {
  ids: ReadonlySet<string>;
  at: number;
}

/** Thrown when no remembered credentials can list a Backrest. */
export class NoListingError extends Error {
  /** Always `"NoListingError"`. */
  override readonly name = "NoListingError";
}

/** Per-Backrest repo id listings and the credentials to make them. */
export class RepoListings {
  readonly #o: RepoListingsOptions;
  readonly #now: () => number;
  readonly #known = new Map<string, Map<string, Known>>();
  readonly #listings = new Map<string, Listing>();
  readonly #inflight = new Map<string, Promise<ReadonlySet<string>>>();

  /** Starts with no credentials and no listings. */
  constructor(options: RepoListingsOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
  }

  /**
   * Remembers credentials for `connection.url` (a canonical URL); `worked` when a call with them just
   * succeeded, otherwise they are a candidate (a Ready Binding's, applied earlier).
   */
  remember(connection: BackrestConnection, worked: boolean): void {
    const url = connection.url;
    const byAuth = this.#known.get(url) ?? new Map<string, Known>();
    const fp = authFingerprint(connection.auth ?? { kind: "none" });
    const before = byAuth.get(fp);
    byAuth.set(fp, { connection, workedAt: worked ? this.#now() : before?.workedAt ?? 0 });
    const max = this.#o.maxConnections ?? 8;
    if (byAuth.size > max) {
      // Drop the one that worked least recently (never-worked candidates first).
      const [oldest] = [...byAuth.entries()].reduce((a, b) => (a[1].workedAt <= b[1].workedAt ? a : b));
      byAuth.delete(oldest);
    }
    this.#known.set(url, byAuth);
  }

  /** The Backrest URLs with remembered credentials. */
  urls(): string[] {
    return [...this.#known.keys()];
  }

  /** Forgets every Backrest not in `keep` (Bindings moved away from it). */
  retain(keep: ReadonlySet<string>): void {
    for (const url of [...this.#known.keys()]) {
      if (keep.has(url)) continue;
      this.#known.delete(url);
      this.#listings.delete(url);
    }
  }

  /**
   * The ids Backrest at `url` holds, from a listing at most `maxAgeMs` old. `extra` credentials (the
   * asking Binding's) are tried after the remembered ones. Throws the last `BackrestError`, or
   * {@linkcode NoListingError} when there is nothing to list with.
   */
  ids(
    url: string,
    opts: { maxAgeMs: number; signal?: AbortSignal; extra?: BackrestConnection },
  ): Promise<ReadonlySet<string>> {
    const cached = this.#listings.get(url);
    if (cached && this.#now() - cached.at <= opts.maxAgeMs) return Promise.resolve(cached.ids);
    let running = this.#inflight.get(url);
    if (!running) {
      running = this.#list(url, opts.signal, opts.extra).finally(() => this.#inflight.delete(url));
      this.#inflight.set(url, running);
    }
    return running;
  }

  async #list(url: string, signal?: AbortSignal, extra?: BackrestConnection): Promise<ReadonlySet<string>> {
    const known = [...(this.#known.get(url)?.values() ?? [])].sort((a, b) => b.workedAt - a.workedAt);
    const candidates = known.map((k) => k.connection);
    if (extra && !known.some((k) => sameAuth(k.connection, extra))) candidates.push(extra);
    let last: unknown = new NoListingError(`no credentials known for Backrest ${url}`);
    for (const connection of candidates) {
      try {
        const ids = new Set(
          await this.#o.backrest(connection).listRepoIds({
            ...(signal ? { signal } : {}),
            timeoutMs: this.#o.timeoutMs ?? 60_000,
          }),
        );
        this.#listings.set(url, { ids, at: this.#now() });
        if (connection !== extra) this.remember(connection, true);
        return ids;
      } catch (e) {
        if (!(e instanceof BackrestError)) throw e;
        last = e;
        // Refused credentials: forget them and try the next; anything else says nothing about them.
        if (e.kind !== "unauthenticated") break;
        this.#known.get(url)?.delete(authFingerprint(connection.auth ?? { kind: "none" }));
      }
    }
    throw last;
  }
}

function sameAuth(a: BackrestConnection, b: BackrestConnection): boolean {
  return authFingerprint(a.auth ?? { kind: "none" }) === authFingerprint(b.auth ?? { kind: "none" });
}
