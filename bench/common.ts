/**
 * Shared pieces of the scenario benchmarks: the machine description, percentiles, an in-process operator
 * wired as `main.ts` wires it but with a counting KubeClient and a timing Backrest factory, fixture
 * creation in bulk, and result files. Rule: a scenario measures, it never asserts; targets are reported.
 */
import { type BackrestApi, backrestClient, type BackrestConnection } from "../lib/backrest/mod.ts";
import { createClient, kubeconfigConnection, type KubeObject } from "../lib/kube/mod.ts";
import { createLogger } from "../lib/observe/mod.ts";
import { createOperator, type Operator } from "../lib/reconcile/mod.ts";
import {
  binding,
  BINDINGS,
  cluster,
  ensureOperatorConfig,
  replicationSource,
  secret,
} from "../tests/harness/operator.ts";
import { freePort, type Proc, spawn, tempDir, waitUntil } from "../tests/harness/process.ts";
import { imageEnv, taskFlags } from "../tests/harness/operator_process.ts";
import { parallel } from "./parallel.ts";
export { parallel };
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

/** User + system CPU seconds in a /proc `stat` line (of a process or of one of its threads). */
function statCpuSeconds(stat: string): number {
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
}

/** CPU seconds (user + system) this process has used, from /proc/self/stat. */
export function cpuSeconds(pid: number | "self" = "self"): number {
  return statCpuSeconds(Deno.readTextFileSync(`/proc/${pid}/stat`));
}

/**
 * CPU seconds used so far by the control plane this process started (its child processes `kube-apiserver`
 * and `etcd`, found in /proc by parent and name): what the apiserver had to do for a run is the difference.
 */
export function controlPlaneCpuSeconds(): { apiserver: number; etcd: number } {
  const out = { apiserver: 0, etcd: 0 };
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    let stat: string;
    try {
      stat = Deno.readTextFileSync(`/proc/${entry.name}/stat`);
    } catch {
      continue; // ended meanwhile
    }
    const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
    const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    if (ppid !== Deno.pid) continue;
    if (comm === "kube-apiserver") out.apiserver += statCpuSeconds(stat);
    else if (comm === "etcd") out.etcd += statCpuSeconds(stat);
  }
  return out;
}

/**
 * CPU seconds of `pid` by kind of thread, from /proc/<pid>/task/<tid>/stat: `main` (the JavaScript thread,
 * with Deno's event loop and its I/O), `v8Workers` (V8's background GC and compilers), `other` (Tokio's
 * blocking pool, e.g. Web Crypto, and any other thread). Threads that have ended are not counted.
 */
