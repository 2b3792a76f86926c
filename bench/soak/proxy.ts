/**
 * A recording HTTP proxy in front of one Backrest: the Bindings of the soak name it instead of Backrest, so
 * every call the operator makes passes here and is logged with its arrival time, its path and the process
 * that sent it (the client socket's owner, see origin.ts). It also plays the network's faults: a black hole
 * (requests are taken and never answered until the spell ends; then those whose sender still waits are
 * passed on, as a network that comes back delivers), a slow path (each request and each answer chunk
 * delayed), and a peer answering garbage (what a captive portal, a broken ingress or a proxy that
 * corrupts bodies sends; see {@linkcode GarbageVariant}).
 * Rule: the arrival time is when the request's head arrived, before any fault's delay, so "no call after
 * X" is judged by when the operator sent it.
 */
import type { SocketOwners } from "./origin.ts";

/** How a garbage-answering peer answers. */
export type GarbageVariant =
  /** 200 with an HTML page (a login wall or a captive portal); nothing reaches Backrest. */
  | "html-200"
  /** 502 with an HTML page (an ingress without a backend); nothing reaches Backrest. */
  | "html-502"
  /** 500 claiming JSON, with a body that is not JSON; nothing reaches Backrest. */
  | "broken-json-500"
  /** Backrest handles the call, but its answer arrives as 16 random bytes (a proxy that corrupts bodies). */
  | "corrupt-200";

/** The garbage variants, for drawing one. */
export const GARBAGE_VARIANTS: readonly GarbageVariant[] = [
  "html-200",
  "html-502",
  "broken-json-500",
  "corrupt-200",
];

/** What the proxy does with the next request. */
export type ProxyMode =
  | { kind: "pass" }
  | { kind: "blackhole" }
  | { kind: "slow"; delayMs: number }
  | { kind: "garbage"; variant: GarbageVariant };

/** One request as it arrived. */
export interface ProxyCall {
  /** Epoch milliseconds of the request's arrival. */
  at: number;
  /** `/v1.Backrest/<Method>`. */
  path: string;
  /** The pid of the process that sent it, when it could be found. */
  pid: number | undefined;
  /** The mode the proxy was in (its `kind`). */
  mode: ProxyMode["kind"];
}

/** A running proxy. */
export interface RecordingProxy {
  /** A short name for reports (`real`, `standin`). */
  readonly name: string;
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  /** Every request so far, in arrival order. */
  readonly calls: ProxyCall[];
  /** The current mode. */
  mode(): ProxyMode;
  /** Changes the mode; leaving a black hole passes on the requests still waiting. */
  setMode(mode: ProxyMode): void;
  close(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Starts a proxy for `target` (a Backrest base URL); `owners` attributes each connection to a process. */
export function recordingProxy(name: string, target: string, owners: SocketOwners): RecordingProxy {
  const calls: ProxyCall[] = [];
  let mode: ProxyMode = { kind: "pass" };
  // Released when a black hole ends.
  let holeEnded: (() => void) | undefined;
  let holeOver: Promise<void> = Promise.resolve();
  const upstream = Deno.createHttpClient({});

  const forward = async (req: Request, body: ArrayBuffer, delayMs: number): Promise<Response> => {
    const url = new URL(req.url);
    const headers = new Headers(req.headers);
    headers.delete("host");
    let res: Response;
    try {
      res = await fetch(target + url.pathname + url.search, {
        method: req.method,
        headers,
        client: upstream,
        signal: req.signal,
        ...(req.method === "GET" || req.method === "HEAD" ? {} : { body }),
      });
    } catch {
      // Backrest is down: what the operator sees through a proxy whose backend refuses.
      return new Response("upstream unavailable", { status: 503 });
    }
    // fetch has decoded the body already: pass it on without the encoding and length it came with.
    const back = new Headers(res.headers);
    back.delete("content-encoding");
    back.delete("content-length");
    const out = delayMs > 0 && res.body
      ? res.body.pipeThrough(
        new TransformStream<Uint8Array, Uint8Array>({
          async transform(chunk, controller) {
            await sleep(delayMs);
            controller.enqueue(chunk);
          },
        }),
      )
      : res.body;
    return new Response(out, { status: res.status, headers: back });
  };

  const garbage = async (variant: GarbageVariant, req: Request, body: ArrayBuffer): Promise<Response> => {
    switch (variant) {
      case "html-200":
        return new Response("<html><body><h1>Sign in</h1></body></html>", {
          headers: { "content-type": "text/html; charset=utf-8" },
        });
      case "html-502":
        return new Response("<html><body><h1>502 Bad Gateway</h1></body></html>", {
          status: 502,
          headers: { "content-type": "text/html" },
        });
      case "broken-json-500":
        return new Response('{"code": "unkn', {
          status: 500,
          headers: { "content-type": "application/json" },
        });
      case "corrupt-200": {
        const res = await forward(req, body, 0);
        await res.body?.cancel();
        return new Response(crypto.getRandomValues(new Uint8Array(16)), {
          headers: { "content-type": "application/proto" },
        });
      }
    }
  };

  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req, info) => {
    const at = Date.now();
    const url = new URL(req.url);
    const remote = info.remoteAddr as Deno.NetAddr;
    const pid = owners.owner(remote.port, server.addr.port);
    const current = mode;
    calls.push({ at, path: url.pathname, pid, mode: current.kind });
    const body = await req.arrayBuffer();
    switch (current.kind) {
      case "pass":
        return await forward(req, body, 0);
      case "slow":
        await sleep(current.delayMs);
        return await forward(req, body, current.delayMs);
      case "garbage":
        return await garbage(current.variant, req, body);
      case "blackhole": {
        const gone = new Promise<"gone">((resolve) => {
          if (req.signal.aborted) resolve("gone");
          req.signal.addEventListener("abort", () => resolve("gone"), { once: true });
        });
        if (await Promise.race([holeOver.then(() => "over" as const), gone]) === "gone") {
          return new Response(null, { status: 504 });
        }
        return await forward(req, body, 0);
      }
    }
  });

  return {
    name,
    url: `http://127.0.0.1:${server.addr.port}`,
    calls,
    mode: () => mode,
    setMode(next) {
      if (mode.kind === "blackhole" && next.kind !== "blackhole") holeEnded?.();
      if (next.kind === "blackhole" && mode.kind !== "blackhole") {
        holeOver = new Promise<void>((resolve) => holeEnded = resolve);
      }
      mode = next;
    },
    async close() {
      holeEnded?.();
      await server.shutdown();
      upstream.close();
    },
  };
}
