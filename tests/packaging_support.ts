/**
 * Shared by the packaging tests (`packaging_*_test.ts`): run the real tools (helm, kubectl kustomize),
 * read their YAML output as plain objects, and have the real apiserver validate those objects with
 * server-side apply and strict field validation, for real or as a dry run.
 */

import assert from "node:assert/strict";
import { parseAllDocuments } from "yaml";
import { isRecord } from "../lib/json.ts";
import { type Options, parseOptions } from "../lib/options.ts";
import type { ControlPlane } from "./harness/control_plane.ts";
import { peer } from "./harness/peers.ts";
import { tempDir } from "./harness/process.ts";

export const ROOT = new URL("../", import.meta.url).pathname.replace(/\/$/, "");
export const CHART = `${ROOT}/charts/backrest-volsync-operator`;

/** A Kubernetes object as read from YAML: nothing about its shape is assumed until checked. */
export type Obj = Record<string, unknown>;

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export async function run(cmd: string, args: string[], env: Record<string, string> = {}): Promise<RunResult> {
  const out = await new Deno.Command(cmd, { args, env, stdout: "piped", stderr: "piped", cwd: ROOT })
    .output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

let helmHome: Promise<string> | undefined;

/** The pinned helm peer, with its cache/config/data dirs in a temp dir (never the user's). */
export async function helm(args: string[]): Promise<RunResult> {
  const bin = (await peer("helm")).path;
  helmHome ??= tempDir("helm");
  const home = await helmHome;
  return run(bin, args, {
    HELM_CACHE_HOME: `${home}/cache`,
    HELM_CONFIG_HOME: `${home}/config`,
    HELM_DATA_HOME: `${home}/data`,
  });
}

let shellBin: Promise<string> | undefined;

/**
 * Runs a script as a user types it into a shell (`bash -e -o pipefail`), in the repository root, with the
 * pinned kubectl and helm first on PATH and helm's dirs in a temp dir.
 */
export async function shell(script: string, env: Record<string, string> = {}): Promise<RunResult> {
  shellBin ??= (async () => {
    const bin = await tempDir("shell-bin");
    await Deno.symlink((await peer("kubectl")).path, `${bin}/kubectl`);
    await Deno.symlink((await peer("helm")).path, `${bin}/helm`);
    return bin;
  })();
  helmHome ??= tempDir("helm");
  const home = await helmHome;
  return run("bash", ["-e", "-o", "pipefail", "-c", script], {
    PATH: `${await shellBin}:${Deno.env.get("PATH") ?? "/usr/bin:/bin"}`,
    HELM_CACHE_HOME: `${home}/cache`,
    HELM_CONFIG_HOME: `${home}/config`,
    HELM_DATA_HOME: `${home}/data`,
    ...env,
  });
}

/**
 * The ```sh blocks of the README section under a `##` or `###` heading (up to the next heading of the same
 * or a higher level), as written.
 */
export async function readmeShell(heading: string): Promise<string[]> {
  const readme = await Deno.readTextFile(`${ROOT}/README.md`);
  const m = new RegExp(`^(#{2,3}) ${heading.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`, "m").exec(readme);
  if (!m) throw new Error(`README has no section ${heading}`);
  const rest = readme.slice(m.index + m[0].length);
  const end = rest.search(new RegExp(`^#{2,${m[1]!.length}} `, "m"));
  const section = end < 0 ? rest : rest.slice(0, end);
  return [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((b) => b[1] ?? "");
}

/** Throws with stderr unless the command succeeded; returns stdout. */
export function ok(what: string, r: RunResult): string {
  if (r.code !== 0) throw new Error(`${what} exited with ${r.code}:\n${r.stderr}\n${r.stdout}`.trimEnd());
  return r.stdout;
}

/** Every non-empty document of a YAML stream. */
export function parseObjects(text: string): Obj[] {
  const objects: Obj[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) throw new Error(`invalid YAML: ${doc.errors[0]?.message}`);
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) continue;
    if (!isObj(value)) throw new Error(`a YAML document is not an object: ${JSON.stringify(value)}`);
    objects.push(value);
  }
  return objects;
}

/** The objects `helm template` renders from `chart` (default: ours) with `args` (release name `bvo`). */
export async function helmTemplate(args: string[] = [], chart = CHART): Promise<Obj[]> {
  return parseObjects(ok("helm template", await helm(["template", "bvo", chart, ...args])));
}

/**
 * `helm install bvo` of our chart into `namespace` of the cluster that `kubeconfig` names, with a `--set` for
 * each of `values` and `extra` arguments (`--create-namespace`, say); returns helm's output, throws if it
 * failed.
 */
