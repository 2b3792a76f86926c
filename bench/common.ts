/**
 * Shared pieces of the scenario benchmarks: the machine description, percentiles, an in-process operator
 * wired as `main.ts` wires it but with a counting KubeClient and a timing Backrest factory, fixture
 * creation in bulk, and result files. Rule: a scenario measures, it never asserts; targets are reported.
 */
import { type BackrestApi, backrestClient, type BackrestConnection } from "../lib/backrest/mod.ts";
import { createClient, kubeconfigConnection, type KubeObject } from "../lib/kube/mod.ts";
import { createLogger } from "../lib/observe/mod.ts";
import { createOperator, type Operator } from "../lib/reconcile/mod.ts";
import { binding, BINDINGS, cluster, replicationSource, secret } from "../tests/harness/operator.ts";
import { waitUntil } from "../tests/harness/process.ts";
import { countingKube, type KubeCounts } from "../tests/harness/kube_counts.ts";

export { BINDINGS };

/** What a scenario hands back to main.ts. */
export interface ScenarioResult {
  scenario: string;
  /** The stand-in or the real Backrest, per part. */
  backrest: string;
  /** Parameters actually used (N, windows) and where they were scaled down from the issue's. */
  params: Record<string, unknown>;
  results: Record<string, unknown>;
  /** Target name -> { target, measured, pass }. */
  targets: Record<string, { target: string; measured: number | string | null; pass: boolean | null }>;
  notes?: string[];
}

export function pct(values: readonly number[], p: number): number | null {
  if (values.length === 0) return null;
  const s = [...values].sort((a, b) => a - b);
  return round(s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!);
}

export function round(x: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

export interface Summary {
  n: number;
  p50: number | null;
  p90: number | null;
  p99: number | null;
  max: number | null;
  mean: number | null;
}

export function summary(values: readonly number[]): Summary {
  return {
    n: values.length,
    p50: pct(values, 50),
    p90: pct(values, 90),
    p99: pct(values, 99),
    max: values.length ? round(Math.max(...values)) : null,
    mean: values.length ? round(values.reduce((a, b) => a + b, 0) / values.length) : null,
  };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function loadAverage(): number[] {
  try {
    return Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).map(Number);
  } catch {
    return [];
  }
}

/** CPU seconds (user + system) this process has used, from /proc/self/stat. */
export function cpuSeconds(pid: number | "self" = "self"): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
}

/** nproc, memory, kernel, Deno version. */
export async function machine(): Promise<Record<string, unknown>> {
  const mem = Deno.systemMemoryInfo();
  const uname = await new Deno.Command("uname", { args: ["-r"], stdout: "piped" }).output();
  let cpuModel: string | undefined;
  try {
    cpuModel = /model name\s*:\s*(.+)/.exec(Deno.readTextFileSync("/proc/cpuinfo"))?.[1];
  } catch { /* not Linux */ }
  return {
    nproc: navigator.hardwareConcurrency,
    cpuModel,
    memoryMB: Math.round(mem.total / 1024 / 1024),
    kernel: new TextDecoder().decode(uname.stdout).trim(),
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    benchV8Flags: Deno.env.get("BENCH_V8_FLAGS") ?? "",
  };
}

/** One timed Backrest call. */
export interface Span {
  method: string;
  start: number;
  end: number;
  ok: boolean;
}

/** A Backrest factory whose clients time every call (the real pooled client underneath). */
export function timedBackrest(
  inner: (c: BackrestConnection) => BackrestApi = backrestClient,
): { factory: (c: BackrestConnection) => BackrestApi; spans: Span[]; calls(): Record<string, number> } {
  const spans: Span[] = [];
  const wrap = (api: BackrestApi): BackrestApi => {
    const timed = <A extends unknown[], R>(method: string, fn: (...a: A) => Promise<R>) =>
    async (
      ...a: A
    ): Promise<R> => {
      const start = performance.now();
      let ok = false;
      try {
        const r = await fn(...a);
        ok = true;
        return r;
      } finally {
        spans.push({ method, start, end: performance.now(), ok });
      }
    };
    return {
      url: api.url,
      addRepo: timed("AddRepo", api.addRepo.bind(api)),
      removeRepo: timed("RemoveRepo", api.removeRepo.bind(api)),
      checkRepoExists: timed("CheckRepoExists", api.checkRepoExists.bind(api)),
      doRepoTask: timed("DoRepoTask", api.doRepoTask.bind(api)),
      listRepoIds: timed("GetSummaryDashboard", api.listRepoIds.bind(api)),
      probe: timed("Probe", api.probe.bind(api)),
    };
  };
  const cache = new Map<BackrestApi, BackrestApi>();
  return {
    spans,
    factory: (c) => {
      const api = inner(c);
      let w = cache.get(api);
      if (!w) cache.set(api, w = wrap(api));
      return w;
    },
    calls: () => {
      const out: Record<string, number> = {};
      for (const s of spans) out[s.method] = (out[s.method] ?? 0) + 1;
      return out;
    },
  };
}

