/**
 * Listeners that stand where a tenant's storage, or Backrest's own cloud identity, would answer, and record
 * every request that reaches them: for proving that nothing Backrest owns (its environment, its HOME, its
 * identity endpoints) reaches a host a tenant controls. Two kinds:
 * - `startRecorder()`: a plain HTTP listener on loopback (a tenant's rest, s3 or swift endpoint, or
 *   Backrest's own metadata, STS or Keystone endpoint planted in its environment);
 * - `startInterceptor(hosts)`: an HTTP CONNECT proxy that terminates TLS for the cloud providers' fixed
 *   hosts (Azure Blob, Backblaze, Google) with a certificate from a private CA, for a Backrest whose
 *   environment trusts that CA (`SSL_CERT_FILE`) and names the proxy (`HTTPS_PROXY`): Backrest's own
 *   network settings, which a tenant cannot set. Loopback hosts never go through the proxy.
 * Every listener answers 403, so restic stops after its first request.
 */
import { servingCertificate } from "./tls.ts";
import { tempDir } from "./process.ts";

/** One request as it arrived. */
export interface Recorded {
  /** The Host header (or the CONNECT target). */
  host: string;
  method: string;
  /** Path and query. */
  path: string;
  headers: Record<string, string>;
  body: string;
}

/** A listener and what reached it. */
export interface Recorder {
  /** `http://127.0.0.1:<port>` (or `https://...` for the interceptor's TLS side). */
  readonly url: string;
  readonly port: number;
  readonly requests: Recorded[];
  /** Everything recorded, as one text to search for canaries. */
  text(): string;
  close(): Promise<void>;
}

async function record(req: Request): Promise<Recorded> {
  // A Host no URL parser takes (restic sends IDNA-mapped look-alikes as they are) is kept as text.
  let path = req.url.replace(/^[a-z]+:\/\/[^/]*/, "");
  try {
    const url = new URL(req.url);
    path = url.pathname + url.search;
  } catch { /* keep the raw path */ }
  return {
    // HTTP/2 (what Go's client speaks over TLS) carries the host as :authority, in the URL only.
    host: req.headers.get("host") ?? /^[a-z]+:\/\/([^/]*)/.exec(req.url)?.[1] ?? "",
    method: req.method,
    path,
    headers: Object.fromEntries(req.headers),
    body: req.body ? await req.text() : "",
  };
}

/** A plain HTTP recorder on 127.0.0.1 that answers every request with `status` (default 403). */
export function startRecorder(status = 403): Recorder {
  const requests: Recorded[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    requests.push(await record(req));
    return new Response("refused by the test recorder", { status });
  });
  const port = server.addr.port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    text: () => JSON.stringify(requests),
    close: () => server.shutdown(),
  };
}

/** A TLS-terminating CONNECT proxy for `hosts` (see the module rules). */
export interface Interceptor {
  /** `http://127.0.0.1:<port>`: what Backrest's HTTPS_PROXY names. */
  readonly proxyUrl: string;
  /** A file holding the private CA: what Backrest's SSL_CERT_FILE names. */
  readonly caFile: string;
  /** The CONNECT targets asked for, in order (`host:port`). */
  readonly connects: string[];
  /** The requests that came through the tunnels. */
  readonly requests: Recorded[];
  text(): string;
  close(): Promise<void>;
}

/** Starts the interceptor; its certificate names `hosts` (wildcards allowed, e.g. `*.blob.core.windows.net`). */
export async function startInterceptor(hosts: readonly string[]): Promise<Interceptor> {
  const tls = await servingCertificate(hosts);
  const dir = await tempDir("interceptor");
  const caFile = `${dir}/ca.crt`;
  await Deno.writeTextFile(caFile, tls.ca);
  const requests: Recorded[] = [];
  const connects: string[] = [];
  const inner = Deno.serve(
    { hostname: "127.0.0.1", port: 0, cert: tls.cert, key: tls.key, onListen() {} },
    async (req) => {
      requests.push(await record(req));
      return new Response("refused by the test interceptor", { status: 403 });
    },
  );
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const tunnels = new Set<Promise<void>>();
  const tunnel = async (conn: Deno.Conn) => {
    try {
      // The CONNECT request: the client sends nothing more until it is answered.
      const buf = new Uint8Array(8192);
      let head = "";
      while (!head.includes("\r\n\r\n")) {
        const n = await conn.read(buf);
        if (n === null) return;
        head += new TextDecoder().decode(buf.subarray(0, n));
      }
      const target = /^CONNECT (\S+) HTTP/.exec(head)?.[1];
      if (!target) {
        await conn.write(new TextEncoder().encode("HTTP/1.1 405 Method Not Allowed\r\n\r\n"));
        return;
      }
      connects.push(target);
      await conn.write(new TextEncoder().encode("HTTP/1.1 200 Connection Established\r\n\r\n"));
      const up = await Deno.connect({ hostname: "127.0.0.1", port: inner.addr.port });
      await Promise.allSettled([conn.readable.pipeTo(up.writable), up.readable.pipeTo(conn.writable)]);
    } catch {
      /* a client that went away */
    } finally {
      try {
        conn.close();
      } catch { /* closed by a pipe already */ }
    }
  };
  const accepting = (async () => {
    try {
      for await (const conn of listener) {
        const t = tunnel(conn);
        tunnels.add(t);
        t.finally(() => tunnels.delete(t));
      }
    } catch { /* closed */ }
  })();
  return {
    proxyUrl: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    caFile,
    connects,
    requests,
    text: () => JSON.stringify({ connects, requests }),
    async close() {
      listener.close();
      await accepting;
      await inner.shutdown();
      await Promise.allSettled([...tunnels]);
    },
  };
}
