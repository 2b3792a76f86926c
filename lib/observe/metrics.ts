/**
 * Prometheus metrics in the text exposition format (version 0.0.4): counters, gauges and histograms
 * with labels, kept in a registry that renders them for `/metrics`.
 *
 * Hand-written on purpose: `prom-client` (the well-kept npm library) pulls in Node's `cluster`, `v8`
 * and `perf_hooks` default collectors and reads process files, which would widen the binary's
 * permission set for features we do not use; the exposition format needs ~150 lines.
 * Rules: names and label names are validated when a metric is registered; label values are escaped;
 * the caller is responsible for keeping label cardinality small (never an object name or a Secret).
 */

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** Label values of one series, keyed by label name. */
export type Labels = Record<string, string>;

/** Common settings of every metric. */
export interface MetricOptions {
  /** The metric name, e.g. `workqueue_depth`; checked against Prometheus's name syntax. */
  name: string;
  /** The `# HELP` text. */
  help: string;
  /** Labels every series must set, in output order; `le` is reserved. Default: none. */
  labelNames?: readonly string[] | undefined;
}

/** Histogram settings: bucket upper bounds (ascending, `+Inf` implied). */
export interface HistogramOptions extends MetricOptions {
  /** Strictly increasing upper bounds; default {@linkcode DEFAULT_BUCKETS}. */
  buckets?: readonly number[] | undefined;
}

