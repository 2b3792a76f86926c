/**
 * The operator as a separate process, exactly as shipped: `tools/deno run` with the permission flags of a
 * `deno.json` task (read from the file, so there is one definition), its stdout and stderr kept in one
 * log, `DENO_AUDIT_PERMISSIONS` recording every permission check (granted or refused), and a stop that
 * sends SIGTERM and reports the exit code. Also: installing a service-account mount at the standard path
 * (backed up and restored) for in-cluster runs.
 * Rule: only one test file may use `installServiceAccount` (it owns a machine-wide path).
 */
import { parseAllDocuments } from "yaml";
import type { ControlPlane } from "./control_plane.ts";
import { freePort, type Proc, spawn, tempDir, waitUntil } from "./process.ts";

export const ROOT = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");
export const DENO = `${ROOT}/tools/deno`;
export const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

/**
 * The environment the image sets for the binary: the `ENV` instructions of the Dockerfile's final stage
 * (glibc malloc tuning). Operator processes in tests and benchmarks run with it, so they run as shipped.
 */
export function imageEnv(): Record<string, string> {
  const lines = Deno.readTextFileSync(`${ROOT}/Dockerfile`).replace(/\\\n/g, " ").split("\n");
  const finalFrom = lines.findLastIndex((l) => /^FROM\s/.test(l));
  const env: Record<string, string> = {};
  for (const line of lines.slice(finalFrom)) {
    const m = /^ENV\s+(.*)$/.exec(line.trim());
    if (!m) continue;
    for (const pair of m[1]!.trim().split(/\s+/)) {
      const eq = pair.indexOf("=");
      if (eq <= 0) throw new Error(`Dockerfile ENV must use KEY=value pairs: ${line}`);
      env[pair.slice(0, eq)] = pair.slice(eq + 1);
    }
  }
  return env;
}

/** The `deno run` flags of a task in deno.json (between `deno run` and `main.ts`). */
export function taskFlags(task: "run" | "start" | "compile"): string[] {
  const config = JSON.parse(Deno.readTextFileSync(`${ROOT}/deno.json`)) as {
    tasks: Record<string, { command: string }>;
  };
  const command = config.tasks[task]?.command ?? "";
  const words = command.trim().split(/\s+/);
  const sub = task === "compile" ? "compile" : "run";
  if (words[0] !== "deno" || words[1] !== sub || words.at(-1) !== "main.ts") {
    throw new Error(`deno.json task ${task} is not "deno ${sub} <flags> main.ts": ${command}`);
  }
  return words.slice(2, -1);
}

/** One line of the `DENO_AUDIT_PERMISSIONS` file. */
export interface AuditEntry {
  permission: string;
  value: string | null;
}

export interface OperatorProcess {
  readonly proc: Proc;
  /** `http://127.0.0.1:<port>` of /metrics and of /healthz + /readyz. */
  readonly metricsUrl: string;
  readonly probeUrl: string;
  /** Milliseconds from spawn until /readyz answered 200 (NaN if not waited for). */
  readonly startupMs: number;
  /** Everything the process wrote to stdout and stderr so far. */
  logs(): string;
  /** Every permission check so far. */
  audit(): AuditEntry[];
  /** SIGTERM, wait (SIGKILL after `graceMs`); the exit status. */
  stop(graceMs?: number): Promise<Deno.CommandStatus>;
}

export interface OperatorProcessOptions {
  /** Deno permission flags (e.g. `taskFlags("run")`). */
  flags: string[];
  /** The operator's own flags; metrics and probe addresses are added unless given. */
  args?: string[];
  env?: Record<string, string>;
  /** Wait for /readyz (default true). */
  waitReady?: boolean;
  readyTimeoutMs?: number;
  name?: string;
}

let counter = 0;

/** Starts `tools/deno run <flags> main.ts <args>` in the repository root. */
export async function startOperatorProcess(o: OperatorProcessOptions): Promise<OperatorProcess> {
  const dir = await tempDir("operator-process");
  const name = o.name ?? `operator-${counter++}`;
  const auditPath = `${dir}/${name}.audit.jsonl`;
  const args = [...(o.args ?? [])];
  let metricsUrl = "";
  let probeUrl = "";
  if (!args.some((a) => a.startsWith("--metrics-bind-address"))) {
    const port = freePort();
    args.push(`--metrics-bind-address=127.0.0.1:${port}`);
    metricsUrl = `http://127.0.0.1:${port}`;
  }
  if (!args.some((a) => a.startsWith("--health-probe-bind-address"))) {
    const port = freePort();
    args.push(`--health-probe-bind-address=127.0.0.1:${port}`);
    probeUrl = `http://127.0.0.1:${port}`;
  }
  const started = performance.now();
  const proc = await spawn(name, DENO, {
    args: ["run", ...o.flags, "main.ts", ...args],
    cwd: ROOT,
    logDir: dir,
    env: { NO_COLOR: "1", ...imageEnv(), ...o.env, DENO_AUDIT_PERMISSIONS: auditPath },
  });
  let startupMs = NaN;
  if (o.waitReady ?? true) {
    await waitUntil(`${name} /readyz`, async () => {
      const res = await fetch(`${probeUrl}/readyz`);
      await res.body?.cancel();
      return res.status === 200;
    }, { proc, timeoutMs: o.readyTimeoutMs ?? 60_000, intervalMs: 25 });
    startupMs = performance.now() - started;
  }
  return {
    proc,
    metricsUrl,
    probeUrl,
    startupMs,
    logs: () => {
      try {
        return Deno.readTextFileSync(proc.logPath);
      } catch {
        return "";
      }
    },
    audit: () => {
      let text = "";
      try {
        text = Deno.readTextFileSync(auditPath);
      } catch { /* nothing checked yet */ }
      return text.split("\n").filter((l) => l.trim()).map((l) => {
        const v = JSON.parse(l) as { permission: string; value: string | null };
        return { permission: v.permission, value: v.value };
      });
    },
    async stop(graceMs = 15_000) {
      await proc.stop(graceMs);
      return await proc.exited;
    },
  };
}

