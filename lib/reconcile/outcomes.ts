/**
 * What a failure means for a Binding's status: the Ready reason of a failed Backrest call (from its kind,
 * the Connect code, never from Backrest's text) and of a repo the Secret and settings cannot map to. Rule:
 * the client and the mapping say what went wrong in their own terms; only this module speaks in the
 * Binding's condition reasons.
 */
import { Reason } from "../api/mod.ts";
import { type BackrestError, describeFailure, type RepoMappingErrorKind } from "../backrest/mod.ts";

/** What a failed Backrest call means for a Binding: its reason, a status-safe message, whether to retry. */
export interface FailureOutcome {
  /** The condition reason (a `Reason` value). */
  reason: string;
  /** Safe for status: built from the kind and {@linkcode describeFailure}, never Backrest's raw text. */
  message: string;
  /** Whether to retry with backoff; false: wait until the inputs change. */
  retry: boolean;
}

/**
 * The Binding outcome of a failed Backrest call `verb`, from its kind (the Connect code), never from
 * Backrest's text: refused credentials and no answer retry; an old or foreign server and a request Backrest
 * calls invalid wait for a change; anything else (restic failing on the server) retries.
 */
export function failureOutcome(e: BackrestError, verb: string): FailureOutcome {
  switch (e.kind) {
    case "unauthenticated":
      return {
        reason: Reason.BackrestAuthInvalid,
        message: `Backrest refused the credentials (${verb}): check spec.backrest.authRef`,
        retry: true,
      };
    case "unavailable":
    case "deadline":
      return {
        reason: Reason.BackrestUnreachable,
        message: `Backrest did not answer ${verb} (${e.kind}); retrying with backoff. ${describeFailure(e)}`,
        retry: true,
      };
    case "unsupported":
      return {
        reason: Reason.BackrestUnsupported,
        message: `this Backrest cannot be used (needs v1.12.0 or newer); checked again with backoff. ${
          describeFailure(e)
        }`,
        // Retried: the verdict can come from something in the way for a while (a proxy answering garbage),
        // and an upgraded Backrest is taken up without an edit; the probe's verdict is cached for a minute.
        retry: true,
      };
    case "invalid":
      return {
        reason: Reason.BackrestAddRepoFailed,
        message: `Backrest rejected ${verb} as invalid: ${describeFailure(e)}`,
        retry: false,
      };
    default:
      return { reason: Reason.BackrestAddRepoFailed, message: describeFailure(e), retry: true };
  }
}

/** The Ready reason of each way the mapping to a Backrest repo can fail. */
export const MAPPING_REASONS: Readonly<Record<RepoMappingErrorKind, Reason>> = {
  secret_invalid: Reason.RepositorySecretInvalid,
  unsupported: Reason.UnsupportedSecretKey,
  not_allowed: Reason.RepositoryBackendNotAllowed,
  location_not_allowed: Reason.RepositoryLocationNotAllowed,
  settings_not_allowed: Reason.RepoSettingsNotAllowed,
  spec_invalid: Reason.InvalidSpec,
};
