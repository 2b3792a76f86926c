/**
 * The one error class of the Kubernetes client. Every non-OK answer, timeout and transport failure
 * becomes a `KubeError`; a caller's own abort stays the `AbortError` it raised. Rule: the message holds
 * the verb, the path and the apiserver's `Status.message`, never a request body.
 */

/** A failed Kubernetes API call. `status` is the HTTP status, or 0 when no answer arrived. */
export class KubeError extends Error {
  /** Always `"KubeError"`. */
  override readonly name = "KubeError";
  /** HTTP status code; 0 for timeouts and transport failures. */
  readonly status: number;
  /** `Status.reason` (e.g. `NotFound`, `Conflict`, `Expired`), or `Timeout` / `NetworkError`. */
  readonly reason: string;
  /** The types of `Status.details.causes` (e.g. `NamespaceTerminating`); empty when the answer gave none. */
  readonly causes: readonly string[];
  /**
   * How long the apiserver asked the client to wait before trying again (its `Retry-After` header, or
   * `Status.details.retryAfterSeconds`), in seconds; undefined when it did not say. A 429 while a
   * resource's storage is (re)initializing carries one.
   */
  readonly retryAfterSeconds: number | undefined;
  /** What the answer is about (`Status.details` kind and name), when it said. */
  readonly subject: { readonly kind: string; readonly name: string } | undefined;

  /**
   * `message` holds the verb, path and apiserver's message; `options.causes` the causes' types,
   * `options.retryAfterSeconds` the answer's wait, `options.subject` what it is about.
   */
  constructor(
    status: number,
    reason: string,
    message: string,
    options?: ErrorOptions & {
      causes?: readonly string[] | undefined;
      retryAfterSeconds?: number | undefined;
      subject?: { kind: string; name: string } | undefined;
    },
  ) {
    super(message, options);
    this.status = status;
    this.reason = reason;
    this.causes = options?.causes ?? [];
    this.retryAfterSeconds = options?.retryAfterSeconds;
    this.subject = options?.subject;
  }
}

/**
 * The seconds of a `Retry-After` header (delta-seconds, or an HTTP date counted from `now`); undefined when
 * absent or unreadable.
 */
export function parseRetryAfter(
  value: string | null | undefined,
  now: number = Date.now(),
): number | undefined {
  if (value === null || value === undefined || value.trim() === "") return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v);
  // An HTTP date names its weekday and month; Date.parse alone would take "-1" for a year.
  if (!/^[A-Za-z]{3}, /.test(v)) return undefined;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - now) / 1000));
}

/** Whether `e` says the namespace is being deleted (nothing new may be created in it). */
export function isNamespaceTerminating(e: unknown): boolean {
  return e instanceof KubeError && e.causes.includes("NamespaceTerminating");
}

/**
 * Whether `e` says `namespace` does not exist: the apiserver's answer to a write into a namespace that is gone
 * (its namespace lifecycle admission answers 404 about the namespace, not the object). Such an object can
 * linger in storage after its namespace went: the namespace controller finalizes a namespace whose custom
 * resources it could not discover at that moment (right after an apiserver restart).
 */
export function isNamespaceGone(e: unknown, namespace: string): boolean {
  return e instanceof KubeError && e.status === 404 && e.subject?.kind === "namespaces" &&
    e.subject.name === namespace;
}

/** Whether `e` is a 404 answer. */
export function isNotFound(e: unknown): boolean {
  return e instanceof KubeError && e.status === 404;
}

/** Whether `e` is a 409 answer (resourceVersion conflict or already exists). */
export function isConflict(e: unknown): boolean {
  return e instanceof KubeError && e.status === 409;
}
