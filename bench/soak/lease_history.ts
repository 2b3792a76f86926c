/**
 * The leader-election Lease's history, polled every `intervalMs` (default 200 ms) through the admin
 * client: runs of polls that saw one holder, each with the first and last time seen. Rule: a question about
 * a moment is answered from what was seen around it, allowing `toleranceMs` for the polling itself; a gap
 * in polling (the apiserver down) answers with the holder last seen before it.
 */
import type { ControlPlane } from "../../tests/harness/control_plane.ts";

/** Polls that saw one holder in a row. */
export interface HolderRun {
  holder: string;
  /** Epoch ms of the first and last poll that saw it. */
  from: number;
  to: number;
  /** `spec.leaseTransitions` when first seen. */
  transitions: number;
}

/** The Lease's holders over time. */
export class LeaseHistory {
  readonly runs: HolderRun[] = [];
  readonly #path: string;
  readonly #cp: ControlPlane;
  #stop = false;
  #loop: Promise<void> | undefined;
  /** Polls that failed (apiserver down). */
  failedPolls = 0;
  polls = 0;

  /** Polls the Lease `name` in `namespace`. */
  constructor(cp: ControlPlane, namespace: string, name: string) {
    this.#cp = cp;
    this.#path = `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases/${name}`;
  }

  /** Starts polling. */
  start(intervalMs = 200): void {
    this.#loop = (async () => {
      while (!this.#stop) {
        const at = Date.now();
        try {
          const res = await this.#cp.api("GET", this.#path);
          if (res.ok) {
            const lease = await res.json() as {
              spec?: { holderIdentity?: string; leaseTransitions?: number };
            };
            this.#record(Date.now(), lease.spec?.holderIdentity ?? "", lease.spec?.leaseTransitions ?? 0);
          } else {
            await res.body?.cancel();
            if (res.status !== 404) this.failedPolls++;
          }
          this.polls++;
        } catch {
          this.failedPolls++;
        }
        await new Promise((r) => setTimeout(r, Math.max(0, intervalMs - (Date.now() - at))));
      }
    })();
  }

  #record(at: number, holder: string, transitions: number): void {
    const last = this.runs.at(-1);
    if (last && last.holder === holder) last.to = at;
    else this.runs.push({ holder, from: at, to: at, transitions });
  }

  /** The holder last seen: "" when nobody holds it or before the first poll. */
  current(): string {
    return this.runs.at(-1)?.holder ?? "";
  }

  /**
   * Whether an identity starting with `prefix` may have held the Lease at `at`: some poll within
   * `toleranceMs` of it saw that holder, or the last holder seen before `at + toleranceMs` is it.
   */
  heldAt(prefix: string, at: number, toleranceMs: number): boolean {
    let lastBefore: HolderRun | undefined;
    for (const run of this.runs) {
      if (run.from > at + toleranceMs) break;
      lastBefore = run;
      if (run.holder.startsWith(prefix) && run.to >= at - toleranceMs) return true;
    }
    return lastBefore !== undefined && lastBefore.holder.startsWith(prefix);
  }

  /** Stops polling. */
  async stop(): Promise<void> {
    this.#stop = true;
    await this.#loop;
  }
}
