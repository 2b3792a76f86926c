/**
 * Samples, every `everyMs`, each live replica's resident memory (VmRSS) and open file descriptors from
 * /proc, its work queue depth from its /metrics (`workqueue_depth`, summed over controllers: only the
 * leader's queues fill), and its role (from the Lease history); and the claim and total Lease counts in
 * the operator's namespace. Rule: a sample that cannot be read (a replica just killed) is skipped.
 */
import { kubeList } from "./kube.ts";
import type { Slot } from "./replicas.ts";
import { CLAIM_LABEL, type World } from "./world.ts";

/** One replica's sample. */
export interface ReplicaSample {
  at: number;
  slot: Slot;
  /** Incarnation number of the slot. */
  n: number;
  pid: number;
  leader: boolean;
  rssMB: number;
  fds: number;
  queueDepth: number | null;
}

/** The operator namespace's Lease counts. */
export interface LeaseSample {
  at: number;
  claims: number;
  leases: number;
}

/** The sampling loop and what it collected. */
export class Sampler {
  readonly replicas: ReplicaSample[] = [];
  readonly leases: LeaseSample[] = [];
  readonly #w: World;
  #stop = false;
  #loop: Promise<void> | undefined;

  constructor(world: World) {
    this.#w = world;
  }

  /** Starts sampling. */
  start(everyMs: number): void {
    this.#loop = (async () => {
      while (!this.#stop) {
        const at = Date.now();
        await this.sample().catch(() => {});
        const wait = Math.max(0, everyMs - (Date.now() - at));
        for (let waited = 0; waited < wait && !this.#stop; waited += 200) {
          await new Promise((r) => setTimeout(r, Math.min(200, wait - waited)));
        }
      }
    })();
  }

  /** One round of samples. */
  async sample(): Promise<void> {
    const w = this.#w;
    const at = Date.now();
    const holder = w.lease.current();
    for (const inc of w.replicas.live()) {
      let rssMB: number;
      let fds: number;
      try {
        const m = /VmRSS:\s+(\d+) kB/.exec(await Deno.readTextFile(`/proc/${inc.pid}/status`));
        rssMB = m ? Math.round(Number(m[1]) / 102.4) / 10 : NaN;
        fds = 0;
        for await (const _ of Deno.readDir(`/proc/${inc.pid}/fd`)) fds++;
      } catch {
        continue;
      }
      let queueDepth: number | null = null;
      try {
        const res = await fetch(`${inc.metricsUrl}/metrics`, { signal: AbortSignal.timeout(3000) });
        const text = await res.text();
        queueDepth = 0;
        for (const m of text.matchAll(/^workqueue_depth\{[^}]*\} (\d+(?:\.\d+)?)$/gm)) {
          queueDepth += Number(m[1]);
        }
      } catch { /* busy or restarting */ }
      this.replicas.push({
        at,
        slot: inc.slot,
        n: inc.n,
        pid: inc.pid,
        leader: holder.startsWith(inc.identityPrefix),
        rssMB,
        fds,
        queueDepth,
      });
    }
    try {
      const leases = await kubeList(w.cp, `/apis/coordination.k8s.io/v1/namespaces/${w.cfgNs}/leases`);
      const claims = leases.filter((l) =>
        ((l.metadata as { labels?: Record<string, string> } | undefined)?.labels ?? {})[CLAIM_LABEL] ===
          "true"
      );
      this.leases.push({ at, claims: claims.length, leases: leases.length });
    } catch { /* apiserver restarting */ }
  }

  /** Stops sampling. */
  async stop(): Promise<void> {
    this.#stop = true;
    await this.#loop;
  }
}
