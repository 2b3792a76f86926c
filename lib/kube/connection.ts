/**
 * How the client reaches the apiserver: a base URL, a `Deno.HttpClient` carrying the CA and any client
 * certificate, and the headers (bearer token) for the next request.
 *
 * Rules: in-cluster mode reads the service-account files directly and never loads
 * `@kubernetes/client-node` (its import needs wide env access); the token file is re-read periodically
 * because the kubelet rotates it. Kubeconfig mode imports that package lazily, only to read the file, and
 * refreshes credentials when they age or the apiserver answers 401. Exec credential plugins are run here,
 * not by that package: the operator's permission set hides all but a few environment variables from the
 * program, and a plugin must see the user's whole environment (`AWS_PROFILE`, `PATH`, ...), which a
 * `Deno.Command` inherits and the package's `child_process` call would not. Nothing a plugin prints is
 * ever logged: its stdout carries the credential, its stderr goes to ours (a login prompt must reach the
 * user, as with kubectl).
 * Connections use HTTP/1.1 by default: each watch then owns its TCP connection, so aborting a stalled
 * watch drops exactly that connection (an HTTP/2 connection would be shared and stay stalled).
 */

import type { RequestOptions } from "node:https";
import { isRecord } from "../json.ts";

/** What one request needs: the TLS-configured HTTP client and the auth headers. */
export interface PreparedRequest {
  /** Pass as `fetch`'s `client`: it carries the CA and any client certificate. */
  client: Deno.HttpClient;
  /** Headers to add: `authorization` (Bearer or Basic) when the credentials need one, else none. */
  headers: Record<string, string>;
}

/** A configured way to the apiserver. */
export interface Connection {
  /** Base URL, e.g. `https://10.0.0.1:443` (no trailing slash). */
  readonly server: string;
  /** Namespace of the current context or the pod (may be undefined). */
  readonly namespace: string | undefined;
  /**
   * Whether credentials come from a program the kubeconfig names (an exec plugin, or an auth provider's
   * `cmd-path`): the only reason the operator ever starts a program.
   */
  readonly runsPrograms: boolean;
  /** Client and headers for the next request (credentials refreshed when due). */
  prepare(): Promise<PreparedRequest>;
  /** Forgets cached credentials (after a 401) so the next `prepare()` reloads them. */
  invalidate(): void;
  /** Closes the HTTP client. */
  close(): void;
}

/** Options shared by every connection kind. */
export interface ConnectionOptions {
  /** Allow HTTP/2 (default false; see the module rules). */
  http2?: boolean | undefined;
  /** Clock for credential refresh (ms). */
  now?: (() => number) | undefined;
}

/** Options of {@linkcode kubeconfigConnection}. */
export interface KubeconfigOptions extends ConnectionOptions {
  /** Kubeconfig file; defaults to `$KUBECONFIG` or `~/.kube/config`. */
  path?: string | undefined;
  /** Context name; defaults to the current context. */
  context?: string | undefined;
  /** How long loaded credentials are reused (default 60 s; exec plugins cache tokens themselves too). */
  refreshMs?: number | undefined;
}

/** Options of {@linkcode inClusterConnection}. */
export interface InClusterOptions extends ConnectionOptions {
  /** Directory with `token`, `ca.crt` and `namespace` (default the standard service-account mount). */
  dir?: string | undefined;
  /** `KUBERNETES_SERVICE_HOST` (default from the environment). */
  host?: string | undefined;
  /** `KUBERNETES_SERVICE_PORT` (default from the environment). */
  port?: string | undefined;
  /** How often the token file is re-read (default 60 s, like client-go). */
  tokenRefreshMs?: number | undefined;
}

/** The standard service-account mount. */
export const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

function httpClient(
  ca: string | undefined,
  cert: string | undefined,
  key: string | undefined,
  http2: boolean,
) {
  const base: Deno.CreateHttpClientOptions = { http1: true, http2 };
  if (ca) base.caCerts = [ca];
  return cert && key ? Deno.createHttpClient({ ...base, cert, key }) : Deno.createHttpClient(base);
}

