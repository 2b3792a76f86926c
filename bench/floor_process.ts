/**
 * The floor as a SEPARATE process, started like the operator (bench/common.ts startInClusterProgram: the
 * run task's flags, the image's ENV, in-cluster mode), so its CPU seconds from exec are comparable with an
 * operator process's: the runtime's start, loading the clients' modules and the floor's calls
 * (bench/floor_calls.ts), nothing else. Usage: `floor_process.ts <namespace> <n> <backrest url>
 * <concurrency>`. Prints `floor done <ms>` on stderr once the last Event is written, then waits for SIGTERM
 * (the bench reads its CPU seconds from /proc, which the run task's permissions keep from the program).
 */
import { backrestClient } from "../lib/backrest/mod.ts";
import { connect, createClient } from "../lib/kube/mod.ts";
import { floorCalls } from "./floor_calls.ts";

const [ns, n, url, concurrency] = Deno.args;
if (!ns || !n || !url || !concurrency) {
  throw new Error("usage: floor_process.ts <namespace> <n> <url> <concurrency>");
}
const connection = await connect();
const kube = createClient(connection);
const backrest = backrestClient({ url, timeoutMs: 60_000 });
const t0 = performance.now();
await floorCalls(kube, backrest, { ns, n: Number(n), url, concurrency: Number(concurrency) });
// deno-lint-ignore no-console -- the bench reads this line from the process's log
console.error(`floor done ${Math.round(performance.now() - t0)}`);
const { promise, resolve } = Promise.withResolvers<void>();
Deno.addSignalListener("SIGTERM", resolve);
await promise;
connection.close();
