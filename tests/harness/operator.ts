/**
 * The operator under test, in-process on the real control plane: our CRDs installed once per process,
 * `createOperator()` wired exactly as `main.ts` wires it (no leader election unless asked), every log
 * line captured for assertions (and canary checks), metrics in a registry the test can render.
 * Plus fixture builders for the objects tests create: Secrets, VolSync objects, Bindings.
 */
import { type Connection, createClient, type KubeClient, kubeconfigConnection } from "../../lib/kube/mod.ts";
import { createLogger, createRuntimeMetrics, type RuntimeMetrics } from "../../lib/observe/mod.ts";
import type { BackrestApi, BackrestConnection, StatusHasher } from "../../lib/backrest/mod.ts";
import { createOperator, type Operator } from "../../lib/reconcile/mod.ts";
import { type ControlPlane, controlPlane } from "./control_plane.ts";
import { type BackrestInstance, type BackrestOptions, startBackrest } from "./backrest.ts";
import { countingKube, type RecordedWrite } from "./kube_counts.ts";
import { type Proc, waitUntil } from "./process.ts";

const CRD_FILES = [
  "backrest.garethgeorge.com_backrestvolsyncbindings.yaml",
  "backrest.garethgeorge.com_backrestvolsyncoperatorconfigs.yaml",
];

let installed: Promise<ControlPlane> | undefined;

/** The control plane with our CRDs (from manifests/crds/) installed. */
export function cluster(): Promise<ControlPlane> {
  installed ??= (async () => {
    const cp = await controlPlane();
    for (const file of CRD_FILES) {
      await cp.apply(await Deno.readTextFile(new URL(`../../manifests/crds/${file}`, import.meta.url)));
    }
    return cp;
  })();
  return installed;
}

export type { RecordedWrite };

export interface RunningOperator {
  readonly operator: Operator;
  readonly kube: KubeClient;
  /** Every write so far, in order. */
  readonly writes: RecordedWrite[];
  /** Every write and every `get` so far, in order. */
  readonly calls: RecordedWrite[];
  /** Every log line so far (JSON lines, debug level). */
  readonly logs: string[];
  readonly metrics: RuntimeMetrics;
  /** Whether the manager has stopped on its own (with leader election: it lost its Lease). */
  ended(): boolean;
  stop(): Promise<void>;
}

export interface StartOptions {
  /** Namespaces to watch (default: all). */
  namespaces?: string[];
  /** Where the OperatorConfig lives (default: a fresh namespace). */
  configNamespace?: string;
  configName?: string;
  /** A Backrest stand-in, for unit-scale tests only. */
  backrest?: (connection: BackrestConnection) => BackrestApi;
  backrestTimeoutMs?: number;
  /** A kubeconfig other than the admin one (e.g. a ServiceAccount token). */
  kubeconfigPath?: string;
  resyncMs?: number;
  /** How status hashes are made (default: the operator's keyed hashes; `stretchedHasher()` as before keys). */
  statusHasher?: StatusHasher;
  /**
   * Whether to create the baseline OperatorConfig (loopback storage admitted) when none exists in the
   * config namespace (default true; false: the operator starts on whatever is there, or the defaults).
   */
  baselineConfig?: boolean;
  /** Run as one replica of several: elect a leader through a Lease in the config namespace (main.ts's). */
  leaderElection?: { identity: string };
}

/** One operator and one real Backrest serving a whole test file; each test works in a namespace of its own. */
export interface SharedOperator {
  op: RunningOperator;
  backrest: BackrestInstance;
  /** The namespace of the OperatorConfig (and of `configObjects`). */
  configNs: string;
}

/**
 * A file's shared operator and Backrest, started together on the first call and reused by every later one:
 * `const env = sharedOperator({...})` at the top, `const { op, backrest } = await env()` in each test.
 * `configObjects` (an auth Secret, say) are created in the config namespace before the operator starts.
 */