function envOrUndefined(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined; // env access not granted: treat as unset
  }
}

/** Whether the process runs in a pod (the service env variables are set). */
export function inClusterAvailable(): boolean {
  return Boolean(envOrUndefined("KUBERNETES_SERVICE_HOST") && envOrUndefined("KUBERNETES_SERVICE_PORT"));
}

/** A connection from the pod's service account. */
export async function inClusterConnection(options: InClusterOptions = {}): Promise<Connection> {
  const dir = options.dir ?? SERVICE_ACCOUNT_DIR;
  const host = options.host ?? envOrUndefined("KUBERNETES_SERVICE_HOST");
  const port = options.port ?? envOrUndefined("KUBERNETES_SERVICE_PORT");
  if (!host || !port) {
    throw new Error(
      "Not running in a cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are unset",
    );
  }
  const now = options.now ?? Date.now;
  const refreshMs = options.tokenRefreshMs ?? 60_000;
  const readToken = async () => {
    try {
      return (await Deno.readTextFile(`${dir}/token`)).trim();
    } catch (e) {
      throw new Error(`Cannot read the service-account token in ${dir}`, { cause: e });
    }
  };
  let ca: string;
  try {
    ca = await Deno.readTextFile(`${dir}/ca.crt`);
  } catch (e) {
    throw new Error(`Cannot read the service-account CA in ${dir}`, { cause: e });
  }
  let namespace: string | undefined;
  try {
    namespace = (await Deno.readTextFile(`${dir}/namespace`)).trim() || undefined;
  } catch { /* optional */ }
  let token = await readToken();
  let readAt = now();
  const client = httpClient(ca, undefined, undefined, options.http2 ?? false);
  const server = `https://${host.includes(":") ? `[${host}]` : host}:${port}`;
  return {
    server,
    namespace,
    runsPrograms: false,
    async prepare() {
      if (now() - readAt >= refreshMs) {
        token = await readToken();
        readAt = now();
      }
      return { client, headers: { authorization: `Bearer ${token}` } };
    },
    invalidate() {
      readAt = -Infinity;
    },
    close() {
      client.close();
    },
  };
}

function isReadonlyArray(v: unknown): v is readonly unknown[] {
  return Array.isArray(v);
}

function pemText(v: unknown): string | undefined {
  if (typeof v === "string") return v;
  if (v instanceof Uint8Array) return new TextDecoder().decode(v);
  if (Array.isArray(v)) {
    const parts = v.map(pemText).filter((x): x is string => x !== undefined);
    return parts.length ? parts.join("\n") : undefined;
  }
  return undefined;
}

/** A kubeconfig user's `exec` entry: the credential plugin and how to call it. */
interface ExecPlugin {
  command: string;
  args: string[];
  env: Record<string, string>;
  apiVersion: string;
  provideClusterInfo: boolean;
}

/** What a plugin run yielded, and until when it may be reused (ms; Infinity without an expiry). */
interface ExecCredential {
  token: string | undefined;
  cert: string | undefined;
  key: string | undefined;
  expiresAt: number;
}

const EXEC_API_VERSIONS = ["client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1"];

function field(v: unknown, key: string): unknown {
  return isRecord(v) ? v[key] : undefined;
}

