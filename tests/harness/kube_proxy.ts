/**
 * A TLS proxy in front of the test kube-apiserver (served with the apiserver's own certificate) that
 * forwards every request, watch streams included, records what it forwarded, and breaks when the apiserver
 * goes away. It calls the apiserver as the admin (the default), or (`as: "caller"`) with the caller's bearer
 * token and no certificate of its own, so the apiserver authorizes the caller. Two faults on demand:
 * - the real apiserver's after a restart, shown only under some timings: a custom resource's watch cache may
 *   still be (re)initializing while the built-in resources are served, and reads of it are answered 429
 *   TooManyRequests "storage is (re)initializing" with `Retry-After: 1` (`initializingUntil`);
 * - an apiserver that answers, but slowly: each request held `delayMs` before it is forwarded.
 */
import { type ControlPlane, kubeconfig } from "./control_plane.ts";
import { httpProxy } from "./http_proxy.ts";
import { tempDir } from "./process.ts";

/** One request the proxy forwarded, and the apiserver's answer. */
export interface Forwarded {
  method: string;
  path: string;
  search: string;
  status: number;
}

export interface KubeProxy {
  /** `https://127.0.0.1:<port>`. */
  readonly url: string;
  /** A kubeconfig for the proxy: the admin client certificate, or (`as: "caller"`) `token`. */
  kubeconfig(options?: { token?: string; namespace?: string }): Promise<string>;
  /** Every request forwarded so far, in order. */
  readonly forwarded: readonly Forwarded[];
  /** Reads of `resource` (its plural) are answered 429 until `deadline` (a `performance.now()` time). */
  initializingUntil(resource: string, deadline: number): void;
  /** Reads answered 429 so far. */
  readonly refused: number;
  /** How long each request is held before it is forwarded (0: not at all). */
  delayMs: number;
  close(): Promise<void>;
}

/** Starts the proxy for `cp`'s apiserver, calling it as the admin or as each caller. */
export async function kubeProxy(
  cp: ControlPlane,
  options: { as?: "admin" | "caller" } = {},
): Promise<KubeProxy> {
  const asAdmin = (options.as ?? "admin") === "admin";
  const client = asAdmin
    ? Deno.createHttpClient({ caCerts: [cp.ca], cert: cp.cert, key: cp.key })
    : Deno.createHttpClient({ caCerts: [cp.ca] });
  const until = new Map<string, number>();
  const forwarded: Forwarded[] = [];
  const state = { refused: 0, delayMs: 0 };
  const proxy = httpProxy({
    target: cp.server,
    client,
    tls: {
      cert: await Deno.readTextFile(`${cp.dir}/serving.crt`),
      key: await Deno.readTextFile(`${cp.dir}/serving.key`),
    },
    async intercept(req, url) {
      if (state.delayMs > 0) {
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, state.delayMs);
          req.signal.addEventListener("abort", () => (clearTimeout(t), resolve()), { once: true });
        });
        if (req.signal.aborted) return new Response(null, { status: 499 });
      }
      const now = performance.now();
      if (req.method !== "GET" || !url.pathname.split("/").some((s) => (until.get(s) ?? 0) > now)) return;
      state.refused++;
      return Response.json({
        kind: "Status",
        apiVersion: "v1",
        status: "Failure",
        message: "storage is (re)initializing",
        reason: "TooManyRequests",
        details: { retryAfterSeconds: 1 },
        code: 429,
      }, { status: 429, headers: { "retry-after": "1" } });
    },
    onForwarded(req, url, res) {
      forwarded.push({ method: req.method, path: url.pathname, search: url.search, status: res.status });
    },
  });
  const dir = await tempDir("kube-proxy");
  let written = 0;
  return {
    url: proxy.url,
    async kubeconfig({ token, namespace } = {}) {
      if (asAdmin === (token !== undefined)) {
        throw new Error(
          asAdmin ? "an admin proxy takes no token" : "a caller's proxy needs the caller's token",
        );
      }
      const user = token !== undefined
        ? { token }
        : { "client-certificate-data": btoa(cp.cert), "client-key-data": btoa(cp.key) };
      const path = `${dir}/proxy-${written++}.kubeconfig`;
      await Deno.writeTextFile(path, kubeconfig(proxy.url, cp.ca, user, namespace));
      return path;
    },
    forwarded,
    initializingUntil: (resource, deadline) => void until.set(resource, deadline),
    get refused() {
      return state.refused;
    },
    get delayMs() {
      return state.delayMs;
    },
    set delayMs(ms: number) {
      state.delayMs = ms;
    },
    async close() {
      await proxy.close();
      client.close();
    },
  };
}
