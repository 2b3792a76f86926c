/**
 * Runtime benchmark on the real control plane; JSON results on stdout.
 * - latency: watch event arrival in the informer → reconcile start (p50/p99), and apiserver write answer
 *   → reconcile start, over N ConfigMap updates;
 * - memory: heap growth of an informer store holding 10 000 small ConfigMaps (managedFields dropped).
 * Run: `tools/deno run -A --v8-flags=--expose-gc bench/runtime.ts` (gc makes the memory figure stable).
 */
import { controlPlane } from "../tests/harness/control_plane.ts";
import { configMaps, createClient, kubeconfigConnection, type KubeObject } from "../lib/kube/mod.ts";
import { Controller, done, dropManagedFields, informerFor } from "../lib/runtime/mod.ts";

const UPDATES = Number(Deno.env.get("BENCH_UPDATES") ?? 500);
const OBJECTS = Number(Deno.env.get("BENCH_OBJECTS") ?? 10_000);

function pct(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return Number((s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN).toFixed(3));
}

function gc(): void {
  const g: unknown = Reflect.get(globalThis, "gc");
  if (typeof g === "function") g();
}

const cp = await controlPlane();
const conn = await kubeconfigConnection({ path: cp.kubeconfigPath });
const kube = createClient(conn);

// Latency.
const ns = await cp.namespace("bench-latency");
const informer = informerFor(kube, configMaps, { namespaces: [ns], transform: dropManagedFields });
const arrived = new Map<string, number>();
const answered = new Map<string, number>();
const eventToStart: number[] = [];
const writeToStart: number[] = [];
informer.addHandler((e) =>
  arrived.set(`${e.object.metadata.name}@${e.object.metadata.resourceVersion}`, performance.now())
);
const controller = new Controller({
  name: "bench",
  concurrency: 2,
  reconcile: (key) => {
    const t = performance.now();
    const obj = informer.store.get(key);
    const id = `${obj?.metadata.name}@${obj?.metadata.resourceVersion}`;
    const a = arrived.get(id);
    const w = answered.get(id);
    if (a !== undefined) eventToStart.push(t - a);
    if (w !== undefined) writeToStart.push(t - w);
    return Promise.resolve(done);
  },
}).watch(informer);
const stop = new AbortController();
const runs = [informer.start(stop.signal), controller.start(stop.signal)];
await informer.waitForSync();
for (let i = 0; i < UPDATES; i++) {
  const name = `o${i % 50}`;
  const body: KubeObject = { metadata: { name, namespace: ns }, data: { v: `${i}` } };
  const res = await kube.apply(configMaps, { apiVersion: "v1", kind: "ConfigMap", ...body }, {
    fieldManager: "bench",
    force: true,
  });
  answered.set(`${name}@${res.metadata.resourceVersion}`, performance.now());
}
await new Promise((r) => setTimeout(r, 1000));
stop.abort();
await Promise.all(runs);

// Memory.
const memNs = await cp.namespace("bench-memory");
let next = 0;
await Promise.all(Array.from({ length: 16 }, async () => {
  while (next < OBJECTS) {
    const i = next++;
    await kube.create(configMaps, {
      metadata: { name: `c${i}`, namespace: memNs, labels: { app: "bench" } },
      data: { key: `value-${i}` },
    });
  }
}));
gc();
const before = Deno.memoryUsage().heapUsed;
const memInformer = informerFor(kube, configMaps, { namespaces: [memNs], transform: dropManagedFields });
const stop2 = new AbortController();
const t0 = performance.now();
const run2 = memInformer.start(stop2.signal);
await memInformer.waitForSync();
const syncMs = performance.now() - t0;
gc();
const after = Deno.memoryUsage().heapUsed;
const size = memInformer.store.size;
stop2.abort();
await run2;
conn.close();

// deno-lint-ignore no-console -- the results are the program's output
console.log(JSON.stringify(
  {
    benchmark: "runtime",
    updates: UPDATES,
    eventToReconcileStartMs: {
      p50: pct(eventToStart, 50),
      p99: pct(eventToStart, 99),
      samples: eventToStart.length,
    },
    writeAnswerToReconcileStartMs: {
      p50: pct(writeToStart, 50),
      p99: pct(writeToStart, 99),
      samples: writeToStart.length,
    },
    store: {
      objects: size,
      syncMs: Math.round(syncMs),
      heapBytes: after - before,
      bytesPerObject: Math.round((after - before) / size),
      gcExposed: typeof Reflect.get(globalThis, "gc") === "function",
    },
  },
  null,
  2,
));
// The harness keeps the control plane alive until process exit; end the process explicitly.
Deno.exit(0);
