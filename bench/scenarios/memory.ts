/**
 * (d) memory of the operator as a SEPARATE process running the real `main.ts` with the run task's flags
 * (the compile task's permission set and V8 flags) and the image's ENV (malloc tuning), in-cluster mode
 * (a ServiceAccount token and CA mounted on a private tmpfs over /run inside `unshare -m`, so
 * @kubernetes/client-node is never loaded, as in a pod), with
 * 5 000 unrelated Secrets in the watched namespace, at 0 and 1 000 Bindings (5 000 with BENCH_MEM_MAX).
 * Resident memory from /proc/<pid>/status (VmRSS, split into RssAnon: heap and native allocations, and
 * RssFile: pages of the executable, here the whole `deno` CLI rather than the smaller `denort`) 5 s
 * after the last Binding turned Ready and again after BENCH_MEM_SETTLE_MS (30 s) of idling, plus the peak
 * so far (VmHWM); heap used after a forced GC through the V8 inspector
 * (`HeapProfiler.collectGarbage`, `Runtime.getHeapUsage`). The Bindings point at a stand-in served by
 * this bench process.
 */
import { startBackrestStandin } from "../../tests/harness/backrest_standin.ts";
import { cluster } from "../../tests/harness/operator.ts";
import { imageEnv, taskFlags } from "../../tests/harness/operator_process.ts";
import { freePort, waitUntil } from "../../tests/harness/process.ts";
import {
  cpuSeconds,
  createBindings,
  inspector,
  parallel,
  post,
  procStatus,
  readyCount,
  say,
  type ScenarioResult,
  sleep,
  startInClusterOperator,
} from "../common.ts";

const status = procStatus;
const vmRss = (pid: number) => status(pid);

