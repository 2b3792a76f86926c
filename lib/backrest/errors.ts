/**
 * The one error the Backrest client throws, classified for the reconciler, and the scrubbing that keeps
 * Secret values out of it. Rules: a `BackrestError` never carries a server's raw text or a raw
 * `ConnectError` (Backrest echoes restic's output, which can name the repository URI or env); server text
 * passes only through `scrub()`, which removes every known secret value or drops the text entirely.
 */

import { Code, ConnectError } from "@connectrpc/connect";
import { tooLarge } from "../body.ts";

/**
 * What went wrong, as the reconciler branches on it.
 * - `unauthenticated`: Backrest refused the credentials (or the auth Secret is unusable); retry after it changes.
 * - `invalid`: Backrest rejected the request as invalid (terminal until the inputs change).
 * - `unavailable`: Backrest could not be reached or answered 5xx/unavailable (retry with backoff).
 * - `deadline`: the call's deadline passed (retry with backoff).
 * - `unsupported`: the server is not a Backrest this client can talk to (older than v1.12.0, or no Backrest).
 * - `not_found`: the named repo is not configured in Backrest (e.g. DoRepoTask after it was deleted in the UI).
 * - `canceled`: the caller's AbortSignal fired.
 * - `failed`: anything else, typically restic failing on the server (retry with backoff).
 */
export type BackrestErrorKind =
  | "unauthenticated"
  | "invalid"
  | "unavailable"
  | "deadline"
  | "unsupported"
  | "not_found"
  | "canceled"
  | "failed";

/** Thrown by every Backrest client call; `kind` tells the caller what to do. */
export class BackrestError extends Error {
  /** Always `"BackrestError"`. */
  override readonly name = "BackrestError";
  /** What went wrong, as the reconciler branches on it. */
  readonly kind: BackrestErrorKind;
  /** The RPC that failed, e.g. `AddRepo`, or `Probe`/`Login`. */
  readonly rpc: string;
  /** The Connect code's name (`invalid_argument`, `unavailable`, ...), when the failure had one. */
  readonly code: string | undefined;
  /** Whether the message carries (scrubbed) text the server sent, rather than only ours. */
  readonly fromServer: boolean;

  /** `message` must already be scrubbed; `opts.fromServer` says it carries the server's text. */
  constructor(
    kind: BackrestErrorKind,
    rpc: string,
    message: string,
    opts: { code?: string; cause?: unknown; fromServer?: boolean } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.kind = kind;
    this.rpc = rpc;
    this.code = opts.code;
    this.fromServer = opts.fromServer ?? false;
  }

  /** True when retrying the same request cannot help until an input changes. */
  get terminal(): boolean {
    return this.kind === "invalid" || this.kind === "unsupported";
  }
}

/** Below this length a value cannot be scrubbed without shredding the text; such text is dropped instead. */
const MIN_SCRUBBABLE = 6;
const MAX_DETAIL = 300;
const REDACTED = "[redacted]";

/**
 * `text` with every occurrence of every secret (raw, JSON/Go-quoted, URL-encoded) replaced by `[redacted]`,
 * cut to a short length; `undefined` when a secret is too short to scrub safely (then say nothing).
 */
export function scrub(text: string, secrets: Iterable<string>): string | undefined {
  const variants = new Set<string>();
  for (const secret of secrets) {
    if (secret.length === 0) continue;
    if (secret.length < MIN_SCRUBBABLE) return undefined;
    variants.add(secret);
    variants.add(JSON.stringify(secret).slice(1, -1));
    variants.add(encodeURIComponent(secret));
    variants.add(encodeURI(secret));
  }
  // Longest first, so a secret that contains another is removed whole.
  let out = text;
  for (const v of [...variants].sort((a, b) => b.length - a.length)) out = out.split(v).join(REDACTED);
  out = out.replace(/\s+/g, " ").trim();
  return out.length > MAX_DETAIL ? `${out.slice(0, MAX_DETAIL)}...` : out;
}

const KIND_BY_CODE: Partial<Record<Code, BackrestErrorKind>> = {
  [Code.Unauthenticated]: "unauthenticated",
  [Code.PermissionDenied]: "unauthenticated",
  [Code.InvalidArgument]: "invalid",
  [Code.OutOfRange]: "invalid",
  [Code.Unavailable]: "unavailable",
  [Code.ResourceExhausted]: "unavailable",
  [Code.Aborted]: "unavailable",
  [Code.DeadlineExceeded]: "deadline",
  [Code.Unimplemented]: "unsupported",
  [Code.NotFound]: "not_found",
  [Code.Canceled]: "canceled",
};

