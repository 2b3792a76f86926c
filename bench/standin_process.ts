/**
 * The Backrest stand-in (tests/harness/backrest_standin.ts) in a process of its own, so that a benchmark's
 * CPU figures (its own process's) hold the operator's work, or the floor's, and not the stand-in's serving:
 * in the same process the stand-in took about a quarter of a 1 000 cold start's CPU. Imported,
 * {@linkcode startStandinProcess} spawns it; run as a script (`<control port>`), it serves the stand-in and,
 * on the control port, `GET /state` (its URL and calls per method) and `POST /reset` (zeroes the calls).
 */
import { type StandinMethod, startBackrestStandin } from "../tests/harness/backrest_standin.ts";
import { freePort, spawn, tempDir, waitUntil } from "../tests/harness/process.ts";

/** What the control port answers. */
interface StandinState {
  url: string;
  calls: Record<StandinMethod, number>;
}

/** A stand-in served by a child process. */
export interface StandinProcess {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  /** Requests per method so far. */
  calls(): Promise<Record<StandinMethod, number>>;
  /** Sum of `calls()`. */
  totalCalls(): Promise<number>;
  /** Zeroes the calls. */
  resetCalls(): Promise<void>;
  stop(): Promise<void>;
}

/** Spawns a stand-in process and resolves once it serves. */
export async function startStandinProcess(): Promise<StandinProcess> {
  const control = `http://127.0.0.1:${freePort()}`;
  const proc = await spawn("backrest-standin", Deno.execPath(), {
    args: ["run", "-A", new URL(import.meta.url).pathname, new URL(control).port],
    logDir: await tempDir("bench-standin"),
  });
  const state = async (): Promise<StandinState> => {
    const res = await fetch(`${control}/state`);
    if (!res.ok) throw new Error(`stand-in control: ${res.status}`);
    return await res.json() as StandinState;
  };
  let url = "";
  await waitUntil("stand-in process", async () => {
    url = (await state()).url;
    return true;
  }, { proc, timeoutMs: 60_000, intervalMs: 50 });
  return {
    url,
    calls: async () => (await state()).calls,
    totalCalls: async () => Object.values((await state()).calls).reduce((a, b) => a + b, 0),
    async resetCalls() {
      const res = await fetch(`${control}/reset`, { method: "POST" });
      await res.body?.cancel();
    },
    stop: () => proc.stop(),
  };
}

if (import.meta.main) {
  const standin = startBackrestStandin();
  Deno.serve({ hostname: "127.0.0.1", port: Number(Deno.args[0]), onListen() {} }, (req) => {
    const path = new URL(req.url).pathname;
    if (path === "/state") {
      return Response.json({ url: standin.url, calls: standin.calls });
    }
    if (path === "/reset" && req.method === "POST") {
      standin.resetCalls();
      return new Response(null, { status: 204 });
    }
    return new Response("not found", { status: 404 });
  });
}