export async function memory(max = Number(Deno.env.get("BENCH_MEM_MAX") ?? 1000)): Promise<ScenarioResult> {
  // BENCH_MEM_INSPECT=0 measures without the V8 inspector (no forced GC, no heap figures).
  const withInspector = Deno.env.get("BENCH_MEM_INSPECT") !== "0";
  const cp = await cluster();
  const ns = await cp.namespace("bench-mem");
  const unrelated = 5000;
  const t0 = performance.now();
  await parallel([...Array(unrelated).keys()], 16, (i) =>
    post(`/api/v1/namespaces/${ns}/secrets`, {
      metadata: { name: `unrelated-${i}`, labels: { app: "other" } },
      stringData: { "tls.crt": "x".repeat(1024), password: `p-${i}` },
    }));
  say(`memory: ${unrelated} unrelated Secrets in ${Math.round(performance.now() - t0)} ms`);
  const standin = startBackrestStandin();

  const inspectPort = freePort();
  const op = await startInClusterOperator({
    namespaces: [ns],
    configNamespace: ns,
    ...(withInspector ? { inspectPort } : {}),
  });
  const { proc, pid } = op;
  try {
    const inspect = withInspector ? await inspector(inspectPort) : undefined;
    const points: Record<string, unknown>[] = [];
    const measure = async (bindings: number) => {
      await sleep(5000);
      const rssAfter5sMB = vmRss(pid);
      // Then idle: V8's memory reducer shrinks the heap a while after the allocation rate drops.
      await sleep(Number(Deno.env.get("BENCH_MEM_SETTLE_MS") ?? 30_000));
      const rssMB = vmRss(pid);
      await inspect?.call("HeapProfiler.collectGarbage");
      const heap = await inspect?.call("Runtime.getHeapUsage");
      const point = {
        bindings,
        unrelatedSecrets: unrelated,
        rssAfter5sMB,
        rssMB,
        peakRssMB: status(pid, "VmHWM"),
        rssAnonMB: status(pid, "RssAnon"),
        rssFileMB: status(pid, "RssFile"),
        rssAfterGcMB: heap ? vmRss(pid) : null,
        heapUsedAfterGcMB: heap ? Math.round(Number(heap.usedSize) / 1024 / 1024 * 10) / 10 : null,
        heapTotalMB: heap ? Math.round(Number(heap.totalSize) / 1024 / 1024 * 10) / 10 : null,
        operatorCpuSeconds: cpuSeconds(pid),
      };
      say(
        `memory at ${bindings} Bindings: ${point.rssMB} MB resident, ${point.heapUsedAfterGcMB} MB heap after GC`,
      );
      points.push(point);
      // BENCH_MEM_SNAPSHOT=<dir>: a heap snapshot at every point, to see what the heap holds.
      const dir = Deno.env.get("BENCH_MEM_SNAPSHOT");
      if (dir && inspect) await inspect.snapshot(`${dir}/operator-${bindings}.heapsnapshot`);
      if (dir) await Deno.copyFile(`/proc/${pid}/smaps`, `${dir}/operator-${bindings}.smaps`);
    };
    await measure(0);
    // BENCH_MEM_PROFILE=<file.cpuprofile>: the operator's CPU and sampled allocation profiles while it takes
    // the last step.
    const profilePath = Deno.env.get("BENCH_MEM_PROFILE");
    for (const [from, to] of [[0, 1000], [1000, 5000]] as const) {
      if (to > max) break;
      const profiling = inspect && profilePath && (to === max || (to === 1000 && max < 5000));
      if (profiling) {
        await inspect.call("Profiler.enable");
        await inspect.call("Profiler.start");
        await inspect.call("HeapProfiler.startSampling", {
          includeObjectsCollectedByMajorGC: true,
          includeObjectsCollectedByMinorGC: true,
        });
      }
      await createBindings(ns, from, to, standin.url, (i) => ({
        RESTIC_REPOSITORY: `rest:https://rest.example/mem/${i}`,
        RESTIC_PASSWORD: `pw-${i}`,
        AWS_ACCESS_KEY_ID: `AKIA${i}`,
      }));
      await waitUntil(`stand-in holds ${to} repos`, () => Promise.resolve(standin.repos.size >= to), {
        proc,
        timeoutMs: 300_000,
        intervalMs: 200,
      });
      await waitUntil(`${to} Bindings Ready`, async () => (await readyCount(ns)) === to, {
        proc,
        timeoutMs: 300_000,
        intervalMs: 2000,
      });
      if (profiling) {
        const { profile } = await inspect.call("Profiler.stop");
        await Deno.writeTextFile(profilePath, JSON.stringify(profile));
        // Where the operator allocated meanwhile (sampled), beside it as <file>.heapprofile.
        const sampled = await inspect.call("HeapProfiler.stopSampling");
        await Deno.writeTextFile(
          profilePath.replace(/\.cpuprofile$/, "") + ".heapprofile",
          JSON.stringify(sampled.profile),
        );
      }
      await measure(to);
    }
    inspect?.close();
    const at = (n: number) => points.find((p) => p.bindings === n) as { rssMB: number } | undefined;
    const top = at(5000) ?? at(1000);
    return {
      scenario: "memory",
      backrest: "stand-in (tests/harness/backrest_standin.ts), served by the bench process",
      params: {
        maxBindings: max,
        issueMaxBindings: 5000,
        unrelatedSecrets: unrelated,
        mode: `separate process: deno run ${taskFlags("run").join(" ")} main.ts with the image's ENV (${
          Object.keys(imageEnv()).join(", ")
        }), in-cluster (ServiceAccount token), inspector ${withInspector ? "on" : "off"}`,
      },
      results: { points, standinRequests: { ...standin.calls } },
      targets: {
        rssAtMax: {
          target: "<= 100 MB at 5 000 Bindings",
          measured: top?.rssMB ?? null,
          pass: at(5000) ? at(5000)!.rssMB <= 100 : null,
        },
      },
      notes: [
        "RSS includes the V8 inspector server (needed for the forced GC), a few MB",
        ...(max < 5000
          ? [`measured up to ${max} Bindings; 5 000 left out (time budget); target not evaluated`]
          : []),
      ],
    };
  } finally {
    await op.stop();
    await standin.stop();
  }
}
