/**
 * A TLS proxy in front of the test kube-apiserver, for a fault the real one shows only under some timings:
 * after a restart, a custom resource's watch cache may still be (re)initializing while the built-in
 * resources are served, and reads of it are answered 429 TooManyRequests "storage is (re)initializing" with
 * `Retry-After: 1`. While told to, the proxy answers reads (list, watch, get) of the chosen resources
 * exactly so; everything else goes through to the real apiserver as it is, watch streams included, and
 * breaks when the apiserver goes away. Clients reach it through `kubeconfigPath` (the admin identity).
 */
import type { ControlPlane } from "./control_plane.ts";
import { tempDir } from "./process.ts";

export interface KubeProxy {
  /** `https://127.0.0.1:<port>`, served with the apiserver's own certificate. */
  readonly url: string;
  /** A kubeconfig for the proxy with the admin client certificate. */
  readonly kubeconfigPath: string;
  /** Reads of `resource` (its plural) are answered 429 until `deadline` (a `performance.now()` time). */
  initializingUntil(resource: string, deadline: number): void;
  /** Reads answered 429 so far. */
  readonly refused: number;
  close(): Promise<void>;
}

/** Starts the proxy for `cp`'s apiserver. */
export async function kubeProxy(cp: ControlPlane): Promise<KubeProxy> {
  const upstream = Deno.createHttpClient({ caCerts: [cp.ca], cert: cp.cert, key: cp.key });
  const until = new Map<string, number>();
  let refused = 0;
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    cert: await Deno.readTextFile(`${cp.dir}/serving.crt`),
    key: await Deno.readTextFile(`${cp.dir}/serving.key`),
    onListen: () => {},
  }, async (req) => {
    const url = new URL(req.url);
    const segments = url.pathname.split("/");
    const now = performance.now();
    if (req.method === "GET" && segments.some((s) => (until.get(s) ?? 0) > now)) {
      refused++;
      return Response.json({
        kind: "Status",
        apiVersion: "v1",
        status: "Failure",
        message: "storage is (re)initializing",
        reason: "TooManyRequests",
        details: { retryAfterSeconds: 1 },
        code: 429,
      }, { status: 429, headers: { "retry-after": "1" } });
    }
    const headers = new Headers(req.headers);
    headers.delete("host");
    let res: Response;
    try {
      res = await fetch(cp.server + url.pathname + url.search, {
        method: req.method,
        headers,
        ...(req.method === "GET" || req.method === "HEAD" ? {} : { body: await req.arrayBuffer() }),
        client: upstream,
        signal: req.signal,
      });
    } catch {
      // The apiserver is down: what a client of it would see as a refused connection.
      return new Response("apiserver unreachable", { status: 503 });
    }
    // fetch has decoded the body already: pass it on without the encoding and length it came with.
    const back = new Headers(res.headers);
    back.delete("content-encoding");
    back.delete("content-length");
    return new Response(res.body, { status: res.status, headers: back });
  });
  const url = `https://127.0.0.1:${server.addr.port}`;
  const kubeconfigPath = `${await tempDir("kube-proxy")}/proxy.kubeconfig`;
  await Deno.writeTextFile(
    kubeconfigPath,
    JSON.stringify({
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name: "proxy", cluster: { server: url, "certificate-authority-data": btoa(cp.ca) } }],
      users: [{
        name: "admin",
        user: { "client-certificate-data": btoa(cp.cert), "client-key-data": btoa(cp.key) },
      }],
      contexts: [{ name: "proxy", context: { cluster: "proxy", user: "admin", namespace: "default" } }],
      "current-context": "proxy",
    }),
  );
  return {
    url,
    kubeconfigPath,
    initializingUntil: (resource, deadline) => void until.set(resource, deadline),
    get refused() {
      return refused;
    },
    async close() {
      await server.shutdown();
      upstream.close();
    },
  };
}
