/**
 * Observability: a JSON-lines logger with controller-runtime's keys, Prometheus metrics (the
 * controller-runtime set included) and the `/healthz`, `/readyz`, `/metrics` HTTP server.
 * Rule: no Secret value may reach any of these outputs; callers pass names and reasons, never data.
 *
 * @module
 */

export {
  createLogger,
  errorText,
  type LogFields,
  type LogFormat,
  type Logger,
  type LoggerOptions,
  type LogLevel,
  type LogValue,
  nullLogger,
} from "./logger.ts";
export {
  Base,
  Counter,
  DEFAULT_BUCKETS,
  Gauge,
  Histogram,
  type HistogramOptions,
  type HistogramState,
  type Labels,
  type Metric,
  type MetricOptions,
  METRICS_CONTENT_TYPE,
  Registry,
  Scalar,
} from "./metrics.ts";
export { createRuntimeMetrics, type RuntimeMetrics } from "./runtime_metrics.ts";
export { type BindAddress, ObserveServer, parseBindAddress, type ServerOptions } from "./server.ts";
