/**
 * A real Kubernetes control plane for tests: etcd, kube-apiserver (TLS with X.509 v3 certificates, RBAC,
 * service-account signing so TokenRequest works) and kube-controller-manager (garbage collector and
 * namespace controllers), all on free loopback ports in a temp dir, with VolSync's real CRDs installed.
 * One control plane per test process, started on first use and killed at exit; tests stay independent
 * by working in their own namespaces (`namespace()`).
 */

import { parseAllDocuments } from "yaml";
import { peer } from "./peers.ts";
import { freePort, type Proc, spawn, tempDir, waitUntil } from "./process.ts";

export interface ControlPlane {
  /** `https://127.0.0.1:<port>` */
  readonly server: string;
  /** Admin kubeconfig: CA and a client certificate in group system:masters, embedded. */
  readonly kubeconfigPath: string;
  /** PEM: the cluster CA, and the admin client certificate and key. */
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
  /** Directory holding certificates, kubeconfigs, logs and etcd data. */
  readonly dir: string;
  /** `http://127.0.0.1:<port>` of etcd's client API. */
  readonly etcdEndpoint: string;
  /** An admin JSON request; the body is JSON-encoded unless it is a string. */
  api(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<Response>;
  /** Like `api`, but throws unless the answer is 2xx, and returns the parsed JSON body. */
  json(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<unknown>;
  /** Creates a fresh namespace with a unique name. */
  namespace(prefix?: string): Promise<string>;
  /** Creates every object of a YAML stream (CRDs are awaited until Established). AlreadyExists is fine. */
  apply(yamlText: string, namespace?: string): Promise<void>;
  /** Creates the ServiceAccount if missing and returns a token for it from the TokenRequest API. */
  serviceAccountToken(namespace: string, name: string, expirationSeconds?: number): Promise<string>;
  /** Writes a kubeconfig for this cluster that authenticates with `token`; returns its path. */
  kubeconfigForToken(token: string, name?: string): Promise<string>;
  /**
   * Stops and starts kube-apiserver on the same port with the same state; resolves once /readyz says ready,
   * or with `ready: false` once it answers at all (still starting). `graceMs` bounds its graceful shutdown
   * before SIGKILL (default 5 s; it often needs all of it).
   */
  restartApiserver(options?: { graceMs?: number; ready?: boolean }): Promise<void>;
  /** Compacts etcd up to its current revision, so watches from older resourceVersions get 410. */
  compactEtcd(): Promise<void>;
  /** Stops and starts etcd on the same data dir and ports. */
  restartEtcd(): Promise<void>;
  /** Milliseconds the start took (etcd, apiserver, controller-manager, CRDs). */
  readonly startMs: number;
}

let shared: Promise<ControlPlane> | undefined;

/** The test process's control plane, started on first call. */
export function controlPlane(): Promise<ControlPlane> {
  shared ??= start();
  return shared;
}

let oldest: Promise<ControlPlane> | undefined;

/**
 * A control plane on the kube-apiserver of the oldest Kubernetes the project supports (KUBE_MIN_VERSION in
 * tests/peers/build.sh), started on first call. No controller manager: a newer one than the apiserver is
 * outside Kubernetes' version skew, and nothing that runs here needs garbage collection.
 */
export function oldestControlPlane(): Promise<ControlPlane> {
  oldest ??= start({ apiserver: "kube-apiserver-min", controllerManager: false });
  return oldest;
}

async function openssl(dir: string, ...args: string[]): Promise<void> {
  const out = await new Deno.Command("openssl", { args, cwd: dir, stdout: "piped", stderr: "piped" })
    .output();
  if (!out.success) {
    throw new Error(`openssl ${args[0]} failed: ${new TextDecoder().decode(out.stderr).slice(-500)}`);
  }
}

/** CA, serving certificate, admin client certificate (all X.509 v3: Deno rejects v1) and SA keys. */
async function makeCerts(dir: string): Promise<void> {
  const days = "3650";
  await openssl(dir, "genrsa", "-out", "ca.key", "2048");
  await openssl(
    dir,
    "req",
    "-x509",
    "-new",
    "-key",
    "ca.key",
    "-subj",
    "/CN=bvo-test-ca",
    "-days",
    days,
    "-out",
    "ca.crt",
  );
  await Deno.writeTextFile(
    `${dir}/serving.ext`,
    "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n" +
      "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default.svc\n",
  );
  await Deno.writeTextFile(
    `${dir}/client.ext`,
    "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n",
  );
  for (
    const [name, subj, ext] of [["serving", "/CN=kube-apiserver", "serving.ext"], [
      "admin",
      "/O=system:masters/CN=bvo-admin",
      "client.ext",
    ]] as const
  ) {
    await openssl(dir, "genrsa", "-out", `${name}.key`, "2048");
    await openssl(dir, "req", "-new", "-key", `${name}.key`, "-subj", subj, "-out", `${name}.csr`);
    await openssl(
      dir,
      "x509",
      "-req",
      "-in",
      `${name}.csr`,
      "-CA",
      "ca.crt",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-days",
      days,
      "-extfile",
      ext,
      "-out",
      `${name}.crt`,
    );
  }
  await openssl(dir, "genrsa", "-out", "sa.key", "2048");
  await openssl(dir, "rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub");
}

function b64(text: string): string {
  return btoa(text);
}

/** A kubeconfig for `server` (trusting `ca`) as `user`, its context in `namespace`. */
export function kubeconfig(
  server: string,
  ca: string,
  user: Record<string, string>,
  namespace = "default",
): string {
  return JSON.stringify(
    {
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name: "test", cluster: { server, "certificate-authority-data": b64(ca) } }],
      users: [{ name: "user", user }],
      contexts: [{ name: "test", context: { cluster: "test", user: "user", namespace } }],
      "current-context": "test",
    },
    null,
    2,
  );
}