export async function helmInstall(
  kubeconfig: string,
  namespace: string,
  values: Record<string, string | number>,
  extra: string[] = [],
): Promise<string> {
  const sets = Object.entries(values).flatMap(([k, v]) => ["--set", `${k}=${v}`]);
  const args = ["install", "bvo", CHART, "--kubeconfig", kubeconfig, "-n", namespace, ...extra, ...sets];
  return ok("helm install", await helm(args));
}

/** `helm uninstall bvo --wait` in `namespace` of the cluster that `kubeconfig` names; throws if it failed. */
export async function helmUninstall(kubeconfig: string, namespace: string): Promise<void> {
  ok(
    "helm uninstall",
    await helm(["uninstall", "bvo", "--kubeconfig", kubeconfig, "-n", namespace, "--wait"]),
  );
}

/**
 * The operator's options as it parses them from the rendered Deployment's args, with the downward-API
 * `$(POD_NAMESPACE)` filled in as `namespace`.
 */
export function operatorArgsOf(objects: Obj[], namespace: string): Options {
  const args = list(one(objects, "Deployment"), "spec.template.spec.containers.0.args").map(String);
  return parseOptions(args.map((a) => a.replaceAll("$(POD_NAMESPACE)", namespace)));
}

/**
 * Asserts what manifests/ and the chart's default values both render for the operator: a Deployment
 * `backrest-volsync-operator` with its selector and image, a hardened pod and container, a writable /tmp
 * only, the probes, the ports and the downward-API env; the flags it gives the operator's parser (in
 * namespace `backups`); and a Service selecting its pods. Returns those parts for further checks.
 */
export function assertDefaultOperator(
  objects: Obj[],
): { pod: unknown; container: Obj; opts: Options; service: Obj } {
  const deploy = one(objects, "Deployment", "backrest-volsync-operator");
  assert.deepEqual(at(deploy, "spec.selector.matchLabels"), { app: "backrest-volsync-operator" });
  const pod = at(deploy, "spec.template.spec");
  const c = at(pod, "containers.0");
  assert.ok(isObj(c));
  assert.equal(str(c, "image"), "ghcr.io/backrest-volsync/backrest-volsync-operator:0.1.0");
  assert.equal(at(pod, "securityContext.runAsNonRoot"), true);
  assert.equal(at(pod, "securityContext.runAsUser"), 65532);
  assert.equal(str(pod, "securityContext.seccompProfile.type"), "RuntimeDefault");
  assert.equal(at(c, "securityContext.readOnlyRootFilesystem"), true);
  assert.equal(at(c, "securityContext.allowPrivilegeEscalation"), false);
  assert.deepEqual(at(c, "securityContext.capabilities.drop"), ["ALL"]);
  assert.deepEqual(list(c, "volumeMounts"), [{ name: "tmp", mountPath: "/tmp" }]);
  assert.ok(list(pod, "volumes").some((v) => str(v, "name") === "tmp" && isObj(at(v, "emptyDir"))));
  assert.equal(str(c, "livenessProbe.httpGet.path"), "/healthz");
  assert.equal(str(c, "readinessProbe.httpGet.path"), "/readyz");
  const ports = Object.fromEntries(list(c, "ports").map((p) => [str(p, "name"), at(p, "containerPort")]));
  assert.deepEqual(ports, { metrics: 8080, probes: 8081 });
  const env = list(c, "env").map((e) => `${str(e, "name")}=${str(e, "valueFrom.fieldRef.fieldPath")}`);
  assert.deepEqual(env, ["POD_NAMESPACE=metadata.namespace", "POD_NAME=metadata.name"]);

  const opts = operatorArgsOf(objects, "backups");
  assert.equal(opts.leaderElect, true);
  assert.equal(opts.metricsBindAddress, ":8080");
  assert.equal(opts.healthProbeBindAddress, ":8081");
  assert.equal(opts.operatorConfigName, "backrest-volsync-operator");
  assert.equal(opts.operatorConfigNamespace, "backups");
  assert.deepEqual(opts.namespaces, []);

  const service = one(objects, "Service");
  assert.deepEqual(at(service, "spec.selector"), { app: "backrest-volsync-operator" });
  return { pod, container: c, opts, service };
}

/** Whether `v` is a JSON object: the project's one guard. */
export const isObj: (v: unknown) => v is Obj = isRecord;

/** The value at a dotted path (`spec.template.spec`), or undefined. */
export function at(obj: unknown, path: string): unknown {
  let cur: unknown = obj;
  for (const key of path.split(".")) {
    if (Array.isArray(cur) && /^\d+$/.test(key)) cur = cur[Number(key)];
    else if (isObj(cur)) cur = cur[key];
    else return undefined;
  }
  return cur;
}

export function str(obj: unknown, path: string): string {
  const v = at(obj, path);
  return typeof v === "string" ? v : "";
}

