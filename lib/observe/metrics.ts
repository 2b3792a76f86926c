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
  name: string;
  help: string;
  labelNames?: readonly string[] | undefined;
}

/** Histogram settings: bucket upper bounds (ascending, `+Inf` implied). */
export interface HistogramOptions extends MetricOptions {
  buckets?: readonly number[] | undefined;
}

interface Metric {
  readonly name: string;
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

abstract class Base<S> implements Metric {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly string[];
  protected readonly series = new Map<string, { labels: Labels; value: S }>();

  constructor(options: MetricOptions) {
    if (!NAME.test(options.name)) throw new RangeError(`Invalid metric name: ${options.name}`);
    for (const l of options.labelNames ?? []) {
      if (!LABEL.test(l) || l === "le") throw new RangeError(`Invalid label name for ${options.name}: ${l}`);
    }
    this.name = options.name;
    this.help = options.help;
    this.labelNames = options.labelNames ?? [];
  }

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

  protected labelText(labels: Labels, extra?: [string, string]): string {
    const pairs = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
    if (extra) pairs.push(`${extra[0]}="${escapeLabel(extra[1])}"`);
    return pairs.length ? `{${pairs.join(",")}}` : "";
  }

  protected header(type: string): string {
    return `# HELP ${this.name} ${escapeHelp(this.help)}\n# TYPE ${this.name} ${type}\n`;
  }

  abstract render(): string;
}

/** A monotonically increasing count. */
export class Counter extends Base<{ v: number }> {
  /** Adds `by` (default 1; negative values are refused). */
  inc(labels: Labels = {}, by = 1): void {
    if (by < 0) throw new RangeError(`Counter ${this.name} cannot decrease`);
    this.entry(labels, () => ({ v: 0 })).value.v += by;
  }

  /** Current value of one series (0 if never touched). */
  get(labels: Labels = {}): number {
    return this.entry(labels, () => ({ v: 0 })).value.v;
  }

  render(): string {
    let out = this.header("counter");
    for (const { labels, value } of this.series.values()) {
      out += `${this.name}${this.labelText(labels)} ${formatNumber(value.v)}\n`;
    }
    return out;
  }
}

/** A value that goes up and down. */
export class Gauge extends Base<{ v: number }> {
  set(labels: Labels, value: number): void {
    this.entry(labels, () => ({ v: 0 })).value.v = value;
  }

  inc(labels: Labels = {}, by = 1): void {
    this.entry(labels, () => ({ v: 0 })).value.v += by;
  }

  dec(labels: Labels = {}, by = 1): void {
    this.entry(labels, () => ({ v: 0 })).value.v -= by;
  }

  get(labels: Labels = {}): number {
    return this.entry(labels, () => ({ v: 0 })).value.v;
  }

  render(): string {
    let out = this.header("gauge");
    for (const { labels, value } of this.series.values()) {
      out += `${this.name}${this.labelText(labels)} ${formatNumber(value.v)}\n`;
    }
    return out;
  }
}

interface HistogramState {
  counts: number[];
  sum: number;
  count: number;
}

/** Default buckets in seconds, as client_golang's `DefBuckets`. */
export const DEFAULT_BUCKETS: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Observations counted into cumulative buckets, with their sum and count. */
export class Histogram extends Base<HistogramState> {
  readonly buckets: readonly number[];

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

  counter(options: MetricOptions): Counter {
    return this.#add(new Counter(options));
  }

  gauge(options: MetricOptions): Gauge {
    return this.#add(new Gauge(options));
  }

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