export function sharedOperator(o: {
  operator?: Omit<StartOptions, "configNamespace">;
  backrest?: BackrestOptions;
  configObjects?: Record<string, unknown>[];
} = {}): () => Promise<SharedOperator> {
  let shared: Promise<SharedOperator> | undefined;
  return () =>
    shared ??= (async () => {
      const cp = await cluster();
      const configNs = await cp.namespace("cfg");
      await create(configNs, ...o.configObjects ?? []);
      const [op, backrest] = await Promise.all([
        startOperator({ ...o.operator, configNamespace: configNs }),
        startBackrest(o.backrest),
      ]);
      return { op, backrest, configNs };
    })();
}

/** The OperatorConfig's name the tests use (the operator's default). */
export const CONFIG_NAME = "backrest-volsync-operator";

/**
 * `spec` for an OperatorConfig of the tests: the test repositories live on a rest-server on loopback, which
 * the operator refuses by default (a repository on Backrest's own pod), so every test config admits local
 * addresses, as an admin who hosts repositories there would, unless the spec says otherwise.
 */
export function operatorConfigSpec(spec: Record<string, unknown> = {}): Record<string, unknown> {
  const policy = (spec.repositoryPolicy ?? {}) as Record<string, unknown>;
  return { ...spec, repositoryPolicy: { allowLocalAddresses: true, ...policy } };
}

/**
 * Creates or replaces the OperatorConfig `name` in `ns` with {@linkcode operatorConfigSpec}(`spec`); returns
 * the generation written. `{}` is the tests' baseline: the defaults, with loopback storage admitted.
 */
export async function putOperatorConfig(
  ns: string,
  spec: Record<string, unknown> = {},
  name = CONFIG_NAME,
): Promise<number> {
  const cp = await cluster();
  const path = `${BINDINGS}/namespaces/${ns}/backrestvolsyncoperatorconfigs/${name}`;
  const res = await cp.api("GET", path);
  const body = {
    apiVersion: "backrest.garethgeorge.com/v1alpha1",
    kind: "BackrestVolSyncOperatorConfig",
    metadata: { name },
    spec: operatorConfigSpec(spec),
  };
  if (res.status === 404) {
    await res.body?.cancel();
    const made = await cp.json(
      "POST",
      `${BINDINGS}/namespaces/${ns}/backrestvolsyncoperatorconfigs`,
      body,
    ) as {
      metadata: { generation: number };
    };
    return made.metadata.generation;
  }
  const current = await res.json() as Record<string, unknown>;
  const put = await cp.json("PUT", path, { ...current, spec: body.spec }) as {
    metadata: { generation: number };
  };
  return put.metadata.generation;
}

/** Creates the baseline OperatorConfig in `ns` unless one named `name` exists there. */
export async function ensureOperatorConfig(ns: string, name = CONFIG_NAME): Promise<void> {
  const cp = await cluster();
  const res = await cp.api("GET", `${BINDINGS}/namespaces/${ns}/backrestvolsyncoperatorconfigs/${name}`);
  await res.body?.cancel();
  if (res.status === 404) await putOperatorConfig(ns, {}, name);
}

/** Waits until the Binding `ns/name` is gone from the apiserver (its finalizers done). */
export async function waitForBindingGone(ns: string, name: string, timeoutMs = 30_000): Promise<void> {
  const cp = await cluster();
  await waitUntil(`Binding ${ns}/${name} gone`, async () => {
    const r = await cp.api("GET", `${BINDINGS}/namespaces/${ns}/backrestvolsyncbindings/${name}`);
    await r.body?.cancel();
    return r.status === 404;
  }, { timeoutMs });
}

/** Deletes the Binding `ns/name` and waits until it is gone. */
export async function deleteBinding(ns: string, name: string, timeoutMs = 30_000): Promise<void> {
  const cp = await cluster();
  await cp.api("DELETE", `${BINDINGS}/namespaces/${ns}/backrestvolsyncbindings/${name}`)
    .then((r) => r.body?.cancel());
  await waitForBindingGone(ns, name, timeoutMs);
}

/** Merge-patches the Binding `ns/name` (or, given `subresource`, that subresource of it) with `patch`. */
export async function patchBinding(
  ns: string,
  name: string,
  patch: Record<string, unknown>,
  subresource?: "status",
): Promise<void> {
  const cp = await cluster();
  const path = `${BINDINGS}/namespaces/${ns}/backrestvolsyncbindings/${name}${
    subresource ? `/${subresource}` : ""
  }`;
  await cp.json("PATCH", path, patch, { "content-type": "application/merge-patch+json" });
}