export function cpuByThread(
  pid: number | "self" = "self",
): { main: number; v8Workers: number; other: number } {
  const out = { main: 0, v8Workers: 0, other: 0 };
  const main = pid === "self" ? Deno.pid : pid;
  for (const task of Deno.readDirSync(`/proc/${main}/task`)) {
    let stat: string;
    try {
      stat = Deno.readTextFileSync(`/proc/${main}/task/${task.name}/stat`);
    } catch {
      continue; // ended meanwhile
    }
    const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
    const seconds = statCpuSeconds(stat);
    if (Number(task.name) === main) out.main += seconds;
    else if (comm.startsWith("V8 ")) out.v8Workers += seconds;
    else out.other += seconds;
  }
  return { main: round(out.main, 2), v8Workers: round(out.v8Workers, 2), other: round(out.other, 2) };
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
  // The benchmarks' real repositories are on a loopback rest-server: the tests' baseline config admits them.
  await ensureOperatorConfig(configNamespace);
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

/** A `kB` line of /proc/<pid>/status in MB (VmRSS: all resident; VmHWM: the peak; RssAnon, RssFile). */
export function procStatus(pid: number, field = "VmRSS"): number {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(Deno.readTextFileSync(`/proc/${pid}/status`));
  return m ? Math.round(Number(m[1]) / 1024 * 10) / 10 : NaN;
}

/** The operator as a separate process in-cluster mode (see {@linkcode startInClusterOperator}). */
export interface InClusterOperator {
  proc: Proc;
  pid: number;
  probePort: number;
  stop(): Promise<void>;
}

/**
 * Runs the real `main.ts` as a SEPARATE process with the run task's flags (the compile task's permission
 * set and V8 flags) and the image's ENV, in-cluster mode (see {@linkcode startInClusterProgram}). Resolves
 * once /readyz answers.
 */
export async function startInClusterOperator(o: {
  namespaces: string[];
  configNamespace: string;
  inspectPort?: number;
  /**
   * With `inspectPort`: the operator waits for a debugger before running, and this is called once it
   * listens, before /readyz is awaited (to start a profiler, then let it run).
   */
  attach?: () => Promise<void>;
  extraArgs?: string[];
  /** Where /metrics listens; default none. */
  metricsAddress?: string;
}): Promise<InClusterOperator> {
  const probePort = freePort();
  await ensureOperatorConfig(o.configNamespace);
  const proc = await startInClusterProgram({
    name: "operator",
    namespace: o.configNamespace,
    ...(o.inspectPort ? { inspect: `--inspect${o.attach ? "-wait" : ""}=127.0.0.1:${o.inspectPort}` } : {}),
    entry: "main.ts",
    args: [
      "--leader-elect=false",
      `--namespace=${o.namespaces.join(",")}`,
      `--operator-config-namespace=${o.configNamespace}`,
      `--metrics-bind-address=${o.metricsAddress ?? "0"}`,
      `--health-probe-bind-address=127.0.0.1:${probePort}`,
      "--log-level=error",
      ...(o.extraArgs ?? []),
    ],
  });
  if (o.attach && o.inspectPort) {
    const port = o.inspectPort;
    await waitUntil("operator inspector", async () => {
      try {
        // The listener answers before the main module's target is listed: wait for the target itself.
        const targets = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json() as unknown[];
        return targets.length > 0;
      } catch {
        return false;
      }
    }, { proc, timeoutMs: 60_000, intervalMs: 50 });
    await o.attach();
  }
  await waitUntil("operator /readyz", async () => {
    const res = await fetch(`http://127.0.0.1:${probePort}/readyz`);
    await res.body?.cancel();
    return res.ok;
  }, { proc, timeoutMs: 60_000, intervalMs: 100 });
  return { proc, pid: proc.child.pid, probePort, stop: () => proc.stop() };
}

/**
 * Runs `entry` (a path from the repository's root) as a SEPARATE process with the run task's flags and the
 * image's ENV, in-cluster mode: a ServiceAccount token (bound to cluster-admin; RBAC parity is tested
 * elsewhere) and CA mounted on a private tmpfs over /run inside `unshare -m`, so the process starts as in
 * a pod. `inspect` is a `--inspect...` flag for the runtime.
 */
export async function startInClusterProgram(o: {
  name: string;
  /** The ServiceAccount's namespace (the pod's). */
  namespace: string;
  entry: string;
  args: string[];
  inspect?: string;
  /** More environment (e.g. `POD_NAME`, which names the replica in its leader-election identity). */
  env?: Record<string, string>;
}): Promise<Proc> {
  const cp = await cluster();
  const account = `bench-${o.name}-${crypto.randomUUID().slice(0, 8)}`;
  const token = await cp.serviceAccountToken(o.namespace, account, 7200);
  await post("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", {
    metadata: { name: account },
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "cluster-admin" },
    subjects: [{ kind: "ServiceAccount", name: account, namespace: o.namespace }],
  });
  const sa = await tempDir("bench-sa");
  await Deno.writeTextFile(`${sa}/token`, token);
  await Deno.writeTextFile(`${sa}/ca.crt`, cp.ca);
  await Deno.writeTextFile(`${sa}/namespace`, o.namespace);
  const script = [
    "mount -t tmpfs none /run",
    "mkdir -p /run/secrets/kubernetes.io/serviceaccount",
    `cp ${sa}/token ${sa}/ca.crt ${sa}/namespace /run/secrets/kubernetes.io/serviceaccount/`,
    `exec ${Deno.execPath()} run ${taskFlags("run").join(" ")} ${o.inspect ?? ""} ${o.entry} ${
      o.args.join(" ")
    }`,
  ].join(" && ");
  return await spawn(o.name, "unshare", {
    args: ["-m", "sh", "-c", script],
    cwd: new URL("../", import.meta.url).pathname,
    env: {
      ...imageEnv(),
      ...o.env,
      KUBERNETES_SERVICE_HOST: "127.0.0.1",
      KUBERNETES_SERVICE_PORT: new URL(cp.server).port,
    },
    logDir: await tempDir(`bench-${o.name}-log`),
  });
}

/** How many Bindings of `ns` are Ready, read from the apiserver. */
export async function readyCount(ns: string): Promise<number> {
  const cp = await cluster();
  const list = await cp.json("GET", `${BINDINGS}/namespaces/${ns}/backrestvolsyncbindings`) as {
    items: { status?: { conditions?: { type: string; status: string }[] } }[];
  };
  return list.items.filter((b) =>
    b.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True")
  )
    .length;
}

/** A V8 inspector session (see {@linkcode inspector}). */
export interface InspectorSession {
  /** Sends a DevTools protocol command; resolves with its result. */
  call(method: string, params?: Record<string, unknown>): Promise<Record<string, unknown>>;
  /** Writes a .heapsnapshot (for Chrome DevTools) of the process to `path`. */
  snapshot(path: string): Promise<void>;
  close(): void;
}

/** A V8 inspector session with the process listening on `port` (its first target). */
export async function inspector(port: number): Promise<InspectorSession> {
  const list = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json() as {
    webSocketDebuggerUrl: string;
  }[];
  const ws = new WebSocket(list[0]!.webSocketDebuggerUrl);
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = reject;
  });
  let id = 0;
  const waiting = new Map<number, (v: Record<string, unknown>) => void>();
  const chunks: string[] = [];
  ws.onmessage = (e) => {
    const msg = JSON.parse(String(e.data)) as {
      id?: number;
      result?: Record<string, unknown>;
      method?: string;
      params?: { chunk?: string };
    };
    if (msg.id !== undefined) waiting.get(msg.id)?.(msg.result ?? {});
    else if (msg.method === "HeapProfiler.addHeapSnapshotChunk") chunks.push(msg.params?.chunk ?? "");
  };
  const call = (method: string, params?: Record<string, unknown>) =>
    new Promise<Record<string, unknown>>((resolve) => {
      const n = ++id;
      waiting.set(n, resolve);
      ws.send(JSON.stringify({ id: n, method, ...(params ? { params } : {}) }));
    });
  /** Writes a .heapsnapshot (for Chrome DevTools) of the operator to `path`. */
  const snapshot = async (path: string) => {
    chunks.length = 0;
    await call("HeapProfiler.takeHeapSnapshot");
    await Deno.writeTextFile(path, chunks.join(""));
  };
  return { call, snapshot, close: () => ws.close() };
}
