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
  type DriftState,
  errorHash,
  type EventSink,
  normalizeURL,
  RetryableError,
  volsyncIndexers,
} from "./binding.ts";
export { DriftRepair, type DriftRepairOptions } from "./drift.ts";
export {
  compactBinding,
  createOperator,
  type Operator,
  type OperatorOptions,
  slimVolSync,
} from "./operator.ts";
export { operatorConfigReconciler } from "./operator_config.ts";
export {
  bindingType,
  operatorConfigType,
  replicationDestinationType,
  replicationSourceType,
} from "./resources.ts";
export { type OperatorSettings, SettingsHolder } from "./settings.ts";