/** Replaces the Secret `ns/name` with one holding `data`, as a rotation does. */
export async function replaceSecret(ns: string, name: string, data: Record<string, string>): Promise<void> {
  const cp = await cluster();
  await cp.json("PUT", `/api/v1/namespaces/${ns}/secrets/${name}`, secret(name, data));
}

/** Creates each object in namespace `ns`; one that exists already is left as it is. */
export async function create(ns: string, ...objs: Record<string, unknown>[]): Promise<void> {
  const cp = await cluster();
  for (const obj of objs) await cp.apply(JSON.stringify(obj), ns);
}

/** Starts the operator in-process and waits for its caches. */
export async function startOperator(opts: StartOptions = {}): Promise<RunningOperator> {
  const cp = await cluster();
  // Right after the CRDs are installed their storage answers 429 for a moment; an operator started then
  // retries its watches and relists a second later, which re-queues keys in the middle of a test that
  // counts writes. Start it once every resource it watches can be listed.
  await waitUntil("custom resources listable", async () => {
    for (
      const path of [
        `${BINDINGS}/backrestvolsyncbindings`,
        `${BINDINGS}/backrestvolsyncoperatorconfigs`,
        "/apis/volsync.backube/v1alpha1/replicationsources",
        "/apis/volsync.backube/v1alpha1/replicationdestinations",
      ]
    ) {
      try {
        await cp.json("GET", `${path}?limit=1`);
      } catch {
        return false;
      }
    }
    return true;
  }, { timeoutMs: 30_000, intervalMs: 100 });
  const configNamespace = opts.configNamespace ?? await cp.namespace("opcfg");
  const configName = opts.configName ?? CONFIG_NAME;
  if (opts.baselineConfig ?? true) await ensureOperatorConfig(configNamespace, configName);
  const connection: Connection = await kubeconfigConnection({
    path: opts.kubeconfigPath ?? cp.kubeconfigPath,
  });
  // Every write the operator makes is recorded, so tests can count them.
  const { kube, writes, calls } = countingKube(createClient(connection));
  const logs: string[] = [];
  const logger = createLogger({ level: "debug", format: "json", write: (line) => logs.push(line) });
  const metrics = createRuntimeMetrics();
  const operator = createOperator({
    kube,
    namespaces: opts.namespaces ?? [],
    configNamespace,
    configName,
    concurrency: 4,
    logger,
    metrics,
    ...(opts.backrest ? { backrest: opts.backrest } : {}),
    ...(opts.backrestTimeoutMs ? { backrestTimeoutMs: opts.backrestTimeoutMs } : {}),
    ...(opts.resyncMs ? { resyncMs: opts.resyncMs } : {}),
    ...(opts.statusHasher ? { statusHasher: opts.statusHasher } : {}),
    ...(opts.leaderElection
      ? {
        leaderElection: {
          namespace: configNamespace,
          name: "backrest-volsync-operator.backrest.garethgeorge.com",
          identity: opts.leaderElection.identity,
        },
      }
      : {}),
  });
  const stop = new AbortController();
  const running = operator.manager.start(stop.signal);
  let failed: unknown;
  let ended = false;
  running.catch((e) => failed = e).finally(() => ended = true);
  await waitUntil("operator caches synced", () => {
    if (failed) throw failed;
    return Promise.resolve(operator.manager.ready());
  }, { timeoutMs: 30_000, intervalMs: 20 }).catch((e) => {
    stop.abort();
    throw new Error(`${(e as Error).message}; operator log tail:\n${logs.slice(-15).join("\n")}`);
  });
  return {
    operator,
    kube,
    writes,
    calls,
    logs,
    metrics,
    ended: () => ended,
    async stop() {
      stop.abort();
      await running.catch(() => {});
      connection.close();
    },
  };
}

/** A Secret manifest with string data. */
export function secret(name: string, data: Record<string, string>): Record<string, unknown> {
  return { apiVersion: "v1", kind: "Secret", metadata: { name }, stringData: data };
}