const CODE_NAMES: Record<Code, string> = {
  [Code.Canceled]: "canceled",
  [Code.Unknown]: "unknown",
  [Code.InvalidArgument]: "invalid_argument",
  [Code.DeadlineExceeded]: "deadline_exceeded",
  [Code.NotFound]: "not_found",
  [Code.AlreadyExists]: "already_exists",
  [Code.PermissionDenied]: "permission_denied",
  [Code.ResourceExhausted]: "resource_exhausted",
  [Code.FailedPrecondition]: "failed_precondition",
  [Code.Aborted]: "aborted",
  [Code.OutOfRange]: "out_of_range",
  [Code.Unimplemented]: "unimplemented",
  [Code.Internal]: "internal",
  [Code.Unavailable]: "unavailable",
  [Code.DataLoss]: "data_loss",
  [Code.Unauthenticated]: "unauthenticated",
};

/** Name of a Connect code as it appears on the wire (`invalid_argument`). */
export function codeName(code: Code): string {
  return CODE_NAMES[code];
}

function isNetworkFailure(e: ConnectError): boolean {
  // connect-web turns a rejected fetch (connection refused, reset, DNS, TLS) into code Unknown with the
  // fetch TypeError as cause.
  return e.code === Code.Unknown && e.cause instanceof TypeError;
}

/**
 * Turns anything a Connect call threw into a `BackrestError`: classified, with server text scrubbed of
 * `secrets` (and left out for kinds whose text is noise), and a cause that carries no raw server text.
 */
export function classify(
  rpc: string,
  err: unknown,
  secrets: Iterable<string>,
  signal?: AbortSignal,
): BackrestError {
  if (err instanceof BackrestError) return err;
  // Thrown inside an interceptor (Login failing), it arrives wrapped by connect.
  if (err instanceof ConnectError && err.cause instanceof BackrestError) return err.cause;
  const big = tooLarge(err);
  if (big) {
    // Not Backrest, or not a sane one: treated like an unreachable server (retried, with backoff).
    return new BackrestError(
      "unavailable",
      rpc,
      `${rpc}: the answer is larger than ${big.limit} bytes; not read`,
      {
        code: "resource_exhausted",
      },
    );
  }
  const ce = ConnectError.from(err);
  const code = codeName(ce.code);
  if (signal?.aborted && ce.code === Code.Canceled) {
    return new BackrestError("canceled", rpc, `${rpc}: canceled`, { code });
  }
  if (isNetworkFailure(ce)) {
    // The fetch error names only the URL and the OS error; Backrest's URL carries no credentials (refused
    // at client creation).
    const cause = ce.cause instanceof Error
      ? new Error(scrub(ce.cause.message, secrets) ?? "network error")
      : undefined;
    return new BackrestError(
      "unavailable",
      rpc,
      `${rpc}: Backrest unreachable${cause ? `: ${cause.message}` : ""}`,
      {
        code: "unavailable",
        cause,
      },
    );
  }
  const kind = KIND_BY_CODE[ce.code] ?? "failed";
  // Say only the class for these: their text is either ours (deadline), or "HTTP 401" style noise.
  const quiet = kind === "deadline" || kind === "canceled" || kind === "unauthenticated";
  const detail = quiet ? undefined : scrub(ce.rawMessage, secrets);
  const message = `${rpc}: ${code}${detail ? `: ${detail}` : ""}`;
  // A sanitized twin of the ConnectError keeps the chain without its raw message, metadata or details.
  const cause = new ConnectError(detail ?? code, ce.code);
  return new BackrestError(kind, rpc, message, { code, cause, fromServer: detail !== undefined });
}

/**
 * What restic reported, as one of our own sentences picked by the shape of Backrest's (scrubbed) text, for
 * status and Events: Backrest's text itself stays out of them, because restic's output can carry what it
 * got from Backrest's environment (a proxy, paths, a cache dir). Only a hint: no decision depends on it.
 */
const HINTS: [RegExp, string][] = [
  [
    /wrong password|no key found|ciphertext verification failed/i,
    "restic could not open the repository with this password",
  ],
  [
    /does not exist|unable to open config file|is there a repository/i,
    "restic found no repository at this location",
  ],
  [/x509|certificate/i, "the storage's TLS certificate was not accepted"],
  [
    /\b40[13]\b|access ?denied|forbidden|unauthori[sz]ed|invalidaccesskeyid|signaturedoesnotmatch|permission denied/i,
    "the storage refused the credentials or the access",
  ],
  [
    /no such host|connection refused|i\/o timeout|network is unreachable|dial tcp|timeout|deadline/i,
    "restic in Backrest could not reach the storage",
  ],
  [/already locked|repository is locked/i, "the repository is locked"],
];

/**
 * A status-safe description of a failed Backrest call: the RPC, its Connect code, and for restic and
 * validation failures a hint from {@linkcode HINTS} instead of Backrest's text (which goes to a debug log
 * line only). Our own texts (unreachable, deadline, unsupported) are kept.
 */
export function describeFailure(e: BackrestError): string {
  if (!e.fromServer) return e.message;
  const hint = HINTS.find(([re]) => re.test(e.message))?.[1];
  return `${e.rpc} failed (${e.code ?? e.kind})${
    hint ? `: ${hint}` : ""
  }; Backrest's own text is in the operator's log at debug level`;
}
