/**
 * The operator's API surface: the two CRDs as types with parsers for wire JSON, the names shared with the
 * Go prototype, VolSync accessors and the auto-binding rules. Rule: nothing here does I/O and every
 * function is pure (the clock is passed in where time matters), so every other layer can rely on it in tests.
 */

export {
  autoBindingWanted,
  bindingNameFor,
  bindingNamePrefix,
  dns1123Safe,
  parseBindingOptIn,
  uniqueBindingName,
  volsyncRefValue,
} from "./auto_binding.ts";
export { type ParsedResource } from "./_resource.ts";
export {
  BACKREST_URL_DOT_SEGMENT_SOURCE,
  BACKREST_URL_PATTERN_SOURCE,
  backrestOrigin,
  backrestURLAllowed,
  backrestURLProblem,
  canonicalBackrestURL,
  urlUnderPrefix,
} from "./backrest_url.ts";
export {
  type BackrestRef,
  type Binding,
  BINDING_DEFAULTS,
  type BindingSpec,
  type BindingStatus,
  DELETION_POLICIES,
  type DeletionPolicy,
  parseBinding,
  parseBindingSpec,
  parseBindingStatus,
  type RepoSpec,
  type SecretRef,
  type SourceRef,
} from "./binding.ts";
export {
  type Condition,
  CONDITION_STATUSES,
  conditionsEqual,
  type ConditionStatus,
  type ConditionUpdate,
  findCondition,
  formatTime,
  isConditionTrue,
  parseConditions,
  removeCondition,
  setCondition,
} from "./conditions.ts";
export * from "./constants.ts";
export { DURATION_PATTERN, formatDuration, parseDuration } from "./duration.ts";
export { type ObjectMeta, type OwnerReference, parseObjectMeta } from "./meta.ts";
export {
  type Backend,
  BACKENDS,
  BINDING_POLICIES,
  type BindingGeneration,
  type BindingPolicy,
  DEFAULT_ALLOWED_BACKENDS,
  DEFAULT_RESYNC_PERIOD,
  DEFAULT_TASK_LIMITS,
  defaultOperatorConfigSpec,
  defaultRepositoryPolicy,
  kindAllowed,
  type OperatorConfig,
  type OperatorConfigSpec,
  type OperatorConfigStatus,
  parseOperatorConfig,
  parseOperatorConfigSpec,
  parseOperatorConfigStatus,
  type RepositoryPolicy,
  RESYNC_PERIOD_MAX_MS,
  RESYNC_PERIOD_MIN_MS,
  TASK_LIMIT_DURATION_MAX_MS,
  type TaskLimits,
} from "./operator_config.ts";
export { type Cron, CRON_PATTERN_SOURCE, cronMinGapMinutes, parseCron } from "./cron.ts";
export {
  type CheckPolicy,
  type Clock,
  CLOCKS,
  type CommandPrefix,
  CPU_NICE_LEVELS,
  type CPUNiceLevel,
  type ForgetPolicy,
  IO_NICE_LEVELS,
  type IONiceLevel,
  parseRepoSettings,
  type PrunePolicy,
  type RepoSettings,
  type RetentionPolicy,
  type Schedule,
  scheduleActive,
  type TimeBucketedCounts,
} from "./repo_settings.ts";
export {
  ALLOWED_FLAGS,
  ALLOWED_OPTIONS,
  EXTRA_FLAG_PATTERN_SOURCE,
  type NormalizedFlags,
  normalizeExtraFlags,
} from "./restic_flags.ts";
export { type FieldError, formatErrors, type Parsed } from "./result.ts";
export { Sensitive } from "./sensitive.ts";
export {
  completedSyncMarker,
  type CustomCA,
  hasCustomCA,
  isVolSyncKind,
  type MoverStatus,
  parseVolSyncObject,
  repositorySecretName,
  type ResticMover,
  type SyncMarker,
  VOLSYNC_API_VERSION,
  type VolSyncObject,
  type VolSyncStatus,
} from "./volsync.ts";
export { defaultRepoId, foreignDefaultId, REPO_ID_PATTERN, repoIdOf, repoIdProblem } from "./repo_id.ts";