async function start(
  o: { apiserver: "kube-apiserver" | "kube-apiserver-min"; controllerManager: boolean } = {
    apiserver: "kube-apiserver",
    controllerManager: true,
  },
): Promise<ControlPlane> {
  const started = performance.now();
  const [etcdBin, apiserverBin, kcmBin, volsync] = await Promise.all([
    peer("etcd"),
    peer(o.apiserver),
    o.controllerManager ? peer("kube-controller-manager") : undefined,
    peer("volsync-crds"),
  ]);
  const dir = await tempDir("cp");
  const buildStarted = performance.now();
  await makeCerts(dir);
  const ca = await Deno.readTextFile(`${dir}/ca.crt`);
  const cert = await Deno.readTextFile(`${dir}/admin.crt`);
  const key = await Deno.readTextFile(`${dir}/admin.key`);
  const client = Deno.createHttpClient({ caCerts: [ca], cert, key });

  const etcdPort = freePort();
  const etcdPeerPort = freePort();
  const etcdEndpoint = `http://127.0.0.1:${etcdPort}`;
  const apiPort = freePort();
  const server = `https://127.0.0.1:${apiPort}`;
  const kubeconfigPath = `${dir}/admin.kubeconfig`;
  await Deno.writeTextFile(
    kubeconfigPath,
    kubeconfig(server, ca, { "client-certificate-data": b64(cert), "client-key-data": b64(key) }),
  );

  let etcd: Proc | undefined;
  let apiserver: Proc | undefined;

  const startEtcd = async () => {
    etcd = await spawn("etcd", etcdBin.path, {
      logDir: dir,
      args: [
        "--name=default",
        `--data-dir=${dir}/etcd`,
        `--listen-client-urls=${etcdEndpoint}`,
        `--advertise-client-urls=${etcdEndpoint}`,
        `--listen-peer-urls=http://127.0.0.1:${etcdPeerPort}`,
        `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeerPort}`,
        `--initial-cluster=default=http://127.0.0.1:${etcdPeerPort}`,
        "--unsafe-no-fsync",
        "--log-level=warn",
      ],
    });
    const proc = etcd;
    await waitUntil("etcd", async () => (await fetch(`${etcdEndpoint}/health`)).ok, { proc, intervalMs: 50 });
  };

  const startApiserver = async (ready = true) => {
    apiserver = await spawn("kube-apiserver", apiserverBin.path, {
      logDir: dir,
      args: [
        `--etcd-servers=${etcdEndpoint}`,
        `--cert-dir=${dir}`,
        `--tls-cert-file=${dir}/serving.crt`,
        `--tls-private-key-file=${dir}/serving.key`,
        `--client-ca-file=${dir}/ca.crt`,
        `--secure-port=${apiPort}`,
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        "--service-cluster-ip-range=10.0.0.0/24",
        "--authorization-mode=RBAC",
        "--disable-admission-plugins=ServiceAccount",
        "--service-account-issuer=https://kubernetes.default.svc",
        `--service-account-key-file=${dir}/sa.pub`,
        `--service-account-signing-key-file=${dir}/sa.key`,
        "--endpoint-reconciler-type=none",
        "--enable-priority-and-fairness=false",
        "--v=0",
      ],
    });
    const proc = apiserver;
    await waitUntil("kube-apiserver /readyz", async () => {
      const res = await fetch(`${server}/readyz`, { client });
      await res.body?.cancel();
      return res.ok || !ready;
    }, { proc, timeoutMs: 60_000, intervalMs: ready ? 100 : 20 });
  };

  await startEtcd();
  await startApiserver();
  if (kcmBin) {
    await spawn("kube-controller-manager", kcmBin.path, {
      logDir: dir,
      args: [
        `--kubeconfig=${kubeconfigPath}`,
        "--controllers=garbagecollector,namespace",
        "--leader-elect=false",
        "--secure-port=0",
        "--use-service-account-credentials=false",
        "--v=0",
      ],
    });
  }

  const api = (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) =>
    fetch(`${server}${path}`, {
      client,
      method,
      headers: { "content-type": "application/json", accept: "application/json", ...headers },
      ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) }),
    });
  const json = async (method: string, path: string, body?: unknown, headers?: Record<string, string>) => {
    const res = await api(method, path, body, headers);
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path}: HTTP ${res.status}: ${text.slice(0, 500)}`);
    return text ? JSON.parse(text) : null;
  };

  const apply = async (yamlText: string, namespace?: string) => {
    for (const doc of parseAllDocuments(yamlText)) {
      const obj = doc.toJS();
      if (!obj || typeof obj !== "object") continue;
      await create(obj, namespace);
    }
  };

  // Discovery-free path mapping: enough for the kinds tests create.
  const create = async (obj: Record<string, unknown>, namespace?: string) => {
    const apiVersion = String(obj.apiVersion);
    const kind = String(obj.kind);
    const meta = (obj.metadata ?? {}) as Record<string, unknown>;
    const ns = typeof meta.namespace === "string" ? meta.namespace : namespace;
    const plural = await pluralFor(apiVersion, kind);
    const base = apiVersion.includes("/") ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
    const path = plural.namespaced && ns
      ? `${base}/namespaces/${ns}/${plural.name}`
      : `${base}/${plural.name}`;
    const res = await api("POST", path, obj);
    const text = await res.text();
    if (!res.ok && res.status !== 409) {
      throw new Error(`create ${kind} ${String(meta.name)}: HTTP ${res.status}: ${text.slice(0, 600)}`);
    }
    if (kind === "CustomResourceDefinition") {
      await waitUntil(`CRD ${String(meta.name)} Established`, async () => {
        const crd = await json("GET", `${path}/${String(meta.name)}`) as {
          status?: { conditions?: { type: string; status: string }[] };
        };
        return crd.status?.conditions?.some((c) => c.type === "Established" && c.status === "True") ?? false;
      }, { timeoutMs: 30_000, intervalMs: 50 });
    }
  };

  const plurals = new Map<string, { name: string; namespaced: boolean }>();
  const pluralFor = async (apiVersion: string, kind: string) => {
    const cacheKey = `${apiVersion}/${kind}`;
    const cached = plurals.get(cacheKey);
    if (cached) return cached;
    const base = apiVersion.includes("/") ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
    let found: { name: string; namespaced: boolean } | undefined;
    await waitUntil(`discovery of ${kind}`, async () => {
      const list = await json("GET", base) as {
        resources: { name: string; kind: string; namespaced: boolean }[];
      };
      const r = list.resources.find((r) => r.kind === kind && !r.name.includes("/"));
      if (r) found = { name: r.name, namespaced: r.namespaced };
      return found !== undefined;
    }, { timeoutMs: 15_000, intervalMs: 100 });
    plurals.set(cacheKey, found!);
    return found!;
  };

  for (
    const file of ["volsync.backube_replicationsources.yaml", "volsync.backube_replicationdestinations.yaml"]
  ) {
    await apply(await Deno.readTextFile(`${volsync.path}/${file}`));
  }

  let counter = 0;
  const cp: ControlPlane = {
    server,
    kubeconfigPath,
    ca,
    cert,
    key,
    dir,
    etcdEndpoint,
    api,
    json,
    apply,
    startMs: performance.now() - buildStarted,
    async namespace(prefix = "t") {
      const name = `${prefix}-${Date.now().toString(36)}-${(counter++).toString(36)}`.slice(0, 63);
      await json("POST", "/api/v1/namespaces", { apiVersion: "v1", kind: "Namespace", metadata: { name } });
      return name;
    },
    async serviceAccountToken(namespace, name, expirationSeconds = 3600) {
      const res = await api("POST", `/api/v1/namespaces/${namespace}/serviceaccounts`, {
        apiVersion: "v1",
        kind: "ServiceAccount",
        metadata: { name },
      });
      await res.body?.cancel();
      if (!res.ok && res.status !== 409) throw new Error(`create ServiceAccount: HTTP ${res.status}`);
      const tr = await json("POST", `/api/v1/namespaces/${namespace}/serviceaccounts/${name}/token`, {
        apiVersion: "authentication.k8s.io/v1",
        kind: "TokenRequest",
        spec: { expirationSeconds },
      }) as { status: { token: string } };
      return tr.status.token;
    },
    async kubeconfigForToken(token, name = `token-${counter++}`) {
      const path = `${dir}/${name}.kubeconfig`;
      await Deno.writeTextFile(path, kubeconfig(server, ca, { token }));
      return path;
    },
    async restartApiserver(options = {}) {
      await apiserver?.stop(options.graceMs);
      await startApiserver(options.ready ?? true);
    },
    async restartEtcd() {
      await etcd?.stop();
      await startEtcd();
    },
    async compactEtcd() {
      const range = await fetch(`${etcdEndpoint}/v3/kv/range`, {
        method: "POST",
        body: JSON.stringify({ key: btoa("/"), limit: 1 }),
      });
      const { header } = await range.json() as { header: { revision: string } };
      const res = await fetch(`${etcdEndpoint}/v3/kv/compaction`, {
        method: "POST",
        body: JSON.stringify({ revision: header.revision, physical: true }),
      });
      if (!res.ok) throw new Error(`etcd compaction: HTTP ${res.status}: ${await res.text()}`);
      await res.body?.cancel();
    },
  };
  // deno-lint-ignore no-console -- the measured start time belongs in the test output
  console.error(
    `control plane ready in ${Math.round(cp.startMs)} ms (peers resolved in ${
      Math.round(buildStarted - started)
    } ms): ${server}`,
  );
  return cp;
}
