/**
 * The controller-runtime metric set, with the names and labels dashboards for Go operators already use,
 * so an operator switched from the Go prototype keeps its alerts. Labels carry controller names and
 * result kinds only.
 */

import { type Counter, type Gauge, type Histogram, Registry } from "./metrics.ts";

/** Every metric the runtime updates. Create once per process with {@linkcode createRuntimeMetrics}. */
export interface RuntimeMetrics {
  /** The registry they are registered in (render it for `/metrics`). */
  readonly registry: Registry;
  /** `controller_runtime_reconcile_total{controller,result}`; result is success|error|requeue|requeue_after. */
  readonly reconcileTotal: Counter;
  /** `controller_runtime_reconcile_errors_total{controller}`: failed reconciles, terminal ones included. */
  readonly reconcileErrors: Counter;
  /** `controller_runtime_terminal_reconcile_errors_total{controller}`: `TerminalError`s (not retried). */
  readonly reconcileTerminalErrors: Counter;
  /** `controller_runtime_reconcile_time_seconds{controller}`: duration of each reconcile. */
  readonly reconcileTime: Histogram;
  /** `controller_runtime_active_workers{controller}`: reconciles running now. */
  readonly activeWorkers: Gauge;
  /** `controller_runtime_max_concurrent_reconciles{controller}`: the controller's worker count. */
  readonly maxConcurrentReconciles: Gauge;
  /** `workqueue_depth{name,controller}`: keys waiting (not in flight). */
  readonly workqueueDepth: Gauge;
  /** `workqueue_adds_total{name,controller}`: every add, including those of keys already queued. */
  readonly workqueueAdds: Counter;
  /** `workqueue_queue_duration_seconds{name,controller}`: time from queued to picked up. */
  readonly workqueueQueueDuration: Histogram;
  /** `workqueue_work_duration_seconds{name,controller}`: time from picked up to done. */
  readonly workqueueWorkDuration: Histogram;
  /** `workqueue_retries_total{name,controller}`: rate-limited re-adds after errors. */
  readonly workqueueRetries: Counter;
  /** `leader_election_master_status{name}`: 1 while this replica leads, else 0. */
  readonly leaderElectionMasterStatus: Gauge;
}

const RECONCILE_BUCKETS = [
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.15,
  0.2,
  0.25,
  0.3,
  0.35,
  0.4,
  0.45,
  0.5,
  0.6,
  0.7,
  0.8,
  0.9,
  1,
  1.25,
  1.5,
  1.75,
  2,
  2.5,
  3,
  3.5,
  4,
  4.5,
  5,
  6,
  7,
  8,
  9,
  10,
  15,
  20,
  25,
  30,
  40,
  50,
  60,
];
const QUEUE_BUCKETS = [1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 0.01, 0.1, 1, 10, 100, 1000];

/** Registers the runtime metrics in `registry` (a fresh one by default). */
export function createRuntimeMetrics(registry: Registry = new Registry()): RuntimeMetrics {
  const c = ["controller"];
  const q = ["name", "controller"];
  return {
    registry,
    reconcileTotal: registry.counter({
      name: "controller_runtime_reconcile_total",
      help: "Total number of reconciliations per controller",
      labelNames: ["controller", "result"],
    }),
    reconcileErrors: registry.counter({
      name: "controller_runtime_reconcile_errors_total",
      help: "Total number of reconciliation errors per controller",
      labelNames: c,
    }),
    reconcileTerminalErrors: registry.counter({
      name: "controller_runtime_terminal_reconcile_errors_total",
      help: "Total number of terminal reconciliation errors per controller",
      labelNames: c,
    }),
    reconcileTime: registry.histogram({
      name: "controller_runtime_reconcile_time_seconds",
      help: "Length of time per reconciliation per controller",
      labelNames: c,
      buckets: RECONCILE_BUCKETS,
    }),
    activeWorkers: registry.gauge({
      name: "controller_runtime_active_workers",
      help: "Number of currently used workers per controller",
      labelNames: c,
    }),
    maxConcurrentReconciles: registry.gauge({
      name: "controller_runtime_max_concurrent_reconciles",
      help: "Maximum number of concurrent reconciles per controller",
      labelNames: c,
    }),
    workqueueDepth: registry.gauge({
      name: "workqueue_depth",
      help: "Current depth of workqueue",
      labelNames: q,
    }),
    workqueueAdds: registry.counter({
      name: "workqueue_adds_total",
      help: "Total number of adds handled by workqueue",
      labelNames: q,
    }),
    workqueueQueueDuration: registry.histogram({
      name: "workqueue_queue_duration_seconds",
      help: "How long in seconds an item stays in workqueue before being requested",
      labelNames: q,
      buckets: QUEUE_BUCKETS,
    }),
    workqueueWorkDuration: registry.histogram({
      name: "workqueue_work_duration_seconds",
      help: "How long in seconds processing an item from workqueue takes",
      labelNames: q,
      buckets: QUEUE_BUCKETS,
    }),
    workqueueRetries: registry.counter({
      name: "workqueue_retries_total",
      help: "Total number of retries handled by workqueue",
      labelNames: q,
    }),
    leaderElectionMasterStatus: registry.gauge({
      name: "leader_election_master_status",
      help:
        "Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, 1 indicates master",
      labelNames: ["name"],
    }),
  };
}
