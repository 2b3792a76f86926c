/**
 * A loopback HTTP(S) proxy to one upstream, the one every test proxy builds on: each request goes through
 * as it came (method, path, query, headers but Host, body), unless `intercept` answers it first, and the
 * upstream's answer comes back with its decoded body. An upstream that cannot be reached is answered 503,
 * what a client of it would see as a refused connection.
 */

export interface HttpProxyOptions {
  /** The upstream's base URL, e.g. `http://127.0.0.1:9898`. */
  target: string;
  /** The client the upstream is called with (its CA, a client certificate). */
  client?: Deno.HttpClient;
  /** Serve TLS with this certificate (PEM) instead of plain HTTP. */
  tls?: { cert: string; key: string };
  /** An answer in place of the upstream's, or undefined to forward the request. */
  intercept?(req: Request, url: URL): Response | undefined | Promise<Response | undefined>;
  /** Called once the upstream has answered a forwarded request. */
  onForwarded?(req: Request, url: URL, res: Response): void;
}

export interface HttpProxy {
  /** `http(s)://127.0.0.1:<port>`. */
  readonly url: string;
  close(): Promise<void>;
}

export function httpProxy(o: HttpProxyOptions): HttpProxy {
  const tls = o.tls ? { cert: o.tls.cert, key: o.tls.key } : {};
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, ...tls, onListen: () => {} }, async (req) => {
    const url = new URL(req.url);
    const answer = await o.intercept?.(req, url);
    if (answer) return answer;
    const headers = new Headers(req.headers);
    headers.delete("host");
    let res: Response;
    try {
      res = await fetch(o.target + url.pathname + url.search, {
        method: req.method,
        headers,
        ...(req.method === "GET" || req.method === "HEAD" ? {} : { body: await req.arrayBuffer() }),
        ...(o.client ? { client: o.client } : {}),
        signal: req.signal,
      });
    } catch {
      return new Response("upstream unreachable", { status: 503 });
    }
    o.onForwarded?.(req, url, res);
    // fetch has decoded the body already: pass it on without the encoding and length it came with.
    const back = new Headers(res.headers);
    back.delete("content-encoding");
    back.delete("content-length");
    return new Response(res.body, { status: res.status, headers: back });
  });
  return {
    url: `${o.tls ? "https" : "http"}://127.0.0.1:${server.addr.port}`,
    close: () => server.shutdown(),
  };
}
