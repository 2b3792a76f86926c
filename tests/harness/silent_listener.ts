/**
 * A loopback TCP port that accepts connections and never answers: storage, or a network path to Backrest,
 * that hangs. It can be told to forward to a real server instead, as a path that recovers.
 */

/** A port that holds every connection it accepts, unanswered, until told where to forward. */
export interface SilentListener {
  readonly port: number;
  /** From now on, forwards new connections to `url`'s host and port; the held ones are closed. */
  forwardTo(url: string): void;
  /** Stops accepting and closes every connection. */
  close(): Promise<void>;
}

/** Listens on a free loopback port, holding what it accepts (see {@linkcode SilentListener}). */
export function silentListener(): SilentListener {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  let target: URL | undefined;
  const closeAll = () => {
    for (const conn of conns) {
      try {
        conn.close();
      } catch { /* closed */ }
    }
    conns.clear();
  };
  const accepting = (async () => {
    try {
      for await (const conn of listener) {
        conns.add(conn);
        if (!target) continue;
        const upstream = await Deno.connect({ hostname: target.hostname, port: Number(target.port) });
        conns.add(upstream);
        conn.readable.pipeTo(upstream.writable).catch(() => {});
        upstream.readable.pipeTo(conn.writable).catch(() => {});
      }
    } catch { /* closed */ }
  })();
  return {
    port: listener.addr.port,
    forwardTo(url) {
      target = new URL(url);
      closeAll();
    },
    async close() {
      listener.close();
      closeAll();
      await accepting;
    },
  };
}