/** An operator in-process, wired as main.ts wires it, with counting and timing seams. */
export interface BenchOperator {
  operator: Operator;
  /** Namespace the operator reads its OperatorConfig from. */
  configNamespace: string;
  counts: KubeCounts;
  spans: Span[];
  backrestCalls(): Record<string, number>;
  logLines(): number;
  /** Starts the manager; resolves once caches are synced. */
  start(): Promise<void>;
  stop(): Promise<void>;
}

export async function benchOperator(o: {
  namespaces: string[];
  concurrency?: number;
  backrest?: (c: BackrestConnection) => BackrestApi;
}): Promise<BenchOperator> {
  const cp = await cluster();
  const connection = await kubeconfigConnection({ path: cp.kubeconfigPath });
  const { kube, counts } = countingKube(createClient(connection));
  const timed = timedBackrest(o.backrest);
  let lines = 0;
  const logger = createLogger({ level: "info", format: "json", write: () => lines++ });
  const configNamespace = await cp.namespace("bench-cfg");
  const operator = createOperator({
    kube,
    namespaces: o.namespaces,
    configNamespace,
    configName: "backrest-volsync-operator",
    concurrency: o.concurrency ?? 4,
    logger,
    backrest: timed.factory,
    backrestTimeoutMs: 60_000,
  });
  const stop = new AbortController();
  let running: Promise<void> | undefined;
  return {
    operator,
    configNamespace,
    counts,
    spans: timed.spans,
    backrestCalls: timed.calls,
    logLines: () => lines,
    async start() {
      running = operator.manager.start(stop.signal);
      let failed: unknown;
      running.catch((e) => failed = e);
      await waitUntil("operator caches synced", () => {
        if (failed) throw failed;
        return Promise.resolve(operator.manager.ready());
      }, { timeoutMs: 120_000, intervalMs: 10 });
    },
    async stop() {
      stop.abort();
      await running?.catch(() => {});
      connection.close();
    },
  };
}

export function isReady(b: KubeObject): boolean {
  const status = b.status as { conditions?: { type: string; status: string }[] } | undefined;
  return status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;
}

/** Runs `fn` over `items` with `width` at a time. */
export async function parallel<T>(
  items: readonly T[],
  width: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < items.length) await fn(items[next++]!);
  }));
}

/** POST with a retry on transient apiserver errors (429/5xx). */
export async function post(path: string, body: Record<string, unknown>): Promise<void> {
  const cp = await cluster();
  for (let attempt = 0;; attempt++) {
    const res = await cp.api("POST", path, body);
    const text = await res.text();
    if (res.ok || res.status === 409) return;
    if (attempt < 5 && (res.status === 429 || res.status >= 500)) {
      await sleep(200 * (attempt + 1));
      continue;
    }
    throw new Error(`POST ${path}: HTTP ${res.status}: ${text.slice(0, 300)}`);
  }
}

/** Creates, for i in [from, to), Secret `s-i`, ReplicationSource `rs-i` and Binding `b-i` in `ns`. */
export async function createBindings(
  ns: string,
  from: number,
  to: number,
  url: string,
  secretData: (i: number) => Record<string, string>,
): Promise<void> {
  const idx = Array.from({ length: to - from }, (_, k) => from + k);
  await parallel(idx, 16, async (i) => {
    await post(`/api/v1/namespaces/${ns}/secrets`, secret(`s-${i}`, secretData(i)));
    await post(
      `/apis/volsync.backube/v1alpha1/namespaces/${ns}/replicationsources`,
      replicationSource(`rs-${i}`, `s-${i}`),
    );
    await post(
      `${BINDINGS}/namespaces/${ns}/backrestvolsyncbindings`,
      binding(`b-${i}`, { url, source: `rs-${i}` }),
    );
  });
}

/** Writes `bench/results/<name>.json`. */
export async function writeResult(name: string, data: unknown): Promise<string> {
  const dir = new URL("./results/", import.meta.url);
  await Deno.mkdir(dir, { recursive: true });
  const path = new URL(`${name}.json`, dir);
  await Deno.writeTextFile(
    path,
    JSON.stringify(data, (_k, v) => typeof v === "bigint" ? String(v) : v, 2) + "\n",
  );
  return path.pathname;
}

/** Log to stderr (stdout carries nothing but the final table). */
export function say(msg: string): void {
  // deno-lint-ignore no-console -- progress of a long benchmark run
  console.error(`[bench] ${msg}`);
}