/** Runs the program to completion (for --help, bad flags); returns code and output. */
export async function runOperatorOnce(
  flags: string[],
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(DENO, {
    args: ["run", ...flags, "main.ts", ...args],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/**
 * What one use of the binary touches, within the one `operator` permission set of deno.json: files read
 * (an entry ending in `/` covers everything below it), environment variables and `Deno` system
 * information asked for. (Deno 2.9 does not audit starting a program: an exec plugin run shows only in
 * its effect.)
 */
export interface AccessProfile {
  read: string[];
  env: string[];
  sys: string[];
  /**
   * Whether asking for a variable outside the permission set's env list is fine: `ignore` makes it read as
   * unset (a dependency of the kubeconfig loader asks for a few at import).
   */
  ignoredEnvOk?: boolean;
}

/** In a pod: the service-account files, the pod's variables and the hostname; no program. */
export const IN_CLUSTER: AccessProfile = {
  read: [`${SERVICE_ACCOUNT_DIR}/`],
  env: ["KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT", "POD_NAME", "POD_NAMESPACE", "HOSTNAME"],
  sys: ["hostname"],
};

/** The `operator` permission set's lists, read from deno.json (only what the checks below need). */
export function operatorPermissionSet(): { netDeny: string[]; envAllow: string[]; readDeny: string[] } {
  const config: unknown = JSON.parse(Deno.readTextFileSync(`${ROOT}/deno.json`));
  const strings = (v: unknown) => Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];
  const field = (v: unknown, key: string): unknown =>
    typeof v === "object" && v !== null ? Reflect.get(v, key) : undefined;
  const set = field(field(config, "permissions"), "operator");
  return {
    netDeny: strings(field(field(set, "net"), "deny")),
    envAllow: strings(field(field(set, "env"), "allow")),
    readDeny: strings(field(field(set, "read"), "deny")),
  };
}

/**
 * Permission checks beyond what `profile` (default: in a pod) needs, or refused by the `operator`
 * permission set of deno.json, as readable strings. `env` reads of names outside the set are reported
 * too unless the profile says otherwise: `ignore` hides them from the program (they read as unset) but
 * the program still asked.
 */
export function auditViolations(entries: AuditEntry[], profile: AccessProfile = IN_CLUSTER): string[] {
  const set = operatorPermissionSet();
  const under = (v: string, paths: string[]) =>
    paths.some((p) => p.endsWith("/") ? v.startsWith(p) || `${v}/` === p : v === p);
  const out: string[] = [];
  for (const e of entries) {
    const v = e.value ?? "";
    switch (e.permission) {
      case "net":
        if (set.netDeny.some((d) => v === d || v.startsWith(`${d}:`))) out.push(`net ${v}`);
        break;
      case "env":
        if (profile.env.includes(v)) break;
        if (!set.envAllow.includes(v) && profile.ignoredEnvOk) break;
        out.push(`env ${v}`);
        break;
      case "read":
        if (!under(v, profile.read) || under(v, set.readDeny.map((d) => `${d}/`))) out.push(`read ${v}`);
        break;
      case "sys":
        if (!profile.sys.includes(v)) out.push(`sys ${v}`);
        break;
      default:
        out.push(`${e.permission} ${v}`);
    }
  }
  return [...new Set(out)];
}

/**
 * The compile task's flags that `deno run` takes as well, i.e. all but `--output <path>`: exactly what
 * the compiled binary carries.
 */
export function binaryFlags(): string[] {
  const words = taskFlags("compile");
  const out: string[] = [];
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    if (w === "--output" || w === "-o") i++;
    else if (!w.startsWith("--output=")) out.push(w);
  }
  return out;
}

/** Lines of the log that show a refused permission. */
export function permissionErrors(logs: string): string[] {
  return logs.split("\n").filter((l) => /NotCapable|Requires (read|write|net|env|run|sys|ffi)/.test(l));
}

/** Lines of the log that show the apiserver refusing the operator. */
export function forbiddenLines(logs: string): string[] {
  return logs.split("\n").filter((l) => /[Ff]orbidden|HTTP 403|status[":= ]+403\b/.test(l));
}

/**
 * Writes `token`, `ca.crt` and `namespace` at the standard service-account path, moving anything already
 * there aside; the returned function puts it back (also run at exit).
 */
export async function installServiceAccount(files: {
  token: string;
  ca: string;
  namespace: string;
}): Promise<() => Promise<void>> {
  const backup = `${SERVICE_ACCOUNT_DIR}.bvo-backup-${Deno.pid}`;
  let hadOriginal = false;
  try {
    await Deno.lstat(SERVICE_ACCOUNT_DIR);
    await Deno.rename(SERVICE_ACCOUNT_DIR, backup);
    hadOriginal = true;
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  // Parents we create are removed again, so the machine is left as found.
  const created: string[] = [];
  const parts = SERVICE_ACCOUNT_DIR.split("/").filter(Boolean);
  for (let i = 1; i <= parts.length; i++) {
    const p = `/${parts.slice(0, i).join("/")}`;
    try {
      await Deno.stat(p);
    } catch {
      await Deno.mkdir(p);
      created.push(p);
    }
  }
  await Deno.writeTextFile(`${SERVICE_ACCOUNT_DIR}/token`, files.token);
  await Deno.writeTextFile(`${SERVICE_ACCOUNT_DIR}/ca.crt`, files.ca);
  await Deno.writeTextFile(`${SERVICE_ACCOUNT_DIR}/namespace`, files.namespace);
  let restored = false;
  const restoreSync = () => {
    if (restored) return;
    restored = true;
    try {
      Deno.removeSync(SERVICE_ACCOUNT_DIR, { recursive: true });
    } catch { /* gone */ }
    for (const p of created.reverse()) {
      try {
        Deno.removeSync(p);
      } catch { /* not empty or gone */ }
    }
    if (hadOriginal) Deno.renameSync(backup, SERVICE_ACCOUNT_DIR);
  };
  globalThis.addEventListener("unload", restoreSync);
  return () => Promise.resolve(restoreSync());
}

/** One RBAC policy rule. */
export interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}

function rulesOf(file: string, kind: string): PolicyRule[] {
  for (const doc of parseAllDocuments(Deno.readTextFileSync(`${ROOT}/manifests/${file}`))) {
    const obj = doc.toJS() as { kind?: string; rules?: PolicyRule[] } | null;
    if (obj?.kind === kind && obj.rules) return obj.rules;
  }
  throw new Error(`manifests/${file} has no ${kind} with rules`);
}

/** The rules of the shipped ClusterRole (manifests/cluster_role.yaml). */
export function shippedClusterRoleRules(): PolicyRule[] {
  return rulesOf("cluster_role.yaml", "ClusterRole");
}

/** The rules of the shipped Leases Role (manifests/operator/leases_role.yaml): leader election, repo claims. */
export function shippedLeaseRules(): PolicyRule[] {
  return rulesOf("operator/leases_role.yaml", "Role");
}

/**
 * Binds ServiceAccount `namespace/name` to a ClusterRole with `rules` (default: the shipped ones, under a
 * name of its own so tests never share or alter a cluster-wide object) and to the Leases Role in
 * `leaseNamespace` (leader election and the repo id ledger); returns a TokenRequest token for it.
 */
export async function operatorServiceAccount(
  cp: ControlPlane,
  o: {
    namespace: string;
    name?: string;
    leaseNamespace: string;
    rules?: PolicyRule[];
    leaseRules?: PolicyRule[];
  },
): Promise<{ token: string; user: string; clusterRole: string }> {
  const name = o.name ?? "backrest-volsync-operator";
  const clusterRole = `bvo-e2e-${o.namespace}-${name}`;
  const subjects = [{ kind: "ServiceAccount", name, namespace: o.namespace }];
  const rbac = "/apis/rbac.authorization.k8s.io/v1";
  await cp.json("POST", `${rbac}/clusterroles`, {
    metadata: { name: clusterRole },
    rules: o.rules ?? shippedClusterRoleRules(),
  });
  await cp.json("POST", `${rbac}/clusterrolebindings`, {
    metadata: { name: clusterRole },
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: clusterRole },
    subjects,
  });
  const leaseRole = `${name}-leases`;
  await cp.json("POST", `${rbac}/namespaces/${o.leaseNamespace}/roles`, {
    metadata: { name: leaseRole },
    rules: o.leaseRules ?? shippedLeaseRules(),
  });
  await cp.json("POST", `${rbac}/namespaces/${o.leaseNamespace}/rolebindings`, {
    metadata: { name: leaseRole },
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: leaseRole },
    subjects,
  });
  const token = await cp.serviceAccountToken(o.namespace, name);
  return { token, user: `system:serviceaccount:${o.namespace}:${name}`, clusterRole };
}
