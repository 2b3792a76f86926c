/**
 * Domain-free controller machinery, in the order data flows: watcher (list+watch) → store (+ indexes)
 * → informer handlers → work queue → controller (`reconcile(key, ctx) => Action`) → manager (caches on
 * every replica, controllers on the leader only). Rules: reconcilers read the store, never the event;
 * one key is never reconciled twice at once; an error retries with backoff, a `TerminalError` does not.
 *
 * @module
 */

export { type Clock, FakeClock, settle, sleep, systemClock } from "./clock.ts";
export { type BackoffOptions, exponentialBackoff, TokenBucket } from "./rate_limit.ts";
export { type QueueMetrics, WorkQueue, type WorkQueueOptions } from "./queue.ts";
export { type IndexFunc, MemoryStore, type Store, type StoreChange } from "./store.ts";
export { compactObject, identityOnly, intern } from "./intern.ts";
export {
  type ListWatch,
  listWatch,
  metadataListWatch,
  runWatcher,
  type Selectors,
  type WatcherOptions,
  type WatcherStats,
} from "./watcher.ts";
export {
  dropManagedFields,
  Informer,
  type InformerEvent,
  informerFor,
  type InformerHandler,
  type InformerOptions,
  metadataInformerFor,
  type ResourceInformerOptions,
  type WatcherTuning,
} from "./informer.ts";
export {
  type Action,
  Controller,
  type ControllerOptions,
  done,
  type KeyMapper,
  type ReconcileContext,
  type Reconciler,
  requeueAfter,
  TerminalError,
} from "./controller.ts";
export {
  type LeaderElectionOptions,
  LeaderElector,
  LeadershipLostError,
  type LeaseClient,
} from "./leader_election.ts";
export { type Cache, Manager, type ManagerOptions, type Runnable } from "./manager.ts";