/** What a {@linkcode Registry} holds: a named metric that renders its own exposition text. */
export interface Metric {
  /** The metric name, unique within a registry. */
  readonly name: string;
  /** The `# HELP`, `# TYPE` and sample lines of every series. */
  render(): string;
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

function escapeHelp(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

function formatNumber(n: number): string {
  if (Number.isNaN(n)) return "NaN";
  if (n === Infinity) return "+Inf";
  if (n === -Infinity) return "-Inf";
  return String(n);
}

/** What every metric kind shares: name checks, one series per label-value combination, rendering helpers. */
export abstract class Base<S> implements Metric {
  /** The metric name (validated). */
  readonly name: string;
  /** The `# HELP` text. */
  readonly help: string;
  /** The label names every series sets; `[]` for an unlabelled metric. */
  readonly labelNames: readonly string[];
  /** Each series' labels and state `S`, keyed by the JSON of its label values in `labelNames` order. */
  protected readonly series = new Map<string, { labels: Labels; value: S }>();

  /** Throws `RangeError` on an invalid metric or label name (or the reserved `le`). */
  constructor(options: MetricOptions) {
    if (!NAME.test(options.name)) throw new RangeError(`Invalid metric name: ${options.name}`);
    for (const l of options.labelNames ?? []) {
      if (!LABEL.test(l) || l === "le") throw new RangeError(`Invalid label name for ${options.name}: ${l}`);
    }
    this.name = options.name;
    this.help = options.help;
    this.labelNames = options.labelNames ?? [];
  }

  /** The series of `labels`, created with `init()` if new; throws `RangeError` when a label is missing. */
  protected entry(labels: Labels, init: () => S): { labels: Labels; value: S } {
    const values: string[] = [];
    for (const l of this.labelNames) {
      const v = labels[l];
      if (v === undefined) throw new RangeError(`Metric ${this.name} needs label ${l}`);
      values.push(v);
    }
    const key = JSON.stringify(values);
    let e = this.series.get(key);
    if (!e) {
      const own: Labels = {};
      for (const l of this.labelNames) own[l] = labels[l] ?? "";
      e = { labels: own, value: init() };
      this.series.set(key, e);
    }
    return e;
  }

  /** Drops one series (a Binding that went away); absent series are ignored. */
  remove(labels: Labels): void {
    this.series.delete(JSON.stringify(this.labelNames.map((l) => labels[l] ?? "")));
  }

  /** Drops every series whose labels include all of `labels` (e.g. everything about one Backrest). */
  removeWhere(labels: Labels): void {
    for (const [key, e] of this.series) {
      if (Object.entries(labels).every(([k, v]) => e.labels[k] === v)) this.series.delete(key);
    }
  }

  /** The label values `name` takes across the series. */
  labelValues(name: string): Set<string> {
    return new Set([...this.series.values()].map((e) => e.labels[name] ?? ""));
  }

  /** `{k="v",...}` with values escaped and `extra` (e.g. `le`) last; `""` without labels. */
  protected labelText(labels: Labels, extra?: [string, string]): string {
    const pairs = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
    if (extra) pairs.push(`${extra[0]}="${escapeLabel(extra[1])}"`);
    return pairs.length ? `{${pairs.join(",")}}` : "";
  }

  /** The `# HELP` and `# TYPE` lines for metric type `type`. */
  protected header(type: string): string {
    return `# HELP ${this.name} ${escapeHelp(this.help)}\n# TYPE ${this.name} ${type}\n`;
  }

  /** The `# HELP`, `# TYPE` and sample lines of every series. */
  abstract render(): string;
}

/** A metric of one number a series: a counter or a gauge. */
export abstract class Scalar extends Base<{ v: number }> {
  /** The `# TYPE` it is exposed as. */
  protected abstract readonly type: "counter" | "gauge";

  /** The series of `labels`, 0 when new. */
  protected cell(labels: Labels): { v: number } {
    return this.entry(labels, () => ({ v: 0 })).value;
  }

  /** Current value of one series (0 if never touched). */
  get(labels: Labels = {}): number {
    return this.cell(labels).v;
  }

  /** One sample per series. */
  render(): string {
    let out = this.header(this.type);
    for (const { labels, value } of this.series.values()) {
      out += `${this.name}${this.labelText(labels)} ${formatNumber(value.v)}\n`;
    }
    return out;
  }
}

/** A monotonically increasing count. */
export class Counter extends Scalar {
  /** Exposed as a counter. */
  protected readonly type = "counter";

  /** Adds `by` (default 1; negative values are refused). */
  inc(labels: Labels = {}, by = 1): void {
    if (by < 0) throw new RangeError(`Counter ${this.name} cannot decrease`);
    this.cell(labels).v += by;
  }
}

/** A value that goes up and down. */
export class Gauge extends Scalar {
  /** Exposed as a gauge. */
  protected readonly type = "gauge";

  /** Sets one series to `value`. */
  set(labels: Labels, value: number): void {
    this.cell(labels).v = value;
  }

  /** Adds `by` (default 1) to one series. */
  inc(labels: Labels = {}, by = 1): void {
    this.cell(labels).v += by;
  }

  /** Subtracts `by` (default 1) from one series. */
  dec(labels: Labels = {}, by = 1): void {
    this.cell(labels).v -= by;
  }
}

/** One histogram series. */
export interface HistogramState {
  /** Observations at or below each bucket's bound (cumulative), in bucket order. */
  counts: number[];
  /** Sum of all observed values. */
  sum: number;
  /** Number of observations (the `+Inf` bucket). */
  count: number;
}

/** Default buckets in seconds, as client_golang's `DefBuckets`. */
export const DEFAULT_BUCKETS: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Observations counted into cumulative buckets, with their sum and count. */
export class Histogram extends Base<HistogramState> {
  /** The bucket upper bounds, ascending, without `+Inf`. */
  readonly buckets: readonly number[];

  /** Throws `RangeError` on invalid names or buckets that do not strictly increase. */
  constructor(options: HistogramOptions) {
    super(options);
    const buckets = [...(options.buckets ?? DEFAULT_BUCKETS)];
    for (let i = 1; i < buckets.length; i++) {
      if (!((buckets[i] ?? 0) > (buckets[i - 1] ?? 0))) {
        throw new RangeError(`Histogram ${this.name} buckets must increase`);
      }
    }
    this.buckets = buckets;
  }

  /** Counts `value` into one series' buckets, sum and count. */
  observe(labels: Labels, value: number): void {
    const s = this.entry(labels, () => ({ counts: this.buckets.map(() => 0), sum: 0, count: 0 })).value;
    for (let i = 0; i < this.buckets.length; i++) {
      if (value <= (this.buckets[i] ?? Infinity)) s.counts[i] = (s.counts[i] ?? 0) + 1;
    }
    s.sum += value;
    s.count++;
  }

  /** Number of observations of one series. */
  count(labels: Labels = {}): number {
    return this.entry(labels, () => ({ counts: this.buckets.map(() => 0), sum: 0, count: 0 })).value.count;
  }

  /** The histogram's exposition: `_bucket` lines (cumulative), `_sum` and `_count` per series. */
  render(): string {
    let out = this.header("histogram");
    for (const { labels, value } of this.series.values()) {
      this.buckets.forEach((b, i) => {
        out += `${this.name}_bucket${this.labelText(labels, ["le", formatNumber(b)])} ${
          value.counts[i] ?? 0
        }\n`;
      });
      out += `${this.name}_bucket${this.labelText(labels, ["le", "+Inf"])} ${value.count}\n`;
      out += `${this.name}_sum${this.labelText(labels)} ${formatNumber(value.sum)}\n`;
      out += `${this.name}_count${this.labelText(labels)} ${value.count}\n`;
    }
    return out;
  }
}

/** A set of metrics rendered together. Registering a name twice is an error. */
export class Registry {
  readonly #metrics = new Map<string, Metric>();

  /** Registers a new counter; throws `RangeError` if the name is taken. */
  counter(options: MetricOptions): Counter {
    return this.#add(new Counter(options));
  }

  /** Registers a new gauge; throws `RangeError` if the name is taken. */
  gauge(options: MetricOptions): Gauge {
    return this.#add(new Gauge(options));
  }

  /** Registers a new histogram; throws `RangeError` if the name is taken. */
  histogram(options: HistogramOptions): Histogram {
    return this.#add(new Histogram(options));
  }

  /** The text exposition of every metric, sorted by name. */
  render(): string {
    return [...this.#metrics.values()].sort((a, b) => a.name.localeCompare(b.name)).map((m) => m.render())
      .join("");
  }

  #add<M extends Metric>(metric: M): M {
    if (this.#metrics.has(metric.name)) throw new RangeError(`Metric ${metric.name} is already registered`);
    this.#metrics.set(metric.name, metric);
    return metric;
  }
}

/** The content type of {@linkcode Registry.render}'s output. */
export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";