/** A VolSync ReplicationSource (restic mover) that VolSync's real schema accepts. */
export function replicationSource(
  name: string,
  repository: string | undefined,
  extra: { annotations?: Record<string, string>; customCA?: boolean; rsync?: boolean } = {},
): Record<string, unknown> {
  const mover = extra.rsync ? { rsync: { sshKeys: "keys" } } : {
    restic: {
      ...(repository ? { repository } : {}),
      copyMethod: "Clone",
      ...(extra.customCA ? { customCA: { secretName: "ca", key: "ca.crt" } } : {}),
    },
  };
  return {
    apiVersion: "volsync.backube/v1alpha1",
    kind: "ReplicationSource",
    metadata: { name, ...(extra.annotations ? { annotations: extra.annotations } : {}) },
    spec: { sourcePVC: "data", trigger: { schedule: "0 * * * *" }, ...mover },
  };
}

/** A VolSync ReplicationDestination (restic mover). */
export function replicationDestination(name: string, repository: string): Record<string, unknown> {
  return {
    apiVersion: "volsync.backube/v1alpha1",
    kind: "ReplicationDestination",
    metadata: { name },
    spec: {
      trigger: { manual: "once" },
      restic: { repository, copyMethod: "Snapshot", accessModes: ["ReadWriteOnce"], capacity: "1Gi" },
    },
  };
}

/** A Binding manifest. */
export function binding(
  name: string,
  spec: {
    url: string;
    kind?: string;
    source: string;
    repo?: Record<string, unknown>;
    authRef?: string;
    deletionPolicy?: string;
  },
): Record<string, unknown> {
  return {
    apiVersion: "backrest.garethgeorge.com/v1alpha1",
    kind: "BackrestVolSyncBinding",
    metadata: { name },
    spec: {
      backrest: { url: spec.url, ...(spec.authRef ? { authRef: { name: spec.authRef } } : {}) },
      source: { kind: spec.kind ?? "ReplicationSource", name: spec.source },
      ...(spec.repo ? { repo: spec.repo } : {}),
      ...(spec.deletionPolicy ? { deletionPolicy: spec.deletionPolicy } : {}),
    },
  };
}

export const BINDINGS = "/apis/backrest.garethgeorge.com/v1alpha1";

/** The Binding's Ready condition (or undefined), read from the apiserver. */
export async function readyCondition(
  cp: ControlPlane,
  ns: string,
  name: string,
): Promise<{ status: string; reason: string; message: string } | undefined> {
  const b = await cp.json("GET", `${BINDINGS}/namespaces/${ns}/backrestvolsyncbindings/${name}`) as {
    status?: { conditions?: { type: string; status: string; reason: string; message: string }[] };
  };
  return b.status?.conditions?.find((c) => c.type === "Ready");
}

/**
 * Waits until the Binding's Ready condition has `reason` (and returns it); with `proc` (the operator's
 * process), fails at once, with its log tail, if that exits first.
 */
export async function waitForReason(
  cp: ControlPlane,
  ns: string,
  name: string,
  reason: string,
  timeoutMs = 30_000,
  proc?: Proc,
): Promise<{ status: string; reason: string; message: string }> {
  let last: { status: string; reason: string; message: string } | undefined;
  await waitUntil(`Binding ${ns}/${name} reason ${reason}`, async () => {
    last = await readyCondition(cp, ns, name);
    return last?.reason === reason;
  }, { timeoutMs, intervalMs: 100, ...(proc ? { proc } : {}) }).catch((e) => {
    throw new Error(`${(e as Error).message}; last Ready: ${JSON.stringify(last)}`);
  });
  return last!;
}

/** Waits until the operator's Binding and auto-binding queues stay empty for a few polls in a row. */
export async function settled(op: RunningOperator): Promise<void> {
  const { autoBinding, binding } = op.operator.controllers;
  let calm = 0;
  await waitUntil("operator queues settled", () => {
    const idle = [autoBinding, binding].every((c) => c.queue.length === 0 && c.queue.inFlight === 0);
    calm = idle ? calm + 1 : 0;
    return Promise.resolve(calm >= 4);
  }, { timeoutMs: 20_000, intervalMs: 50 });
}
