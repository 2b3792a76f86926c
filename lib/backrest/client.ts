/**
 * The Backrest client behind a narrow interface (`BackrestApi`): Connect RPC (binary) over fetch, with
 * auth, optional CA, a deadline on every call and AbortSignal cancellation. Rules: it never calls
 * GetConfig (its answer carries every repo's password) and never logs; every failure is a classified
 * `BackrestError` whose text has been scrubbed of the secrets involved; before the first AddRepo or
 * CheckRepoExists it probes that the server takes `AddRepoRequest` (v1.12.0+), since an older server
 * would misread our bytes. Clients are pooled per (url, auth, CA) by `backrestClient()`.
 */

import type { DescMethodUnary } from "@bufbuild/protobuf";
import { EmptySchema } from "@bufbuild/protobuf/wkt";
import { Code, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { sha256 } from "../sha256.ts";
import type { Repo } from "../../gen/v1/config_pb.ts";
import {
  AddRepoRequestSchema,
  Backrest,
  DoRepoTaskRequest_Task,
  RemoveRepoRequestSchema,
} from "../../gen/v1/service_pb.ts";
import { limitBody, readTextCapped } from "../body.ts";
import { authFingerprint, authSecrets, type BackrestAuth, basicHeader } from "./auth.ts";
import { type DesiredRepo, repoMessage } from "./desired_repo.ts";
import { Breakers, countsAgainst } from "./breaker.ts";
import { BackrestError, classify, codeName, scrub } from "./errors.ts";

/** Per-call options: a caller's signal and a deadline overriding the connection's default. */
export interface CallOptions {
  /** Aborts the call; it then fails as a `canceled` BackrestError. */
  signal?: AbortSignal;
  /** Deadline of this call in milliseconds; absent: the connection's `timeoutMs`. */
  timeoutMs?: number;
}

/** Backrest repo tasks the operator may start. */
export type RepoTask = "index_snapshots" | "prune" | "check" | "stats" | "unlock" | "forget";

/** What the operator may ask of Backrest. GetConfig is deliberately absent. */
export interface BackrestApi {
  /** The base URL called, as `fetch` spells it, without a trailing `/`. */
  readonly url: string;
  /** Adds or replaces (by id) the whole repo entry. Backrest runs `restic init` when nothing is there. */
  addRepo(repo: DesiredRepo, opts?: CallOptions): Promise<void>;
  /** Removes the repo from Backrest's config and history (never its storage); unknown ids are a no-op. */
  removeRepo(id: string, opts?: CallOptions): Promise<void>;
  /** Whether a restic repository exists at the repo's location, without creating one. */
  checkRepoExists(repo: DesiredRepo, opts?: CallOptions): Promise<boolean>;
  /** Schedules a task; resolves with Backrest's operation id (0 when none was created). */
  doRepoTask(id: string, task: RepoTask, opts?: CallOptions): Promise<bigint>;
  /** Ids of every repo configured in Backrest (from GetSummaryDashboard: no credentials travel). */
  listRepoIds(opts?: CallOptions): Promise<string[]>;
  /** Throws `unsupported` unless the server is a Backrest that takes AddRepoRequest (v1.12.0+). */
  probe(opts?: CallOptions): Promise<void>;
}

/** Where and how to reach one Backrest. */
export interface BackrestConnection {
  /** e.g. `http://backrest.backup.svc:9898`; no credentials in it. */
  url: string;
  /** Credentials, and the CA certificates trusted for https beyond the system's; absent: none sent. */
  auth?: BackrestAuth;
  /** Deadline for calls that pass none; default 60 s. */
  timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 60_000;
const PROBE_TIMEOUT_MS = 10_000;
const PROBE_OK_TTL_MS = 10 * 60_000;
const PROBE_BAD_TTL_MS = 60_000;

const TASKS: Record<RepoTask, DoRepoTaskRequest_Task> = {
  index_snapshots: DoRepoTaskRequest_Task.INDEX_SNAPSHOTS,
  prune: DoRepoTaskRequest_Task.PRUNE,
  check: DoRepoTaskRequest_Task.CHECK,
  stats: DoRepoTaskRequest_Task.STATS,
  unlock: DoRepoTaskRequest_Task.UNLOCK,
  forget: DoRepoTaskRequest_Task.FORGET,
};

/**
 * AddRepo and RemoveRepo with their answers read as `google.protobuf.Empty`: same paths and requests, but
 * the Config they return (every repo, passwords included) is never decoded (see
 * {@linkcode boundedAnswers}), which keeps them O(1) for us in memory and CPU however many repos Backrest
 * holds.
 */
const ADD_REPO_DISCARDING: DescMethodUnary<typeof AddRepoRequestSchema, typeof EmptySchema> = {
  ...Backrest.method.addRepo,
  output: EmptySchema,
};
const REMOVE_REPO_DISCARDING: DescMethodUnary<typeof RemoveRepoRequestSchema, typeof EmptySchema> = {
  ...Backrest.method.removeRepo,
  output: EmptySchema,
};

/** Paths whose successful answer (Backrest's whole Config) is never read. */
const CONFIG_ANSWER_PATHS = [Backrest.method.addRepo, Backrest.method.removeRepo].map((m) =>
  `/${Backrest.typeName}/${m.name}`
);
/** The path of GetSummaryDashboard, whose answer grows with the repos and plans Backrest holds. */
const LISTING_PATH = `/${Backrest.typeName}/${Backrest.method.getSummaryDashboard.name}`;
/** The most of a listing answer that is read (about 1 KiB per repo with its statistics). */
export const LISTING_ANSWER_LIMIT = 16 * 1024 * 1024;
/** The most of any other answer that is read (they are a few fields). */
export const SMALL_ANSWER_LIMIT = 256 * 1024;
/** The most of the version probe's error answer that is read. */
const PROBE_ANSWER_LIMIT = 16 * 1024;

/**
 * How much of a successful AddRepo or RemoveRepo answer is read and thrown away so the connection can be
 * used again, over https; past it the rest is not read and the connection closes. A new connection costs
 * a handshake (a TLS one about as much CPU as reading a megabyte); reading Backrest's Config costs
 * O(repos) bytes on every call, about 350 per repo: at 5 000 repos that is 1.7 MB per AddRepo and 4 GB
 * over a cold start.
 */
export const ADD_REPO_DRAIN_LIMIT = 256 * 1024;
/**
 * The same over plain http, where a new connection costs only a TCP connect: enough for the Config of a
 * few dozen repos, so a small Backrest keeps its connection. Reading more cost more than reconnecting:
 * draining up to 256 KiB per call made a 5 000-Binding cold start allocate about 250 KB per AddRepo,
 * which the garbage collector paid for.
 */
export const ADD_REPO_DRAIN_LIMIT_PLAIN = 16 * 1024;

/** How much of an AddRepo or RemoveRepo answer from `url` is drained before the connection is dropped. */
export function addRepoDrainLimit(url: string): number {
  return new URL(url).protocol === "https:" ? ADD_REPO_DRAIN_LIMIT : ADD_REPO_DRAIN_LIMIT_PLAIN;
}

/**
 * Wraps `fetch` so that no answer is read past a limit: a successful AddRepo or RemoveRepo answer is never
 * collected (Connect gets an empty body, an empty Empty; the answer is drained up to
 * `drainLimit` ({@linkcode addRepoDrainLimit}), then cancelled: Backrest answers only once the change is stored, so
 * the status alone says it worked); a listing is read up to {@linkcode LISTING_ANSWER_LIMIT} and anything
 * else up to {@linkcode SMALL_ANSWER_LIMIT}, past which it fails with `AnswerTooLargeError`.
 */
function boundedAnswers(fetchImpl: typeof globalThis.fetch, drainLimit: number): typeof globalThis.fetch {
  return async (input, init) => {
    const res = await fetchImpl(input, init);
    const href = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
    const path = new URL(href).pathname;
    if (res.status !== 200 || !res.body || !CONFIG_ANSWER_PATHS.some((p) => path.endsWith(p))) {
      return limitBody(res, path.endsWith(LISTING_PATH) ? LISTING_ANSWER_LIMIT : SMALL_ANSWER_LIMIT);
    }
    const reader = res.body.getReader();
    for (let read = 0;;) {
      const chunk = await reader.read();
      if (chunk.done) break;
      read += chunk.value.byteLength;
      if (read > drainLimit) {
        await reader.cancel();
        break;
      }
    }
    const headers = new Headers(res.headers);
    headers.delete("content-length");
    return new Response(null, { status: res.status, statusText: res.statusText, headers });
  };
}

/** The request builder: the only place repo secrets are revealed; the message is `repoMessage`'s. */
export function toWireRepo(repo: DesiredRepo): Repo {
  return repoMessage({
    ...repo,
    uri: repo.uri.reveal(),
    password: repo.password.reveal(),
    env: repo.env.map((e) => ({ name: e.name, value: e.value.reveal() })),
  });
}

/** Every secret value of `repo` in the forms server text may echo it. */
function repoSecrets(repo: DesiredRepo): string[] {
  const uri = repo.uri.reveal();
  const out = [uri, repo.password.reveal(), ...repo.env.map((e) => e.value.reveal())];
  // restic and Backrest may print the URI's parts (a REST server URL's user and password) on their own.
  const userinfo = /^(?:[a-z0-9]+:)?[a-z][a-z0-9+.-]*:\/\/([^/@]*)@/i.exec(uri)?.[1];
  if (userinfo) {
    out.push(userinfo);
    for (const part of userinfo.split(":")) {
      out.push(part);
      try {
        out.push(decodeURIComponent(part));
      } catch { /* not encoded */ }
    }
  }
  return out;
}

/** An HTTP client trusting `caCerts` beyond the system's roots; certificates it cannot parse are `invalid`. */
function trusting(caCerts: readonly string[]): Deno.HttpClient {
  try {
    return Deno.createHttpClient({ caCerts: [...caCerts] });
  } catch (e) {
    // Deno's text names the parse failure (e.g. "BadEncoding"), never a certificate's content.
    const why = e instanceof Error ? `: ${e.message}` : "";
    throw new BackrestError("invalid", "Connect", `the auth Secret's ca.crt cannot be used${why}`);
  }
}

/** A new, unpooled client. Prefer `backrestClient()`, which shares clients per connection. */
export function createBackrestClient(
  conn: BackrestConnection,
  options: { breakers?: Breakers } = {},
): BackrestApi & { close(): void } {
  // Unpooled clients (tests, one-off calls) keep their own breakers; the pooled ones share `sharedBreakers`.
  return new ConnectClient(conn, options.breakers ?? new Breakers());
}

/** The base URL of a connection, refused unless it is plain http(s) without credentials. */
function baseURL(raw: string): URL {
  let base: URL;
  try {
    base = new URL(raw);
  } catch {
    throw new BackrestError("invalid", "Connect", "Backrest URL is not a valid URL");
  }
  if (base.protocol !== "http:" && base.protocol !== "https:") {
    throw new BackrestError("invalid", "Connect", "Backrest URL must be http or https");
  }
  if (base.username || base.password) {
    throw new BackrestError(
      "invalid",
      "Connect",
      "Backrest URL must not carry credentials: use the auth Secret",
    );
  }
  return base;
}

/**
 * One Backrest over Connect: every call passes the URL's breaker, is classified into one `BackrestError`
 * scrubbed of every secret it involved, and (but RemoveRepo and DoRepoTask, which cannot harm an old
 * server) is preceded by the cached probe.
 */
class ConnectClient implements BackrestApi {
  readonly url: string;
  readonly #auth: BackrestAuth;
  readonly #staticSecrets: string[];
  readonly #breakers: Breakers;
  /** Its breaker's key: the URL's, or one of its own for a tenant's CA (see the constructor). */
  readonly #breaker: string;
  readonly #defaultTimeout: number;
  readonly #httpClient: Deno.HttpClient | undefined;
  readonly #fetch: typeof globalThis.fetch;
  readonly #transport: ReturnType<typeof createConnectTransport>;
  readonly #rpc: ReturnType<typeof createClient<typeof Backrest>>;
  #probed: { ok: boolean; until: number; error?: BackrestError } | undefined;

  constructor(conn: BackrestConnection, breakers: Breakers) {
    this.url = breakerKey(baseURL(conn.url).href);
    this.#auth = conn.auth ?? { kind: "none" };
    this.#staticSecrets = authSecrets(this.#auth);
    this.#breakers = breakers;
    // A tenant's own CA that does not fit the server fails only the calls made trusting it: its breaker is
    // not the one every other Binding of this Backrest shares.
    const caCerts = this.#auth.caCerts ?? [];
    this.#breaker = caCerts.length
      ? `${this.url} ca=${sha256().update(caCerts.join("\0")).digest("hex").slice(0, 16)}`
      : this.url;
    this.#defaultTimeout = conn.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const httpClient = caCerts.length > 0 ? trusting(caCerts) : undefined;
    this.#httpClient = httpClient;
    this.#fetch = httpClient
      ? (input, init) => globalThis.fetch(input, { ...init, client: httpClient })
      : globalThis.fetch;
    this.#transport = createConnectTransport({
      baseUrl: this.url,
      useBinaryFormat: true,
      fetch: boundedAnswers(this.#fetch, addRepoDrainLimit(this.url)),
      interceptors: [(next) => (req) => (this.#authorize(req.header), next(req))],
      // Nothing we read needs unknown fields.
      binaryOptions: { readUnknownFields: false },
    });
    this.#rpc = createClient(Backrest, this.#transport);
  }

  /**
   * Whether this server speaks the AddRepo this client sends (v1.12.0+). Cached: success for 10 minutes,
   * "unsupported" for 1 minute.
   */
  async probe(opts?: CallOptions): Promise<void> {
    const probed = this.#probed;
    if (probed && Date.now() < probed.until) {
      if (probed.ok) return;
      throw probed.error;
    }
    const verdict = await probeOnce(this.#fetch, this.url, (h) => this.#authorize(h), this.#staticSecrets, {
      timeoutMs: Math.min(opts?.timeoutMs ?? this.#defaultTimeout, PROBE_TIMEOUT_MS),
      ...(opts?.signal ? { signal: opts.signal } : {}),
    });
    this.#probed = verdict
      ? { ok: false, until: Date.now() + PROBE_BAD_TTL_MS, error: verdict }
      : { ok: true, until: Date.now() + PROBE_OK_TTL_MS };
    if (verdict) throw verdict;
  }

  async addRepo(repo: DesiredRepo, opts?: CallOptions): Promise<void> {
    await this.#call("AddRepo", opts, repoSecrets(repo), async () => {
      await this.probe(opts);
      // The answer is the whole config with every repo's password: read as Empty, so it is skipped field
      // by field and never decoded (it grows with every repo Backrest holds).
      const o = this.#callOpts(opts);
      await this.#transport.unary(ADD_REPO_DISCARDING, o.signal, o.timeoutMs, undefined, {
        repo: toWireRepo(repo),
      });
    });
  }

  async removeRepo(id: string, opts?: CallOptions): Promise<void> {
    await this.#call("RemoveRepo", opts, [], async () => {
      // Like AddRepo's, the answer is Backrest's whole Config: skipped, never decoded.
      const o = this.#callOpts(opts);
      await this.#transport.unary(REMOVE_REPO_DISCARDING, o.signal, o.timeoutMs, undefined, { repoId: id });
    });
  }

  checkRepoExists(repo: DesiredRepo, opts?: CallOptions): Promise<boolean> {
    const secrets = repoSecrets(repo);
    return this.#call("CheckRepoExists", opts, secrets, async () => {
      await this.probe(opts);
      const res = await this.#rpc.checkRepoExists({ repo: toWireRepo(repo) }, this.#callOpts(opts));
      if (res.error) {
        const detail = scrub(res.error, [...secrets, ...this.#staticSecrets]);
        throw new BackrestError("failed", "CheckRepoExists", `CheckRepoExists: ${detail ?? "failed"}`, {
          code: res.hostKeyUntrusted ? "host_key_untrusted" : "unknown",
          fromServer: true,
        });
      }
      return res.exists;
    });
  }

  doRepoTask(id: string, task: RepoTask, opts?: CallOptions): Promise<bigint> {
    return this.#call("DoRepoTask", opts, [], async () => {
      const res = await this.#rpc.doRepoTask({ repoId: id, task: TASKS[task] }, this.#callOpts(opts));
      return res.operationId;
    });
  }

  listRepoIds(opts?: CallOptions): Promise<string[]> {
    return this.#call("GetSummaryDashboard", opts, [], async () => {
      await this.probe(opts);
      const res = await this.#rpc.getSummaryDashboard({}, this.#callOpts(opts));
      return res.repoSummaries.map((s) => s.id);
    });
  }

  close(): void {
    this.#httpClient?.close();
  }

  /** Revealed per request, into the request's headers only. */
  #authorize(headers: Headers): void {
    const auth = this.#auth;
    if (auth.kind === "bearer") headers.set("Authorization", `Bearer ${auth.token.reveal()}`);
    else if (auth.kind === "basic") headers.set("Authorization", basicHeader(auth.username, auth.password));
  }

  #callOpts(opts: CallOptions | undefined): { timeoutMs: number; signal?: AbortSignal } {
    return {
      timeoutMs: opts?.timeoutMs ?? this.#defaultTimeout,
      ...(opts?.signal ? { signal: opts.signal } : {}),
    };
  }

  /** Runs `fn` past the breaker; its failure becomes one scrubbed `BackrestError`. */
  async #call<T>(
    name: string,
    opts: CallOptions | undefined,
    secrets: string[],
    fn: () => Promise<T>,
  ): Promise<T> {
    this.#breakers.admit(this.#breaker, name);
    try {
      const out = await fn();
      this.#breakers.success(this.#breaker);
      return out;
    } catch (e) {
      const err = classify(name, e, [...secrets, ...this.#staticSecrets], opts?.signal);
      if (countsAgainst(err)) this.#breakers.failure(this.#breaker);
      else if (err.kind === "canceled") this.#breakers.released(this.#breaker);
      else this.#breakers.success(this.#breaker); // it answered, if only to say no
      throw err;
    }
  }
}

/**
 * One probe: a body that cannot be parsed fails before any handler runs, so nothing happens on the server.
 * Backrest v1.12.0+ answers invalid_argument naming *v1.AddRepoRequest; older ones name *v1.Repo; a server
 * without the route answers 404. Returns the "unsupported" verdict, `undefined` when supported; throws for
 * what is no verdict (unreachable, refused credentials, a server error).
 */
async function probeOnce(
  fetchImpl: typeof globalThis.fetch,
  url: string,
  authorize: (headers: Headers) => void,
  staticSecrets: string[],
  opts: { timeoutMs: number; signal?: AbortSignal },
): Promise<BackrestError | undefined> {
  const unsupported = (why: string) =>
    new BackrestError(
      "unsupported",
      "Probe",
      `Backrest at this URL is unsupported: ${why}; v1.12.0 or newer is required`,
      {
        code: "unimplemented",
      },
    );
  const signals = [AbortSignal.timeout(opts.timeoutMs), ...(opts.signal ? [opts.signal] : [])];
  const headers = new Headers({ "content-type": "application/proto", "connect-protocol-version": "1" });
  authorize(headers);
  let status: number;
  let body: string;
  try {
    const res = await fetchImpl(`${url}/v1.Backrest/AddRepo`, {
      method: "POST",
      headers,
      body: new Uint8Array([0xff]),
      signal: AbortSignal.any(signals),
    });
    status = res.status;
    body = await readTextCapped(res, PROBE_ANSWER_LIMIT);
  } catch (e) {
    if (opts.signal?.aborted) {
      throw new BackrestError("canceled", "Probe", "Probe: canceled", { code: "canceled" });
    }
    if (e instanceof DOMException && e.name === "TimeoutError") {
      throw new BackrestError("deadline", "Probe", "Probe: deadline_exceeded", { code: "deadline_exceeded" });
    }
    const detail = e instanceof Error ? scrub(e.message, staticSecrets) : undefined;
    throw new BackrestError(
      "unavailable",
      "Probe",
      `Probe: Backrest unreachable${detail ? `: ${detail}` : ""}`,
      {
        code: "unavailable",
        ...(detail ? { cause: new Error(detail) } : {}),
      },
    );
  }
  if (status === 401 || status === 403) {
    throw new BackrestError("unauthenticated", "Probe", "Probe: unauthenticated", {
      code: "unauthenticated",
    });
  }
  if (status === 404) return unsupported("it has no /v1.Backrest/AddRepo");
  if (status >= 500 && !body.includes("unmarshal")) {
    throw new BackrestError("unavailable", "Probe", `Probe: HTTP ${status}`, {
      code: codeName(Code.Unavailable),
    });
  }
  if (/\bAddRepoRequest\b/.test(body)) return undefined;
  if (/\*v1\.Repo\b/.test(body)) return unsupported("its AddRepo takes a bare Repo (before v1.12.0)");
  // A wording we do not know: the route exists and rejects garbage, which is all we can tell.
  if (status === 400 && body.includes("invalid_argument")) return undefined;
  return unsupported(`AddRepo answered an unparseable request with HTTP ${status}`);
}

/** One breaker per Backrest URL, shared by every client of that URL whatever its credentials. */
const sharedBreakers = new Breakers();

/** The key a client's breaker is kept under: its base URL as `fetch` spells it, without a trailing `/`. */
function breakerKey(url: string): string {
  return new URL(url).href.replace(/\/$/, "");
}

/**
 * Whether calls to the Backrest at `url` are being refused now (it stopped answering and its backoff has
 * not passed, or another call is checking it): callers can skip the work that would precede a call.
 */
export function backrestRefusing(url: string): boolean {
  return sharedBreakers.isOpen(breakerKey(url));
}

interface PoolEntry {
  client: BackrestApi & { close(): void };
  lastUsed: number;
}

const pool = new Map<string, PoolEntry>();
const POOL_MAX = 64;
/** Evicted clients are closed this much later, so calls in flight on them finish. */
const CLOSE_GRACE_MS = 5 * 60_000;

function poolKey(conn: BackrestConnection): string {
  const h = sha256().update(conn.url).update("\0");
  h.update(authFingerprint(conn.auth ?? { kind: "none" })); // covers the CAs too
  h.update(`\0${conn.timeoutMs ?? ""}`);
  return h.digest("hex");
}

/**
 * The shared client for a connection (same url, credentials, CA and timeout: same client, so its probe
 * result and HTTP connections are reused). Least recently used clients beyond 64 are dropped.
 */
export function backrestClient(conn: BackrestConnection): BackrestApi {
  const key = poolKey(conn);
  const found = pool.get(key);
  if (found) {
    found.lastUsed = Date.now();
    return found.client;
  }
  const client = createBackrestClient(conn, { breakers: sharedBreakers });
  pool.set(key, { client, lastUsed: Date.now() });
  if (pool.size > POOL_MAX) {
    const [oldestKey, oldest] = [...pool.entries()].reduce((
      a,
      b,
    ) => (a[1].lastUsed <= b[1].lastUsed ? a : b));
    pool.delete(oldestKey);
    const timer = setTimeout(() => oldest.client.close(), CLOSE_GRACE_MS);
    Deno.unrefTimer(timer);
  }
  return client;
}

/** Closes and forgets every pooled client (tests, shutdown). */
export function closeBackrestClients(): void {
  for (const { client } of pool.values()) client.close();
  pool.clear();
}