function parseExecPlugin(v: unknown): ExecPlugin {
  const bad = (what: string) => new Error(`Kubeconfig exec plugin: ${what}`);
  const command = field(v, "command");
  if (typeof command !== "string" || command === "") throw bad("command is missing");
  const args = field(v, "args") ?? [];
  if (!Array.isArray(args) || !args.every((a) => typeof a === "string")) throw bad("args must be strings");
  const env: Record<string, string> = {};
  const list = field(v, "env") ?? [];
  if (!Array.isArray(list)) throw bad("env must be a list");
  for (const entry of list) {
    const name = field(entry, "name");
    const value = field(entry, "value");
    if (typeof name !== "string" || typeof value !== "string") {
      throw bad("env entries need a name and a value");
    }
    env[name] = value;
  }
  const apiVersion = field(v, "apiVersion");
  if (typeof apiVersion !== "string" || !EXEC_API_VERSIONS.includes(apiVersion)) {
    throw bad(`apiVersion must be one of ${EXEC_API_VERSIONS.join(", ")}`);
  }
  const interactiveMode = field(v, "interactiveMode") ?? "IfAvailable";
  if (typeof interactiveMode !== "string") throw bad("interactiveMode must be a string");
  if (interactiveMode === "Always") {
    throw bad("interactiveMode Always needs a terminal, which the operator has not");
  }
  return {
    command,
    args,
    env,
    apiVersion,
    provideClusterInfo: field(v, "provideClusterInfo") === true,
  };
}

/**
 * Runs the plugin as kubectl does (the client.authentication.k8s.io protocol, never interactive) and
 * reads its ExecCredential. Errors name the plugin and its exit code, never what it printed.
 */
async function runExecPlugin(
  plugin: ExecPlugin,
  cluster: { server: string; caData: string | undefined },
): Promise<ExecCredential> {
  const spec: Record<string, unknown> = { interactive: false };
  if (plugin.provideClusterInfo) {
    spec.cluster = {
      server: cluster.server,
      ...(cluster.caData ? { "certificate-authority-data": cluster.caData } : {}),
    };
  }
  const info = { apiVersion: plugin.apiVersion, kind: "ExecCredential", spec };
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command(plugin.command, {
      args: plugin.args,
      env: { ...plugin.env, KUBERNETES_EXEC_INFO: JSON.stringify(info) },
      stdin: "null",
      stdout: "piped",
      stderr: "inherit",
    }).output();
  } catch (e) {
    throw new Error(`Cannot start the kubeconfig's exec plugin ${plugin.command}`, { cause: e });
  }
  if (!out.success) {
    throw new Error(`The kubeconfig's exec plugin ${plugin.command} exited with code ${out.code}`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(new TextDecoder().decode(out.stdout));
  } catch {
    throw new Error(`The kubeconfig's exec plugin ${plugin.command} printed no JSON`);
  }
  if (field(doc, "kind") !== "ExecCredential" || field(doc, "apiVersion") !== plugin.apiVersion) {
    throw new Error(
      `The kubeconfig's exec plugin ${plugin.command} printed no ExecCredential of ${plugin.apiVersion}`,
    );
  }
  const status = field(doc, "status");
  const text = (k: string) => {
    const v = field(status, k);
    return typeof v === "string" && v !== "" ? v : undefined;
  };
  const token = text("token");
  const cert = text("clientCertificateData");
  const key = text("clientKeyData");
  if (!token && !(cert && key)) {
    throw new Error(
      `The kubeconfig's exec plugin ${plugin.command} gave neither a token nor a client certificate`,
    );
  }
  const expiry = text("expirationTimestamp");
  const expiresAt = expiry === undefined ? Infinity : Date.parse(expiry);
  if (Number.isNaN(expiresAt)) {
    throw new Error(`The kubeconfig's exec plugin ${plugin.command} gave an unreadable expirationTimestamp`);
  }
  return { token, cert, key, expiresAt };
}

/**
 * A connection from a kubeconfig file: current or named context; client certificates, bearer tokens and
 * basic auth as `@kubernetes/client-node` resolves them, exec credential plugins run by us (see the module
 * rules), reused until the credential they gave expires or the apiserver refuses it.
 */