export function list(obj: unknown, path: string): unknown[] {
  const v = at(obj, path);
  return Array.isArray(v) ? v : [];
}

export function meta(obj: Obj): { name: string; namespace: string; kind: string } {
  return {
    name: str(obj, "metadata.name"),
    namespace: str(obj, "metadata.namespace"),
    kind: str(obj, "kind"),
  };
}

/** The objects of one kind (and name, when given). */
export function find(objects: Obj[], kind: string, name?: string): Obj[] {
  return objects.filter((o) => o.kind === kind && (name === undefined || str(o, "metadata.name") === name));
}

export function one(objects: Obj[], kind: string, name?: string): Obj {
  const found = find(objects, kind, name);
  if (found.length !== 1) {
    throw new Error(`want exactly one ${kind}${name ? ` ${name}` : ""}, found ${found.length}`);
  }
  return found[0]!;
}

/** RBAC rules as sorted strings (`group|resource|verb`), so two rule lists compare by what they grant. */
export function grants(rules: unknown[]): string[] {
  const out = new Set<string>();
  for (const rule of rules) {
    for (const g of list(rule, "apiGroups")) {
      for (const r of list(rule, "resources")) {
        for (const v of list(rule, "verbs")) out.add(`${String(g)}|${String(r)}|${String(v)}`);
      }
    }
  }
  return [...out].sort();
}

interface Resource {
  path: string;
  namespaced: boolean;
}

const discovery = new WeakMap<ControlPlane, Map<string, Resource | null>>();

/** The REST collection of a kind, from the server's discovery; null when the server does not serve it. */
export async function resourceFor(
  cp: ControlPlane,
  apiVersion: string,
  kind: string,
): Promise<Resource | null> {
  let cache = discovery.get(cp);
  if (!cache) discovery.set(cp, cache = new Map());
  const key = `${apiVersion}/${kind}`;
  if (cache.has(key)) return cache.get(key) ?? null;
  const base = apiVersion.includes("/") ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
  const res = await cp.api("GET", base);
  if (res.status === 404) {
    await res.body?.cancel();
    cache.set(key, null);
    return null;
  }
  const body: unknown = await res.json();
  if (!res.ok) throw new Error(`discovery ${base}: HTTP ${res.status}`);
  const r = list(body, "resources").find((r) => str(r, "kind") === kind && !str(r, "name").includes("/"));
  const found = r ? { path: `${base}/${str(r, "name")}`, namespaced: at(r, "namespaced") === true } : null;
  cache.set(key, found);
  return found;
}

export interface ApplyResult {
  status: number;
  body: string;
}

/**
 * Server-side apply of one object with strict field validation (unknown or duplicate fields are errors,
 * not silently dropped). `dryRun` runs admission and validation but stores nothing.
 */
export async function serverApply(
  cp: ControlPlane,
  obj: Obj,
  opts: { dryRun: boolean },
): Promise<ApplyResult> {
  const { name, namespace, kind } = meta(obj);
  const resource = await resourceFor(cp, str(obj, "apiVersion"), kind);
  if (!resource) return { status: 404, body: `${str(obj, "apiVersion")} ${kind} is not served` };
  const collection = resource.namespaced
    ? resource.path.replace(/\/([^/]+)$/, `/namespaces/${namespace || "default"}/$1`)
    : resource.path;
  const query = `fieldManager=bvo-packaging-test&force=true&fieldValidation=Strict${
    opts.dryRun ? "&dryRun=All" : ""
  }`;
  const res = await cp.api("PATCH", `${collection}/${name}?${query}`, JSON.stringify(obj), {
    "content-type": "application/apply-patch+yaml",
  });
  return { status: res.status, body: await res.text() };
}

/** Applies every object in order and throws on the first one the server refuses. */
export async function serverApplyAll(
  cp: ControlPlane,
  objects: Obj[],
  opts: { dryRun: boolean },
): Promise<void> {
  for (const obj of objects) {
    const r = await serverApply(cp, obj, opts);
    if (r.status < 200 || r.status > 299) {
      const { kind, namespace, name } = meta(obj);
      throw new Error(
        `server refused ${kind} ${namespace ? `${namespace}/` : ""}${name}: HTTP ${r.status}: ${r.body}`,
      );
    }
  }
}

/** The CRD names (`plural.group`) defined in manifests/crds/. */
export async function manifestCrdNames(): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(`${ROOT}/manifests/crds`)) {
    if (!entry.isFile || !entry.name.endsWith(".yaml")) continue;
    for (const obj of parseObjects(await Deno.readTextFile(`${ROOT}/manifests/crds/${entry.name}`))) {
      if (obj.kind === "CustomResourceDefinition") names.push(str(obj, "metadata.name"));
    }
  }
  return names.sort();
}
