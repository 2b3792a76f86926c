/**
 * The operator's two replicas, each a separate process of the real `main.ts` with the run task's flags (the
 * compiled binary's permission set and V8 flags) and the image's ENV, started as in a pod (in-cluster mode:
 * a ServiceAccount token on a private /run, see bench/common.ts), leader election on. Each start of a slot
 * is an incarnation with its own pid and its own leader-election identity (`POD_NAME` =
 * `soak-<slot>-<incarnation>`, which main.ts prefixes to the identity). Rules: a replica killed by the soak
 * is started again only when the soak says so (a pod restarting after a delay); one that ends on its own
 * (it lost its Lease, as main.ts exits then) is started again after `restartDelayMs`, as the kubelet would.
 */
import { freePort, type Proc, waitUntil } from "../../tests/harness/process.ts";
import { startInClusterProgram } from "../common.ts";

/** The two replica slots. */
export type Slot = "a" | "b";
/** Both slots. */
export const SLOTS: readonly Slot[] = ["a", "b"];

/** One incarnation of a slot. */
export interface Incarnation {
  readonly slot: Slot;
  readonly n: number;
  /** The identity prefix it elects with (`soak-<slot>-<n>_`). */
  readonly identityPrefix: string;
  readonly proc: Proc;
  readonly pid: number;
  readonly metricsUrl: string;
  readonly startedAt: number;
  /** Set once the process has ended: `killed` by a fault, or `stopped` (SIGTERM) when the soak ended. */
  ended?: { at: number; code: number; signal: string | null; killed: boolean; stopped: boolean };
}

/** Options of {@linkcode Replicas}. */
export interface ReplicaOptions {
  /** The operator's namespace (OperatorConfig, Leases, the ServiceAccounts). */
  configNamespace: string;
  /** Extra flags for main.ts. */
  args: string[];
  /** Delay before a replica that ended on its own is started again. */
  restartDelayMs: number;
  /** Progress lines. */
  say: (msg: string) => void;
}

/** The replicas and their history. */
export class Replicas {
  readonly #o: ReplicaOptions;
  readonly #all: Incarnation[] = [];
  readonly #live = new Map<Slot, Incarnation>();
  readonly #starting = new Map<Slot, Promise<Incarnation>>();
  readonly #killing = new Set<number>();
  #stopping = false;
  /** Restarts of replicas that ended on their own, with their exit. */
  readonly selfExits: { slot: Slot; n: number; at: number; code: number }[] = [];

  /** Nothing starts until {@linkcode start}. */
  constructor(options: ReplicaOptions) {
    this.#o = options;
  }

  /** Every incarnation so far, live and ended, in start order. */
  all(): readonly Incarnation[] {
    return this.#all;
  }

  /** The live incarnations. */
  live(): Incarnation[] {
    return [...this.#live.values()];
  }

  /** Pids of every incarnation (for attributing connections; ended pids are harmless). */
  pids(): number[] {
    return this.#all.filter((i) => !i.ended).map((i) => i.pid);
  }

  /** The incarnation with `pid`. */
  byPid(pid: number): Incarnation | undefined {
    return this.#all.find((i) => i.pid === pid);
  }

  /** The incarnation whose identity `holder` is. */
  byIdentity(holder: string): Incarnation | undefined {
    return this.#all.find((i) => holder.startsWith(i.identityPrefix));
  }

  /** Starts `slot` (a new incarnation) and resolves once it reports ready; one start per slot at a time. */
  start(slot: Slot): Promise<Incarnation> {
    const pending = this.#starting.get(slot);
    if (pending) return pending;
    const started = this.#start(slot).finally(() => this.#starting.delete(slot));
    this.#starting.set(slot, started);
    return started;
  }

  async #start(slot: Slot): Promise<Incarnation> {
    const n = this.#all.filter((i) => i.slot === slot).length;
    const name = `soak-${slot}-${n}`;
    const metricsPort = freePort();
    const probePort = freePort();
    for (let attempt = 1;; attempt++) {
      let proc: Proc | undefined;
      try {
        proc = await startInClusterProgram({
          name,
          namespace: this.#o.configNamespace,
          entry: "main.ts",
          env: { POD_NAME: name },
          args: [
            `--operator-config-namespace=${this.#o.configNamespace}`,
            `--metrics-bind-address=127.0.0.1:${metricsPort}`,
            `--health-probe-bind-address=127.0.0.1:${probePort}`,
            ...this.#o.args,
          ],
        });
        const inc: Incarnation = {
          slot,
          n,
          identityPrefix: `${name}_`,
          proc,
          pid: proc.child.pid,
          metricsUrl: `http://127.0.0.1:${metricsPort}`,
          startedAt: Date.now(),
        };
        this.#all.push(inc);
        this.#live.set(slot, inc);
        void proc.exited.then((status) => this.#ended(inc, status));
        await waitUntil(`${name} /readyz`, async () => {
          const res = await fetch(`http://127.0.0.1:${probePort}/readyz`);
          await res.body?.cancel();
          return res.ok;
        }, { proc, timeoutMs: 120_000, intervalMs: 100 });
        return inc;
      } catch (e) {
        // The apiserver may be restarting (the token request fails, or the caches cannot sync yet).
        if (proc) await proc.kill();
        if (attempt >= 5 || this.#stopping) throw e;
        this.#o.say(
          `replica ${name} did not start (${e instanceof Error ? e.message.split("\n")[0] : e}); again`,
        );
        await new Promise((r) => setTimeout(r, 2000));
      }
    }
  }

  #ended(inc: Incarnation, status: Deno.CommandStatus): void {
    const killed = this.#killing.delete(inc.pid) && !this.#stopping;
    const stopped = this.#stopping;
    inc.ended = { at: Date.now(), code: status.code, signal: status.signal, killed, stopped };
    if (this.#live.get(inc.slot) === inc) this.#live.delete(inc.slot);
    if (killed || stopped) return;
    this.selfExits.push({ slot: inc.slot, n: inc.n, at: inc.ended.at, code: status.code });
    this.#o.say(`replica ${inc.identityPrefix} ended on its own (code ${status.code}); restarting it`);
    setTimeout(() => {
      if (!this.#stopping && !this.#live.has(inc.slot)) void this.start(inc.slot).catch(() => {});
    }, this.#o.restartDelayMs);
  }

  /** SIGKILL of the live incarnation of `slot`; resolves once it is gone. */
  async kill(slot: Slot): Promise<Incarnation | undefined> {
    const inc = this.#live.get(slot);
    if (!inc) return undefined;
    this.#killing.add(inc.pid);
    await inc.proc.kill();
    return inc;
  }

  /** Waits for starts in progress. */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.#starting.values()]);
  }

  /** SIGTERM to every live replica; the exit codes by identity. */
  async stop(): Promise<Record<string, number>> {
    this.#stopping = true;
    await this.settled();
    const codes: Record<string, number> = {};
    await Promise.all(
      this.live().map(async (inc) => {
        this.#killing.add(inc.pid);
        await inc.proc.stop(20_000);
        codes[inc.identityPrefix] = (await inc.proc.exited).code;
      }),
    );
    return codes;
  }
}
