/**
 * hostile: the operator as a separate process (in-cluster mode, the run task's flags, the image's ENV)
 * serving 1 000 Bindings on a healthy Backrest stand-in, first alone, then beside 1 000 Bindings on a
 * black-holed address (a listener that accepts connections and never answers) and one Binding on a server
 * that answers every request with 200 MB. Reported: the time until the healthy 1 000 are all Ready in
 * each run and their ratio (target ≤ 1.5), and the operator's resident memory sampled every 250 ms
 * throughout, against the chart's memory limit. Each run starts a fresh operator on fresh namespaces.
 */
import { startBackrestStandin } from "../../tests/harness/backrest_standin.ts";
import { cluster } from "../../tests/harness/operator.ts";
import { waitUntil } from "../../tests/harness/process.ts";
import { taskFlags } from "../../tests/harness/operator_process.ts";
import {
  cpuSeconds,
  createBindings,
  procStatus,
  readyCount,
  say,
  type ScenarioResult,
  sleep,
  startInClusterOperator,
} from "../common.ts";

/** The chart's default memory limit (charts/backrest-volsync-operator/values.yaml), in MB. */
const CHART_LIMIT_MB = 128 * 1.048576;

/** Accepts TCP connections and never answers, holding them open: a black hole. */
function blackHole(): { url: string; close(): void } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  (async () => {
    try {
      for await (const conn of listener) held.push(conn);
    } catch { /* closed */ }
  })();
  return {
    url: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    close: () => {
      listener.close();
      for (const c of held) {
        try {
          c.close();
        } catch { /* gone */ }
      }
    },
  };
}

/** Passes the version probe as Backrest does, then answers every call with 200 MB, streamed as read. */
function huge(): { url: string; close(): Promise<void> } {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const body = new Uint8Array(await req.arrayBuffer());
    if (body.length === 1 && body[0] === 0xff) {
      return Response.json({ code: "invalid_argument", message: "cannot parse *v1.AddRepoRequest" }, {
        status: 400,
      });
    }
    let sent = 0;
    const chunk = new Uint8Array(256 * 1024).fill(0x5a);
    return new Response(
      new ReadableStream({
        pull(c) {
          if (sent >= 200 * 1024 * 1024) return c.close();
          sent += chunk.length;
          c.enqueue(chunk);
        },
      }, { highWaterMark: 0 }),
      { headers: { "content-type": "application/proto" } },
    );
  });
  return { url: `http://127.0.0.1:${server.addr.port}`, close: () => server.shutdown() };
}

interface Run {
  healthyReadyMs: number;
  peakRssMB: number;
  maxSampledRssMB: number;
  settledRssMB: number;
  operatorCpuSeconds: number;
  deadReasons: Record<string, number>;
  hugeReason: string | undefined;
}

async function run(n: number, hostile: boolean): Promise<Run> {
  const cp = await cluster();
  const configNs = await cp.namespace("bench-hostile-cfg");
  const healthy = await cp.namespace("bench-healthy");
  const dead = await cp.namespace("bench-dead");
  const bad = await cp.namespace("bench-huge");
  const standin = startBackrestStandin();
  const hole = blackHole();
  const big = huge();
  const repo = (tag: string) => (i: number) => ({
    RESTIC_REPOSITORY: `rest:https://rest.example/${tag}/${i}`,
    RESTIC_PASSWORD: `pw-${i}`,
  });
  if (hostile) {
    await createBindings(dead, 0, n, hole.url, repo("dead"));
    await createBindings(bad, 0, 1, big.url, repo("huge"));
  }
  const op = await startInClusterOperator({ namespaces: [healthy, dead, bad], configNamespace: configNs });
  let maxRss = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      maxRss = Math.max(maxRss, procStatus(op.pid));
      await sleep(250);
    }
  })();
  try {
    if (hostile) await sleep(3000); // the hostile Bindings get going first
    const t0 = performance.now();
    await createBindings(healthy, 0, n, standin.url, repo("healthy"));
    await waitUntil(`${n} healthy Bindings Ready`, async () => (await readyCount(healthy)) === n, {
      proc: op.proc,
      timeoutMs: 600_000,
      intervalMs: 250,
    });
    const healthyReadyMs = Math.round(performance.now() - t0);
    await sleep(5000);
    const reasons = async (ns: string) => {
      const list = await cp.json(
        "GET",
        `/apis/backrest.garethgeorge.com/v1alpha1/namespaces/${ns}/backrestvolsyncbindings`,
      ) as {
        items: { status?: { conditions?: { type: string; reason: string }[] } }[];
      };
      const out: Record<string, number> = {};
      for (const b of list.items) {
        const r = b.status?.conditions?.find((c) => c.type === "Ready")?.reason ?? "(none)";
        out[r] = (out[r] ?? 0) + 1;
      }
      return out;
    };
    const deadReasons = hostile ? await reasons(dead) : {};
    const hugeReason = hostile ? Object.keys(await reasons(bad))[0] : undefined;
    return {
      healthyReadyMs,
      peakRssMB: procStatus(op.pid, "VmHWM"),
      maxSampledRssMB: maxRss,
      settledRssMB: procStatus(op.pid),
      operatorCpuSeconds: cpuSeconds(op.pid),
      deadReasons,
      hugeReason,
    };
  } finally {
    sampling = false;
    await sampler;
    await op.stop();
    await standin.stop();
    hole.close();
    await big.close();
  }
}

export async function hostileScenario(
  n = Number(Deno.env.get("BENCH_HOSTILE_N") ?? 1000),
): Promise<ScenarioResult> {
  const alone = await run(n, false);
  say(`hostile: ${n} healthy alone Ready in ${alone.healthyReadyMs} ms, peak ${alone.peakRssMB} MB`);
  const beside = await run(n, true);
  say(
    `hostile: ${n} healthy beside ${n} dead + 1 huge Ready in ${beside.healthyReadyMs} ms, peak ${beside.peakRssMB} MB`,
  );
  const ratio = Math.round(beside.healthyReadyMs / alone.healthyReadyMs * 100) / 100;
  return {
    scenario: "hostile",
    backrest: "stand-in (healthy), a black-holed listener, a server answering 200 MB",
    params: {
      healthy: n,
      blackHoled: n,
      huge: 1,
      mode: `separate process: deno run ${taskFlags("run").join(" ")} main.ts, in-cluster, concurrency 4`,
    },
    results: { alone, beside, ratio },
    targets: {
      healthyRatio: { target: "<= 1.5x the time alone", measured: ratio, pass: ratio <= 1.5 },
      memory: {
        target: `peak resident < the chart's limit (128Mi = ${Math.round(CHART_LIMIT_MB)} MB)`,
        measured: beside.peakRssMB,
        pass: beside.peakRssMB < CHART_LIMIT_MB,
      },
    },
  };
}
