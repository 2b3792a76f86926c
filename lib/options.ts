/**
 * Command-line flags -> validated `Options`. Parsing is pure (args and environment in, options or an
 * `OptionsError` out); only `main.ts` prints and exits. Every flag has one spelling, `--name=value` or
 * `--name value`; booleans also take the bare `--name` and `--name=false`.
 */
import { DEFAULT_OPERATOR_CONFIG_NAME } from "./api/mod.ts";
import type { LogFormat, LogLevel } from "./observe/mod.ts";

export interface Options {
  /** Path of a kubeconfig file; absent means in-cluster when running in a pod, else the default file. */
  kubeconfig?: string;
  /** Context of the kubeconfig to use; absent means its current context. */
  context?: string;
  /** Namespaces to watch; empty means every namespace. */
  namespaces: string[];
  operatorConfigName: string;
  /** Absent means the operator's own namespace (in-cluster) or the kubeconfig context's namespace. */
  operatorConfigNamespace?: string;
  /** `host:port`, `:port`, or "0" to disable. */
  metricsBindAddress: string;
  healthProbeBindAddress: string;
  leaderElect: boolean;
  leaderElectionId: string;
  /** Absent means the operator config's namespace. */
  leaderElectionNamespace?: string;
  /** Reconciles that may run at once, per controller. */
  concurrency: number;
  logFormat: LogFormat;
  logLevel: LogLevel;
  help: boolean;
  version: boolean;
}

/** A flag problem, phrased for one line on stderr. */
export class OptionsError extends Error {
  override name = "OptionsError";
}

interface FlagSpec {
  name: string;
  kind: "string" | "bool" | "int" | "list";
  help: string;
  value?: string;
  choices?: readonly string[];
  placeholder?: string;
}

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

export const FLAGS: readonly FlagSpec[] = [
  {
    name: "kubeconfig",
    kind: "string",
    placeholder: "path",
    help:
      "kubeconfig file (default: in-cluster service account inside a pod, else $KUBECONFIG or ~/.kube/config)",
  },
  {
    name: "context",
    kind: "string",
    placeholder: "name",
    help: "kubeconfig context (default: current context)",
  },
  {
    name: "namespace",
    kind: "list",
    placeholder: "ns[,ns...]",
    help: "watch only these namespaces; repeat or comma-separate (default: all namespaces)",
  },
  {
    name: "operator-config-name",
    kind: "string",
    value: DEFAULT_OPERATOR_CONFIG_NAME,
    placeholder: "name",
    help: "name of the BackrestVolSyncOperatorConfig to follow",
  },
  {
    name: "operator-config-namespace",
    kind: "string",
    placeholder: "ns",
    help: "its namespace (default: the operator's own namespace)",
  },
  {
    name: "metrics-bind-address",
    kind: "string",
    value: ":8080",
    placeholder: "addr",
    help: 'address of /metrics; "0" disables it',
  },
  {
    name: "health-probe-bind-address",
    kind: "string",
    value: ":8081",
    placeholder: "addr",
    help: 'address of /healthz and /readyz; "0" disables it',
  },
  {
    name: "leader-elect",
    kind: "bool",
    value: "true",
    help: "elect a leader through a Lease before reconciling",
  },
  {
    name: "leader-election-id",
    kind: "string",
    value: "backrest-volsync-operator.backrest.garethgeorge.com",
    placeholder: "name",
    help: "name of the Lease",
  },
  {
    name: "leader-election-namespace",
    kind: "string",
    placeholder: "ns",
    help: "namespace of the Lease (default: the operator config's namespace)",
  },
  {
    name: "concurrency",
    kind: "int",
    value: "4",
    placeholder: "n",
    help: "reconciles at once per controller (1-64)",
  },
  {
    name: "log-format",
    kind: "string",
    value: "json",
    choices: ["json", "console"],
    placeholder: "fmt",
    help: "json lines or a human console format",
  },
  {
    name: "log-level",
    kind: "string",
    value: "info",
    choices: ["debug", "info", "error"],
    placeholder: "level",
    help: "lowest level logged",
  },
  { name: "help", kind: "bool", value: "false", help: "print this help and exit" },
  { name: "version", kind: "bool", value: "false", help: "print the version and exit" },
];

/** The `--help` text. */
export function usage(): string {
  const lines = ["Usage: backrest-volsync-operator [flags]", "", "Flags:"];
  for (const f of FLAGS) {
    const left = `  --${f.name}${f.kind === "bool" ? "" : `=<${f.placeholder ?? "value"}>`}`;
    const choices = f.choices ? ` (${f.choices.join("|")})` : "";
    const dflt = f.value !== undefined && f.kind !== "bool" ? ` [default ${JSON.stringify(f.value)}]` : "";
    lines.push(`${left.padEnd(40)} ${f.help}${choices}${dflt}`);
  }
  return lines.join("\n");
}

