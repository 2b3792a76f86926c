/**
 * The operator's HTTP endpoints: `/healthz` (the manager's loops are alive and no reconcile is wedged),
 * `/readyz` (caches synced, and a leader's Lease current), `/metrics`
 * (Prometheus text). Metrics and probes may share one address or listen on two, as controller-runtime's
 * `--metrics-bind-address` and `--health-probe-bind-address`. Rules: nothing here reads request bodies,
 * every listener stops when the signal aborts, and `start()` resolves only after they have closed.
 */

import type { Registry } from "./metrics.ts";
import { METRICS_CONTENT_TYPE } from "./metrics.ts";
import type { Logger } from "./logger.ts";

/** A `host:port` pair (":8080" means all interfaces). `"0"` disables the listener, as controller-runtime. */
export type BindAddress = string;

/** Options for {@linkcode ObserveServer}. */
export interface ServerOptions {
  /** Where `/metrics` listens (default ":8080"; "0" disables). */
  metricsAddress?: BindAddress | undefined;
  /** Where `/healthz` and `/readyz` listen (default ":8081"; "0" disables). */
  probeAddress?: BindAddress | undefined;
  /** Rendered on each `/metrics` request. */
  registry: Registry;
  /** Liveness; defaults to always true. */
  healthy?: (() => boolean) | undefined;
  /** Readiness: true once the caches have synced. */
  ready: () => boolean;
  /** Logs the addresses served (one `Serving` line per listener). */
  logger: Logger;
}

/** Parses `host:port`, `:port` or `[v6]:port`. */
export function parseBindAddress(value: string): { hostname: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(value);
  const port = m ? Number(m[3]) : NaN;
  if (!m || !(port >= 0 && port <= 65535)) {
    throw new RangeError(`Invalid bind address: ${value} (expected host:port or :port)`);
  }
  return { hostname: m[1] ?? (m[2] || "0.0.0.0"), port };
}

/** The health and metrics HTTP server. */
export class ObserveServer {
  readonly #options: ServerOptions;
  readonly #servers: Deno.HttpServer<Deno.NetAddr>[] = [];

  /** Binds nothing yet: see {@linkcode ObserveServer.listen} and {@linkcode ObserveServer.start}. */
  constructor(options: ServerOptions) {
    this.#options = options;
  }

  /** Binds the listeners (so a port conflict fails fast, before the rest starts). */
  listen(): { metrics?: Deno.NetAddr; probes?: Deno.NetAddr } {
    const o = this.#options;
    const metrics = o.metricsAddress ?? ":8080";
    const probes = o.probeAddress ?? ":8081";
    const out: { metrics?: Deno.NetAddr; probes?: Deno.NetAddr } = {};
    const wanted: { addr: string; routes: Set<string> }[] = [];
    if (metrics !== "0") wanted.push({ addr: metrics, routes: new Set(["/metrics"]) });
    if (probes !== "0") {
      // Same address: one listener for both (an ephemeral ":0" port is never shared).
      const same = parseBindAddress(probes).port === 0 ? undefined : wanted.find((w) => w.addr === probes);
      if (same) ["/healthz", "/readyz"].forEach((r) => same.routes.add(r));
      else wanted.push({ addr: probes, routes: new Set(["/healthz", "/readyz"]) });
    }
    for (const w of wanted) {
      const { hostname, port } = parseBindAddress(w.addr);
      const server = Deno.serve(
        { hostname, port, onListen: () => {}, handler: (req) => this.#handle(req, w.routes) },
      );
      this.#servers.push(server);
      if (w.routes.has("/metrics")) out.metrics = server.addr;
      if (w.routes.has("/readyz")) out.probes = server.addr;
      o.logger.info("Serving", {
        address: `${server.addr.hostname}:${server.addr.port}`,
        paths: [...w.routes].join(","),
      });
    }
    return out;
  }

  /** Listens (if not yet) until `signal` aborts, then shuts the listeners down. */
  async start(signal: AbortSignal): Promise<void> {
    if (this.#servers.length === 0) this.listen();
    const stop = () => {
      for (const s of this.#servers) s.shutdown().catch(() => {});
    };
    if (signal.aborted) stop();
    else signal.addEventListener("abort", stop, { once: true });
    await Promise.all(this.#servers.map((s) => s.finished));
    signal.removeEventListener("abort", stop);
  }

  #handle(req: Request, routes: Set<string>): Response {
    const path = new URL(req.url).pathname;
    if (!routes.has(path)) return new Response("not found\n", { status: 404 });
    if (req.method !== "GET" && req.method !== "HEAD") {
      return new Response("method not allowed\n", { status: 405, headers: { allow: "GET, HEAD" } });
    }
    const o = this.#options;
    switch (path) {
      case "/metrics":
        return new Response(o.registry.render(), { headers: { "content-type": METRICS_CONTENT_TYPE } });
      case "/healthz":
        return (o.healthy?.() ?? true) ? new Response("ok\n") : new Response("unhealthy\n", { status: 500 });
      default:
        return o.ready() ? new Response("ok\n") : new Response("not ready\n", { status: 503 });
    }
  }
}
