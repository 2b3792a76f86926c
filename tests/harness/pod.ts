/**
 * What a kubelet makes of the operator's pod template, for tests that run what the chart installed: the
 * container's args with `$(VAR)` references expanded from its env, its env with the downward API's fields
 * filled in, the ports its probes use. Two ways to run it: as a local process (`runPodAsProcess`, the
 * `deno run` of the run task, reaching the cluster through $KUBECONFIG) and, in tests/harness/container.ts,
 * as a container under runc.
 * Rules: only what the operator's chart renders is understood (plain values and `fieldRef` to the pod's
 * namespace or name); anything else throws instead of being guessed.
 */
import { isRecord } from "../../lib/json.ts";
import type { ControlPlane } from "./control_plane.ts";
import { imageEnv, type OperatorProcess, startOperatorProcess, taskFlags } from "./operator_process.ts";
import { waitUntil } from "./process.ts";

/** The parts of a container spec the tests use. */
export interface ContainerSpec {
  name: string;
  image: string;
  args: string[];
  env: { name: string; value?: string; fieldPath?: string }[];
  ports: Record<string, number>;
  readinessPath: string;
  readinessPort: number;
  livenessPath: string;
  livenessPort: number;
}

/** The pod template of a Deployment as the apiserver stored it. */
export interface PodTemplate {
  spec: Record<string, unknown>;
  container: ContainerSpec;
}

function get(v: unknown, path: string): unknown {
  let cur = v;
  for (const k of path.split(".")) {
    cur = isRecord(cur) ? cur[k] : Array.isArray(cur) ? cur[Number(k)] : undefined;
  }
  return cur;
}

function probePort(c: Record<string, string | number>, ports: Record<string, number>): number {
  const p = c.port;
  if (typeof p === "number") return p;
  const n = ports[String(p)];
  if (n === undefined) throw new Error(`probe port ${String(p)} is not a container port`);
  return n;
}

/** Reads the first container of a Deployment's pod template. */
export function podTemplate(deployment: unknown): PodTemplate {
  const spec = get(deployment, "spec.template.spec");
  if (!isRecord(spec)) throw new Error("no pod template");
  const c = get(spec, "containers.0");
  if (!isRecord(c)) throw new Error("no container");
  const ports: Record<string, number> = {};
  for (const p of Array.isArray(c.ports) ? c.ports : []) {
    if (isRecord(p) && typeof p.name === "string" && typeof p.containerPort === "number") {
      ports[p.name] = p.containerPort;
    }
  }
  const env = (Array.isArray(c.env) ? c.env : []).filter(isRecord).map((e) => {
    const fieldPath = get(e, "valueFrom.fieldRef.fieldPath");
    if (e.valueFrom !== undefined && typeof fieldPath !== "string") {
      throw new Error(`env ${String(e.name)}: only fieldRef is understood here`);
    }
    return {
      name: String(e.name),
      ...(typeof e.value === "string" ? { value: e.value } : {}),
      ...(typeof fieldPath === "string" ? { fieldPath } : {}),
    };
  });
  const probe = (kind: string) => {
    const h = get(c, `${kind}.httpGet`);
    if (!isRecord(h)) throw new Error(`no ${kind} httpGet`);
    return { path: String(h.path), port: probePort(h as Record<string, string | number>, ports) };
  };
  const readiness = probe("readinessProbe");
  const liveness = probe("livenessProbe");
  return {
    spec,
    container: {
      name: String(c.name),
      image: String(c.image),
      args: (Array.isArray(c.args) ? c.args : []).map(String),
      env,
      ports,
      readinessPath: readiness.path,
      readinessPort: readiness.port,
      livenessPath: liveness.path,
      livenessPort: liveness.port,
    },
  };
}

/** The container's variables as the kubelet sets them for a pod with this name and namespace. */
export function containerEnv(
  c: ContainerSpec,
  pod: { name: string; namespace: string },
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const e of c.env) {
    if (e.fieldPath === "metadata.namespace") env[e.name] = pod.namespace;
    else if (e.fieldPath === "metadata.name") env[e.name] = pod.name;
    else if (e.fieldPath !== undefined) {
      throw new Error(`env ${e.name}: fieldPath ${e.fieldPath} is not understood`);
    } else env[e.name] = expand(e.value ?? "", env);
  }
  return env;
}

/** Kubernetes' `$(VAR)` expansion: a known variable is replaced, `$$` is a literal `$`, the rest stays. */
export function expand(text: string, env: Record<string, string>): string {
  return text.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (m, name?: string) => {
    if (m === "$$") return "$";
    return name !== undefined && name in env ? env[name]! : m;
  });
}

/** The container's args with its env expanded, as the kubelet passes them. */
export function containerArgs(c: ContainerSpec, env: Record<string, string>): string[] {
  return c.args.map((a) => expand(a, env));
}

export interface RunningPod {
  readonly process: OperatorProcess;
  /** `http://127.0.0.1:<port>` of the readiness probe's port. */
  readonly probeUrl: string;
  ready(): Promise<boolean>;
}

/**
 * Runs the pod's container as a local process: `deno run` with the run task's flags (those the compiled
 * binary carries), the image's ENV, the container's env and args as the kubelet makes them, and the
 * cluster reached through $KUBECONFIG (a ServiceAccount token's kubeconfig) instead of the service-account
 * mount, which belongs to one test file (tests/e2e_incluster_test.ts). Waits for the readiness probe.
 */
export async function runPodAsProcess(
  cp: ControlPlane,
  template: PodTemplate,
  pod: { name: string; namespace: string; serviceAccount: string },
): Promise<RunningPod> {
  const token = await cp.serviceAccountToken(pod.namespace, pod.serviceAccount);
  const kubeconfig = await cp.kubeconfigForToken(token, `${pod.namespace}-${pod.serviceAccount}`);
  const env = containerEnv(template.container, pod);
  const c = template.container;
  const process = await startOperatorProcess({
    name: `pod-${pod.name}`,
    flags: taskFlags("run"),
    args: containerArgs(c, env),
    env: { ...imageEnv(), ...env, KUBECONFIG: kubeconfig },
    waitReady: false,
  });
  const probeUrl = `http://127.0.0.1:${c.readinessPort}`;
  const ready = async () => {
    try {
      const res = await fetch(`${probeUrl}${c.readinessPath}`);
      await res.body?.cancel();
      return res.status === 200;
    } catch {
      return false;
    }
  };
  await waitUntil(`${pod.name} ${c.readinessPath}`, ready, { proc: process.proc, timeoutMs: 60_000 });
  return { process, probeUrl, ready };
}