export async function kubeconfigConnection(options: KubeconfigOptions = {}): Promise<Connection> {
  const { KubeConfig } = await import("@kubernetes/client-node");
  const kc = new KubeConfig();
  try {
    if (options.path) kc.loadFromFile(options.path);
    else kc.loadFromDefault();
  } catch (e) {
    throw new Error(`Cannot load kubeconfig ${options.path ?? "(default)"}`, { cause: e });
  }
  if (options.context) {
    if (!kc.getContextObject(options.context)) {
      throw new Error(`Kubeconfig has no context named ${options.context}`);
    }
    kc.setCurrentContext(options.context);
  }
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error("Kubeconfig has no cluster for the current context");
  if (cluster.skipTLSVerify) {
    throw new Error("Kubeconfig cluster sets insecure-skip-tls-verify, which this client does not support");
  }
  const namespace = kc.getContextObject(kc.getCurrentContext())?.namespace;
  const user = kc.getCurrentUser();
  const exec: unknown = user?.exec;
  const plugin = exec ? parseExecPlugin(exec) : undefined;
  if (user && plugin) {
    // The package would run the plugin itself, with our filtered environment: take it off the user.
    kc.users = kc.users.map((u) => u.name === user.name ? { ...u, exec: undefined } : u);
  }
  const providerConfig: unknown = user?.authProvider?.config;
  const runsPrograms = plugin !== undefined ||
    field(providerConfig, "exec") !== undefined || field(providerConfig, "cmd-path") !== undefined;
  let credential: ExecCredential | undefined;
  let running: Promise<ExecCredential> | undefined;
  const execCredential = async (p: ExecPlugin): Promise<ExecCredential> => {
    if (credential && Date.now() < credential.expiresAt) return credential;
    // Informers start together: one plugin run serves them all.
    running ??= runExecPlugin(p, { server: cluster.server, caData: cluster.caData }).finally(() => {
      running = undefined;
    });
    credential = await running;
    return credential;
  };
  const now = options.now ?? Date.now;
  const refreshMs = options.refreshMs ?? 60_000;
  const http2 = options.http2 ?? false;
  let cached: { at: number; tls: string; prepared: PreparedRequest } | undefined;
  const load = async (): Promise<PreparedRequest> => {
    const o: RequestOptions = {};
    try {
      await kc.applyToHTTPSOptions(o);
    } catch (e) {
      throw new Error("Cannot obtain credentials from the kubeconfig", { cause: e });
    }
    const ca = pemText(o.ca);
    let cert = pemText(o.cert);
    let key = pemText(o.key);
    const headers: Record<string, string> = {};
    const h = o.headers;
    const auth = h && !Array.isArray(h) && !isReadonlyArray(h)
      ? (h["Authorization"] ?? h["authorization"])
      : undefined;
    if (typeof auth === "string") headers.authorization = auth;
    else if (typeof o.auth === "string") headers.authorization = `Basic ${btoa(o.auth)}`;
    if (plugin) {
      let c: ExecCredential;
      try {
        c = await execCredential(plugin);
      } catch (e) {
        throw new Error("Cannot obtain credentials from the kubeconfig", { cause: e });
      }
      if (c.token) headers.authorization = `Bearer ${c.token}`;
      if (c.cert && c.key) [cert, key] = [c.cert, c.key];
    }
    const tls = JSON.stringify([ca, cert, key]);
    // A new HTTP client only when the TLS material changed (exec plugins may rotate client certificates).
    let client: Deno.HttpClient;
    if (cached && cached.tls === tls) client = cached.prepared.client;
    else {
      cached?.prepared.client.close();
      client = httpClient(ca, cert, key, http2);
    }
    cached = { at: now(), tls, prepared: { client, headers } };
    return cached.prepared;
  };
  return {
    server: cluster.server.replace(/\/+$/, ""),
    namespace,
    runsPrograms,
    prepare() {
      if (cached && now() - cached.at < refreshMs) return Promise.resolve(cached.prepared);
      return load();
    },
    invalidate() {
      if (cached) cached.at = -Infinity;
      credential = undefined;
    },
    close() {
      cached?.prepared.client.close();
      cached = undefined;
    },
  };
}

/**
 * The usual choice: a kubeconfig when a path or context is given, else in-cluster when running in a
 * pod, else the default kubeconfig.
 */
export function connect(options: KubeconfigOptions & InClusterOptions = {}): Promise<Connection> {
  if (!options.path && !options.context && inClusterAvailable()) return inClusterConnection(options);
  return kubeconfigConnection(options);
}
