/**
 * (b) cold-start: N VolSync ReplicationSources, their Secrets and N Bindings exist BEFORE the operator
 * starts; then the operator starts (in-process, wired as main.ts wires it, concurrency 4) and we measure
 * the time until every Binding is Ready (read from the operator's own Binding informer), the apiserver
 * calls per Binding (a counting Proxy over the KubeClient) and the Backrest calls.
 * N = 100 runs on the real Backrest with real restic repositories; larger N on the stand-in, served by a
 * process of its own (bench/standin_process.ts) so this process's CPU is the operator's and its clients'.
 * Before it, in the same process against the same apiserver and Backrest, the floor (floor.ts): a plain client
 * making the same calls on objects made the same way; the cold start is reported as a ratio to it, in time
 * and in CPU seconds.
 */
import { createResticRepo, startBackrest } from "../../tests/harness/backrest.ts";
import { type StandinProcess, startStandinProcess } from "../standin_process.ts";
import { cluster } from "../../tests/harness/operator.ts";
import { floor } from "./floor.ts";
import {
  type BenchOperator,
  benchOperator,
  controlPlaneCpuSeconds,
  cpuSeconds,
  createBindings,
  isReady,
  parallel,
  round,
  say,
  type ScenarioResult,
  sleep,
} from "../common.ts";

export interface ColdStartRun {
  result: ScenarioResult;
  /** Still running, for the idle scenario; the caller stops both. */
  op: BenchOperator;
  standin?: StandinProcess;
  stopBackrest: () => Promise<void>;
}

export async function coldStart(
  n: number,
  kind: "real" | "standin",
  targetMs?: number,
): Promise<ColdStartRun> {
  const cp = await cluster();
  const ns = await cp.namespace(`bench-cold-${n}`);
  let url: string;
  let standin: StandinProcess | undefined;
  let stopBackrest: () => Promise<void>;
  let repos: { uri: string; password: string }[];
  const prepStart = performance.now();
  if (kind === "real") {
    const backrest = await startBackrest();
    url = backrest.url;
    stopBackrest = () => backrest.stop();
    repos = new Array(n);
    await parallel([...Array(n).keys()], 2, async (i) => {
      repos[i] = await createResticRepo();
    });
  } else {
    standin = await startStandinProcess();
    url = standin.url;
    stopBackrest = () => standin!.stop();
    repos = Array.from(
      { length: n },
      (_, i) => ({ uri: `rest:https://rest.example/bucket/app-${i}`, password: `pw-${i}` }),
    );
  }
  const secretData = (i: number) => ({
    RESTIC_REPOSITORY: repos[i]!.uri,
    RESTIC_PASSWORD: repos[i]!.password,
    AWS_ACCESS_KEY_ID: `AKIA${i}`,
    AWS_SECRET_ACCESS_KEY: `secret-${i}`,
  });
  // The floor's Bindings get a stand-in of their own, so both runs start from an empty Backrest (AddRepo
  // answers with every repo it holds); on the real Backrest they share it (100 more repos).
  const floorNs = await cp.namespace(`bench-floor-${n}`);
  const floorStandin = kind === "standin" ? await startStandinProcess() : undefined;
  const floorUrl = floorStandin?.url ?? url;
  await createBindings(floorNs, 0, n, floorUrl, secretData);
  await createBindings(ns, 0, n, url, secretData);
  const prepMs = performance.now() - prepStart;
  say(
    `cold-start ${n} (${kind}): ${n} x (Secret, ReplicationSource, Binding) created in ${
      Math.round(prepMs)
    } ms`,
  );

  const cpFloor0 = controlPlaneCpuSeconds();
  const floorRun = await floor(floorNs, n, floorUrl);
  const cpFloor = cpDelta(cpFloor0);
  await floorStandin?.stop();
  say(
    `cold-start ${n} (${kind}): floor ${floorRun.ms} ms, ${floorRun.cpuSeconds} CPU s; apiserver ${cpFloor.apiserver}, etcd ${cpFloor.etcd} CPU s`,
  );

  const op = await benchOperator({ namespaces: [ns] });
  const cpOperator0 = controlPlaneCpuSeconds();
  const cpu0 = cpuSeconds();
  const t0 = performance.now();
  await op.start();
  const cachesMs = performance.now() - t0;
  const deadline = t0 + Math.max(120_000, n * 100);
  const ready = await allReady(op, ns, n, deadline);
  const allReadyMs = performance.now() - t0;
  const cpu = cpuSeconds() - cpu0;
  const cpOperator = cpDelta(cpOperator0);
  const complete = ready === n;
  const ratioToFloor = round(allReadyMs / floorRun.ms, 2);
  const cpuRatioToFloor = round(cpu / floorRun.cpuSeconds, 2);
  // On 2 cores the run is bound by all three processes together; their CPU over the floor's is steadier
  // between runs than the time's ratio, which it explains.
  const machineCpu = cpu + cpOperator.apiserver + cpOperator.etcd;
  const floorMachineCpu = floorRun.cpuSeconds + cpFloor.apiserver + cpFloor.etcd;
  const machineCpuRatioToFloor = round(machineCpu / floorMachineCpu, 2);
  // Count what the burst produced (events aggregated, the no-op reconciles after status writes) too.
  await sleep(2000);
  const snap = op.counts.snapshot();
  const bc = op.backrestCalls();
  const storeCalls = standin ? await standin.calls() : undefined;
  say(
    `cold-start ${n} (${kind}): ${ready}/${n} Ready in ${
      Math.round(allReadyMs)
    } ms; ${snap.writes} writes; apiserver ${cpOperator.apiserver}, etcd ${cpOperator.etcd} CPU s; ` +
      `${ratioToFloor}x the floor's time, ${machineCpuRatioToFloor}x its CPU with the control plane's`,
  );
  // The installation's one write that is no Binding's: its status hash key Secret, made on the first start.
  const installWrites = snap.byVerbResource["create:secrets"] ?? 0;
  const writesPerBinding = round((snap.writes - installWrites) / n, 3);
  const result: ScenarioResult = {
    scenario: `cold-start-${n}`,
    backrest: kind === "real"
      ? "real Backrest v1.14.1 + real restic repositories on local disk"
      : "stand-in (tests/harness/backrest_standin.ts) in a process of its own",
    params: { n, concurrency: 4, namespaces: 1, operatorWatches: "the benchmark namespace only" },
    results: {
      prepareMs: Math.round(prepMs),
      cachesSyncedMs: Math.round(cachesMs),
      allReadyMs: Math.round(allReadyMs),
      cpuSeconds: round(cpu, 3),
      cpuSecondsPerBinding: round(cpu / n, 5),
      floor: { ...floorRun, controlPlaneCpuSeconds: cpFloor },
      ratioToFloor,
      // What the apiserver and etcd did meanwhile (CPU seconds), beside the floor's: the same writes, and
      // the operator's watches sending every one of them back.
      controlPlaneCpuSeconds: cpOperator,
      cpuRatioToFloor,
      // The bench process (operator), apiserver and etcd together, beside the floor's three.
      machineCpuSeconds: round(machineCpu, 2),
      floorMachineCpuSeconds: round(floorMachineCpu, 2),
      machineCpuRatioToFloor,
      ready,
      complete,
      apiserver: {
        requests: snap.requests,
        writes: snap.writes,
        requestsPerBinding: round(snap.requests / n, 3),
        writesPerBinding,
        installWrites,
        byVerbResource: snap.byVerbResource,
      },
      // Relists show up here: lists beyond the first, and why (expired, stalls, errors).
      bindingWatchers: Object.fromEntries(op.operator.bindings.stats),
      backrestCalls: bc,
      backrestCallsPerBinding: round(Object.values(bc).reduce((a, b) => a + b, 0) / n, 3),
      ...(storeCalls ? { standinRequests: storeCalls } : {}),
      operatorLogLines: op.logLines(),
    },
    targets: {
      writesPerBinding: { target: "<= 3", measured: writesPerBinding, pass: writesPerBinding <= 3 },
      ...(n >= 1000
        ? {
          ratioToFloor: { target: "<= 1.25", measured: ratioToFloor, pass: complete && ratioToFloor <= 1.25 },
        }
        : {}),
      ...(targetMs
        ? {
          allReady: {
            target: `<= ${targetMs / 1000} s`,
            measured: Math.round(allReadyMs),
            pass: complete && allReadyMs <= targetMs,
          },
        }
        : {}),
    },
  };
  return { result, op, ...(standin ? { standin } : {}), stopBackrest };
}

