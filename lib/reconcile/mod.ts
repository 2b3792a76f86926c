/**
 * The domain: reconcilers for Bindings, auto-binding and the OperatorConfig, the drift repair, the
 * settings they share, and `createOperator()`, which wires them onto the runtime.
 *
 * @module
 */
export {
  autoBindingReconciler,
  INDEX_BY_VOLSYNC_REF,
  managedBindingIndexers,
  managedBindingSpec,
} from "./auto_binding.ts";
export {
  bindingIndexers,
  bindingReconciler,
  type BindingReconcilerDeps,
  type ClaimLedger,
  type DriftState,
  errorHash,
  type EventSink,
  foreignDefaultId,
  RetryableError,
  volsyncIndexers,
} from "./binding.ts";
export {
  type Acquired,
  type Claim,
  claimName,
  type Holder,
  LABEL_REPO_CLAIM,
  readClaim,
  RepoClaims,
} from "./claims.ts";
export { DriftRepair, type DriftRepairOptions } from "./drift.ts";
export {
  compactBinding,
  createOperator,
  type Operator,
  type OperatorOptions,
  slimVolSync,
} from "./operator.ts";
export { operatorConfigReconciler, putInForce } from "./operator_config.ts";
export { NoListingError, RepoListings, type RepoListingsOptions } from "./repo_listings.ts";
export {
  bindingType,
  operatorConfigType,
  replicationDestinationType,
  replicationSourceType,
} from "./resources.ts";
export { type OperatorSettings, SettingsHolder } from "./settings.ts";
