/**
 * Backrest: the Connect client behind `BackrestApi` (auth, TLS, deadlines, classified and scrubbed
 * errors, old-server detection, pooling) and the pure mapping from a VolSync repository Secret to the
 * desired Backrest repo. Rule: no Secret value leaves this folder except on the wire to Backrest.
 */

export {
  ADD_REPO_DRAIN_LIMIT,
  ADD_REPO_DRAIN_LIMIT_PLAIN,
  addRepoDrainLimit,
  type BackrestApi,
  backrestClient,
  type BackrestConnection,
  backrestRefusing,
  type CallOptions,
  closeBackrestClients,
  createBackrestClient,
  type RepoTask,
} from "./client.ts";
export { authFingerprint, authFromSecret, type BackrestAuth } from "./auth.ts";
export { type BreakerOptions, Breakers, REFUSED } from "./breaker.ts";
export { BackrestError, type BackrestErrorKind, describeFailure } from "./errors.ts";
export {
  type DesiredRepo,
  desiredRepo,
  type DesiredRepoInput,
  type DesiredRepoSettings,
  MAX_REPO_BYTES,
  MAX_VALUE_BYTES,
  type RepoEnv,
  type RepoFields,
  repoId,
  RepoMappingError,
  type RepoMappingErrorKind,
} from "./desired_repo.ts";
export {
  type HashKey,
  importHashKey,
  KEY_BYTES,
  KEYED_PREFIX,
  keyedHasher,
  newHashKeyBytes,
  type StatusHasher,
  stretchedHasher,
} from "./status_hash.ts";
export {
  type Backend,
  backendOf,
  BACKENDS,
  BACKREST_FILE_KEYS,
  backrestWouldExpand,
  type Confinement,
  confineRepository,
  DEFAULT_ALLOWED_BACKENDS,
  DEFAULT_REPOSITORY_POLICY,
  PASSED_ENV_KEYS,
  type PolicyProblem,
  type RepositoryPolicy,
  VOLSYNC_ENV_KEYS,
} from "./repository_policy.ts";
export { type BackendEnv, EVERY_BACKEND_READS, RESTIC_ENV } from "./restic_env.ts";
export { type HostKind, hostKind } from "./repository_hosts.ts";