/**
 * Waits until the Bindings `b-0` to `b-<n-1>` of `ns` are all Ready in the operator's cache, or `deadline`;
 * returns how many are. The poll runs in the operator's process, so it must not cost what it measures:
 * every 100 ms at 1 000 and more (the figure's resolution), 20 ms below, each time looking only at those
 * not yet seen Ready (listing and testing all 5 000 each time took about 2 of the operator's CPU seconds),
 * and once none are left, at all of them again, so the answer is the state at one moment.
 */
async function allReady(op: BenchOperator, ns: string, n: number, deadline: number): Promise<number> {
  const store = op.operator.bindings.store;
  const pending = new Set(Array.from({ length: n }, (_, i) => `b-${i}`));
  while (performance.now() < deadline) {
    for (const name of pending) {
      const b = store.getByName(ns, name);
      if (b && isReady(b)) pending.delete(name);
    }
    if (pending.size === 0) {
      for (let i = 0; i < n; i++) {
        const b = store.getByName(ns, `b-${i}`);
        if (!b || !isReady(b)) pending.add(`b-${i}`);
      }
      if (pending.size === 0) return n;
    }
    await sleep(n >= 1000 ? 100 : 20);
  }
  return n - pending.size;
}

/** The control plane's CPU seconds since `before`, by process. */
function cpDelta(before: { apiserver: number; etcd: number }): { apiserver: number; etcd: number } {
  const now = controlPlaneCpuSeconds();
  return { apiserver: round(now.apiserver - before.apiserver, 2), etcd: round(now.etcd - before.etcd, 2) };
}
