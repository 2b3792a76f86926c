/**
 * Circuit breakers per Backrest URL, so a dead or black-holed Backrest costs its Bindings a fast refusal
 * instead of a deadline each, and costs the Bindings of every other Backrest nothing. Rules: only failures
 * that say the server is not answering count (see {@linkcode countsAgainst}: a tenant's slow storage must
 * not close a shared Backrest to everyone); after
 * one, the URL is refused at once until its backoff passes (1 s doubling to 1 min); then exactly one call
 * goes through as a probe while the others are still refused; a success closes the breaker. Refusals are
 * `unavailable` errors, so callers retry them with their own backoff.
 */
import { BackrestError } from "./errors.ts";

/** Why a call to a Backrest that stopped answering is not made. */
export const REFUSED =
  "Backrest did not answer recently; it is tried again at most once a minute, calls fail at once meanwhile";

/** Options of {@linkcode Breakers}. */
export interface BreakerOptions {
  /** First wait after a failure (default 1 s). */
  baseMs?: number;
  /** Longest wait (default 1 min: a dead Backrest is tried once a minute). */
  maxMs?: number;
  /** URLs remembered at most (default 1 024; the ones failed longest ago are forgotten first). */
  maxURLs?: number;
  /** Clock in epoch milliseconds (default `Date.now`; tests pass a fake). */
  now?: () => number;
}

interface Tripped {
  failures: number;
  /** Refused until then. */
  until: number;
  /** A probe call is out. */
  probing: boolean;
}

/** The breakers of every Backrest URL the operator calls. */
export class Breakers {
  readonly #o: BreakerOptions;
  readonly #now: () => number;
  readonly #tripped = new Map<string, Tripped>();

  /** Every URL starts admitted; the defaults are in {@linkcode BreakerOptions}. */
  constructor(options: BreakerOptions = {}) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
  }

  /**
   * Lets a call to `url` through, or throws an `unavailable` BackrestError when the URL is refused. The
   * caller reports the outcome with {@linkcode success} or {@linkcode failure}.
   */
  admit(url: string, rpc: string): void {
    const t = this.#tripped.get(url);
    if (!t) return;
    const now = this.#now();
    if (now >= t.until && !t.probing) {
      t.probing = true;
      return;
    }
    // The same words every time: a Binding retrying against a dead Backrest does not rewrite its status.
    throw new BackrestError("unavailable", rpc, `${rpc}: ${REFUSED}`, { code: "unavailable" });
  }

  /** A call to `url` got an answer: the breaker closes. */
  success(url: string): void {
    this.#tripped.delete(url);
  }

  /** A call to `url` got no answer (or an unreadable one): refused for the next backoff. */
  failure(url: string): void {
    const t = this.#tripped.get(url);
    const failures = (t?.failures ?? 0) + 1;
    const wait = Math.min(this.#o.maxMs ?? 60_000, (this.#o.baseMs ?? 1000) * 2 ** (failures - 1));
    this.#tripped.delete(url); // re-inserted last: the Map's order is the forgetting order
    this.#tripped.set(url, { failures, until: this.#now() + wait, probing: false });
    const max = this.#o.maxURLs ?? 1024;
    while (this.#tripped.size > max) this.#tripped.delete(this.#tripped.keys().next().value!);
  }

  /** A call that ended without telling anything (canceled, or a refusal of our own): the probe slot frees. */
  released(url: string): void {
    const t = this.#tripped.get(url);
    if (t) t.probing = false;
  }

  /** Whether `url` is refused now (for metrics and health). */
  isOpen(url: string): boolean {
    const t = this.#tripped.get(url);
    return t !== undefined && (this.#now() < t.until || t.probing);
  }
}

/** Calls whose server side runs restic against a tenant's storage: slow storage makes them slow too. */
const RUNS_RESTIC: ReadonlySet<string> = new Set(["AddRepo", "CheckRepoExists"]);

/**
 * Whether a failure says Backrest itself did not answer (and so counts against its breaker): no connection
 * or an unreadable answer, or a deadline on a call that does not wait for restic. A deadline on AddRepo or
 * CheckRepoExists says only that one repository's storage is slow, and an error Backrest answered with says
 * Backrest is there: neither may close Backrest to every other Binding.
 */
export function countsAgainst(e: BackrestError): boolean {
  if (e.kind === "unavailable") return !e.fromServer;
  return e.kind === "deadline" && !RUNS_RESTIC.has(e.rpc);
}
