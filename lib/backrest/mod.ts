/**
 * Backrest: the Connect client behind `BackrestApi` (auth, TLS, deadlines, classified and scrubbed
 * errors, old-server detection, pooling) and the pure mapping from a VolSync repository Secret to the
 * desired Backrest repo. Rule: no Secret value leaves this folder except on the wire to Backrest.
 */

export {
  ADD_REPO_DRAIN_LIMIT,
  type BackrestApi,
  backrestClient,
  type BackrestConnection,
  type CallOptions,
  closeBackrestClients,
  createBackrestClient,
  type RepoTask,
} from "./client.ts";
export { authFingerprint, authFromSecret, type BackrestAuth } from "./auth.ts";
export { BackrestError, type BackrestErrorKind } from "./errors.ts";
export {
  type DesiredRepo,
  desiredRepo,
  type DesiredRepoInput,
  type DesiredRepoSettings,
  PASSED_RESTIC_KEYS,
  REPO_ID_PATTERN,
  type RepoEnv,
  repoId,
  RepoMappingError,
  type RepoMappingErrorKind,
} from "./desired_repo.ts";