function parseBool(name: string, raw: string): boolean {
  if (raw === "true" || raw === "1") return true;
  if (raw === "false" || raw === "0") return false;
  throw new OptionsError(`--${name}: want true or false, got ${JSON.stringify(raw)}`);
}

function checkAddress(name: string, raw: string): string {
  if (raw === "0") return raw;
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]*):(\d{1,5})$/.exec(raw);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port < 1 || port > 65535) {
    throw new OptionsError(`--${name}: want host:port, :port or 0, got ${JSON.stringify(raw)}`);
  }
  return raw;
}

function checkName(name: string, raw: string, pattern: RegExp, max: number): string {
  if (raw.length > max || !pattern.test(raw)) {
    throw new OptionsError(`--${name}: ${JSON.stringify(raw)} is not a valid Kubernetes name`);
  }
  return raw;
}

/** Parses `args`; throws `OptionsError` on an unknown flag, a missing value or a bad value. */
export function parseOptions(args: readonly string[]): Options {
  const raw = new Map<string, string[]>();
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? "";
    if (!arg.startsWith("--") || arg === "--") {
      throw new OptionsError(`unexpected argument ${JSON.stringify(arg)} (flags start with --; see --help)`);
    }
    const eq = arg.indexOf("=");
    const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
    const spec = FLAGS.find((f) => f.name === name);
    if (!spec) throw new OptionsError(`unknown flag --${name} (see --help)`);
    let value: string;
    if (eq !== -1) value = arg.slice(eq + 1);
    else if (spec.kind === "bool") value = "true";
    else {
      const next = args[i + 1];
      if (next === undefined || next.startsWith("--")) throw new OptionsError(`--${name} needs a value`);
      value = next;
      i++;
    }
    if (spec.choices && !spec.choices.includes(value)) {
      throw new OptionsError(
        `--${name}: want one of ${spec.choices.join(", ")}, got ${JSON.stringify(value)}`,
      );
    }
    if (spec.kind !== "list" && raw.has(name)) throw new OptionsError(`--${name} given twice`);
    raw.set(name, [...(raw.get(name) ?? []), value]);
  }
  const get = (name: string): string | undefined => {
    const v = raw.get(name)?.[0];
    return v ?? FLAGS.find((f) => f.name === name)?.value;
  };
  const str = (name: string): string => get(name) ?? "";

  const namespaces = [
    ...new Set((raw.get("namespace") ?? []).flatMap((v) => v.split(",")).map((s) => s.trim())),
  ]
    .filter((s) => s.length > 0)
    .map((ns) => checkName("namespace", ns, DNS1123_LABEL, 63));

  const concurrencyRaw = str("concurrency");
  const concurrency = /^\d+$/.test(concurrencyRaw) ? Number(concurrencyRaw) : NaN;
  if (!(concurrency >= 1 && concurrency <= 64)) {
    throw new OptionsError(
      `--concurrency: want a whole number from 1 to 64, got ${JSON.stringify(concurrencyRaw)}`,
    );
  }

  const options: Options = {
    namespaces,
    operatorConfigName: checkName(
      "operator-config-name",
      str("operator-config-name"),
      DNS1123_SUBDOMAIN,
      253,
    ),
    metricsBindAddress: checkAddress("metrics-bind-address", str("metrics-bind-address")),
    healthProbeBindAddress: checkAddress("health-probe-bind-address", str("health-probe-bind-address")),
    leaderElect: parseBool("leader-elect", str("leader-elect")),
    leaderElectionId: checkName("leader-election-id", str("leader-election-id"), DNS1123_SUBDOMAIN, 253),
    concurrency,
    logFormat: str("log-format") === "console" ? "console" : "json",
    logLevel: str("log-level") === "debug" ? "debug" : str("log-level") === "error" ? "error" : "info",
    help: parseBool("help", str("help")),
    version: parseBool("version", str("version")),
  };
  const kubeconfig = get("kubeconfig");
  if (kubeconfig !== undefined) {
    if (kubeconfig === "") throw new OptionsError("--kubeconfig: empty path");
    options.kubeconfig = kubeconfig;
  }
  const context = get("context");
  if (context !== undefined) {
    if (context === "") throw new OptionsError("--context: empty name");
    options.context = context;
  }
  const configNs = get("operator-config-namespace");
  if (configNs !== undefined) {
    options.operatorConfigNamespace = checkName("operator-config-namespace", configNs, DNS1123_LABEL, 63);
  }
  const leaseNs = get("leader-election-namespace");
  if (leaseNs !== undefined) {
    options.leaderElectionNamespace = checkName("leader-election-namespace", leaseNs, DNS1123_LABEL, 63);
  }
  return options;
}
