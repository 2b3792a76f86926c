/**
 * The domain: reconcilers for Bindings, auto-binding and the OperatorConfig, the drift repair, the
 * settings they share, and `createOperator()`, which wires them onto the runtime.
 *
 * @module
 */
export { autoBindingReconciler, type AutoBindingReconcilerDeps, managedBindingSpec } from "./auto_binding.ts";
export { bindingReconciler, type BindingReconcilerDeps, type DriftState } from "./binding.ts";
export {
  isStop,
  notReady,
  RetryableError,
  SecretReadError,
  type Step,
  type Stop,
  stopWith,
} from "./pipeline.ts";
export { errorHash, type EventSink, type Outcome, type StatusExtra } from "./binding_status.ts";
export {
  bindingIndexers,
  INDEX_BY_AUTH_SECRET,
  INDEX_BY_GENERATED_NAME,
  INDEX_BY_REPO,
  INDEX_BY_REPOSITORY_SECRET,
  INDEX_BY_SOURCE,
  INDEX_BY_VOLSYNC_REF,
  parseVolsyncKey,
  volsyncIndexers,
  volsyncKey,
} from "./indexes.ts";
export {
  type Acquired,
  type Claim,
  type ClaimLedger,
  claimName,
  type Holder,
  LABEL_REPO_CLAIM,
  readClaim,
  RepoClaims,
} from "./claims.ts";
export {
  ConfigGate,
  type ConfigGateOptions,
  ConfigUnknownError,
  type CurrentCache,
  heldWhileUnknown,
} from "./config_gate.ts";
export { DriftRepair, type DriftRepairOptions } from "./drift.ts";
export { type Controllers, createOperator, type Operator, type OperatorOptions } from "./operator.ts";
export {
  type CacheOptions,
  compactBinding,
  type OperatorCaches,
  operatorCaches,
  slimVolSync,
  type VolSyncStores,
} from "./caches.ts";
export {
  operatorConfigReconciler,
  type OperatorConfigReconcilerDeps,
  putInForce,
} from "./operator_config.ts";
export { NoListingError, RepoListings, type RepoListingsOptions } from "./repo_listings.ts";
export { bindingType, operatorConfigType, volsyncTypes } from "./resources.ts";
export { countedBackrest, createOperatorMetrics, type OperatorMetrics, ReadyGauge } from "./metrics.ts";
export { OwnWrites } from "./own_writes.ts";
export { type OperatorSettings, SettingsHolder } from "./settings.ts";
