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

  /** `message` holds the verb, path and apiserver's message; `options.causes` the causes' types. */
  constructor(
    status: number,
    reason: string,
    message: string,
    options?: ErrorOptions & { causes?: readonly string[] | undefined },
  ) {
    super(message, options);
    this.status = status;
    this.reason = reason;
    this.causes = options?.causes ?? [];
  }
}

/** Whether `e` says the namespace is being deleted (nothing new may be created in it). */
export function isNamespaceTerminating(e: unknown): boolean {
  return e instanceof KubeError && e.causes.includes("NamespaceTerminating");
}

/** Whether `e` is a 404 answer. */
export function isNotFound(e: unknown): boolean {
  return e instanceof KubeError && e.status === 404;
}

/** Whether `e` is a 409 answer (resourceVersion conflict or already exists). */
export function isConflict(e: unknown): boolean {
  return e instanceof KubeError && e.status === 409;
}
