/**
 * The faults a cluster suffers, drawn at random: the leader killed with SIGKILL (its pod started again a few
 * steps later), the real Backrest killed and started again, a Backrest's config wiped behind the operator,
 * the path to a Backrest black-holed, slow or answering garbage (the recording proxy), the apiserver
 * restarted, and watches expired (etcd compacted, then the apiserver restarted, so every watch resumes
 * into a 410).
 * Every fault lasts a few steps (operations go on meanwhile), then is healed: a killed process is started
 * again, a proxy passes again; a wipe or a restart is over by then, its heal only ends the fault's spell.
 * Rules: a fault's parameters and its heal step are drawn when it is injected, and its target (a replica
 * slot's role, a Backrest, a proxy, the control plane) takes no other fault until healed and cooled down,
 * so which faults are eligible at a step depends on steps only; slow work (a process starting) runs in the
 * background and the next fault on the same target waits for it. A leader kill may also hold the replicas
 * for `leaderKillGapSteps` from the kill, so processes live long enough for their memory to be judged.
 */
import { GARBAGE_VARIANTS, type ProxyMode } from "./proxy.ts";
import type { Prng } from "./prng.ts";
import { SLOTS } from "./replicas.ts";
import type { World } from "./world.ts";

/** The kinds of fault. */
export const FAULT_KINDS = [
  "leader-kill",
  "backrest-kill",
  "backrest-wipe",
  "blackhole",
  "slow",
  "garbage",
  "apiserver-restart",
  "watch-expire",
] as const;
/** One kind of fault. */
export type FaultKind = typeof FAULT_KINDS[number];

type Target =
  | "replicas"
  | "real-process"
  | "standin-state"
  | "proxy-real"
  | "proxy-standin"
  | "control-plane";

const WEIGHTS: Record<FaultKind, number> = {
  "leader-kill": 3,
  "backrest-kill": 2,
  "backrest-wipe": 1.5,
  "blackhole": 2,
  "slow": 2,
  "garbage": 2,
  "apiserver-restart": 2,
  "watch-expire": 1.5,
};

/** Steps a target rests after its heal before it takes another fault. */
const COOLDOWN_STEPS = 3;

/** A fault injected; `detail` says what exactly. */
export interface FaultRecord {
  kind: FaultKind;
  detail: string;
  /** The step it is healed at (the quiet point heals whatever is still on). */
  healStep: number;
}

interface Active extends FaultRecord {
  target: Target;
  heal: () => Promise<void> | void;
}

/** The faults in force and the work in progress on each target. */
export class Faults {
  readonly #world: World;
  readonly #active: Active[] = [];
  /** The step from which each target takes faults again. */
  readonly #freeAt = new Map<Target, number>();
  readonly #pending = new Map<Target, Promise<unknown>>();
  /** Background work that failed (a replica that would not start): reported, and raised at the quiet point. */
  readonly errors: string[] = [];

  readonly #leaderKillGapSteps: number;

  /** `leaderKillGapSteps`: the fewest steps from one leader kill to the next (0: only the cool-down). */
  constructor(world: World, leaderKillGapSteps = 0) {
    this.#world = world;
    this.#leaderKillGapSteps = leaderKillGapSteps;
  }

  /** Kinds of the faults still in force. */
  active(): FaultKind[] {
    return this.#active.map((a) => a.kind);
  }

  #free(target: Target, step: number): boolean {
    return (this.#freeAt.get(target) ?? 0) <= step;
  }

  #background(target: Target, what: string, work: () => Promise<unknown>): void {
    const before = this.#pending.get(target) ?? Promise.resolve();
    const next = before.then(work).catch((e) => {
      this.errors.push(`${what}: ${e instanceof Error ? e.message.split("\n")[0] : e}`);
    });
    this.#pending.set(target, next);
  }

  /** Draws a fault among those whose target is free at `step`, and injects it; undefined when none is. */
  async inject(rng: Prng, step: number): Promise<FaultRecord | undefined> {
    const free = (t: Target) => this.#free(t, step);
    const proxies = (["proxy-real", "proxy-standin"] as const).filter(free);
    const wipeable = (["real-process", "standin-state"] as const).filter(free);
    const weights: Partial<Record<FaultKind, number>> = {
      "leader-kill": free("replicas") ? WEIGHTS["leader-kill"] : 0,
      "backrest-kill": free("real-process") ? WEIGHTS["backrest-kill"] : 0,
      "backrest-wipe": wipeable.length > 0 ? WEIGHTS["backrest-wipe"] : 0,
      "blackhole": proxies.length > 0 ? WEIGHTS.blackhole : 0,
      "slow": proxies.length > 0 ? WEIGHTS.slow : 0,
      "garbage": proxies.length > 0 ? WEIGHTS.garbage : 0,
      "apiserver-restart": free("control-plane") ? WEIGHTS["apiserver-restart"] : 0,
      "watch-expire": free("control-plane") ? WEIGHTS["watch-expire"] : 0,
    };
    const kind = rng.weighted(weights);
    if (!kind) return undefined;
    const w = this.#world;
    const add = (target: Target, heal: Active["heal"], healStep: number, detail: string): FaultRecord => {
      this.#active.push({ kind, target, heal, healStep, detail });
      this.#freeAt.set(target, healStep + COOLDOWN_STEPS);
      return { kind, detail, healStep };
    };
    switch (kind) {
      case "leader-kill": {
        const after = rng.int(1, 4);
        const fallback = rng.pick(SLOTS);
        await this.#pending.get("replicas");
        const leader = w.replicas.byIdentity(w.lease.current());
        const live = w.replicas.live();
        const slot = leader && !leader.ended ? leader.slot : live.find((i) => i.slot === fallback)?.slot ??
          live[0]?.slot;
        if (!slot) return add("replicas", () => {}, step, "no replica alive to kill");
        const killed = await w.replicas.kill(slot);
        const record = add(
          "replicas",
          () => {
            this.#background("replicas", `start of replica ${slot}`, () => w.replicas.start(slot));
          },
          step + after,
          `${killed?.identityPrefix ?? slot} (${
            leader ? "leader" : "no leader known"
          }), back after ${after} steps`,
        );
        this.#freeAt.set(
          "replicas",
          Math.max(this.#freeAt.get("replicas")!, step + this.#leaderKillGapSteps),
        );
        return record;
      }
      case "backrest-kill": {
        const after = rng.int(1, 5);
        await this.#pending.get("real-process");
        w.real.proc.child.kill("SIGKILL");
        await w.real.proc.exited;
        return add(
          "real-process",
          () => {
            this.#background("real-process", "restart of Backrest", () => w.real.restart());
          },
          step + after,
          `real Backrest, back after ${after} steps`,
        );
      }
      case "backrest-wipe": {
        const target = rng.pick(wipeable);
        const after = rng.int(1, 3);
        if (target === "real-process") {
          await this.#pending.get("real-process");
          w.model.ledgers.real.wiped();
          await w.real.restart({ emptyData: true });
          return add(
            target,
            () => {},
            step + after,
            "real Backrest restarted on an empty config and data dir",
          );
        }
        w.model.ledgers.standin.wiped();
        w.standin.clear();
        return add(target, () => {}, step + after, "stand-in forgot every repo");
      }
      case "blackhole":
      case "slow":
      case "garbage": {
        const target = rng.pick(proxies);
        const steps = rng.int(2, 10);
        const mode: ProxyMode = kind === "blackhole"
          ? { kind }
          : kind === "slow"
          ? { kind, delayMs: rng.int(300, 3000) }
          : { kind, variant: rng.pick(GARBAGE_VARIANTS) };
        const proxy = w.proxies[target === "proxy-real" ? "real" : "standin"];
        proxy.setMode(mode);
        return add(
          target,
          () => proxy.setMode({ kind: "pass" }),
          step + steps,
          `${proxy.name} ${JSON.stringify(mode)} for ${steps} steps`,
        );
      }
      case "apiserver-restart":
      case "watch-expire": {
        const after = rng.int(1, 3);
        await this.#pending.get("control-plane");
        this.#background("control-plane", kind, async () => {
          if (kind === "watch-expire") await w.cp.compactEtcd();
          await w.cp.restartApiserver();
        });
        return add(
          "control-plane",
          () => {},
          step + after,
          kind === "watch-expire" ? "etcd compacted, then the apiserver restarted" : "apiserver restarted",
        );
      }
    }
  }

  /** Heals the faults due at `step` (or all with `all`); returns the kinds healed. */
  heal(step: number, all = false): FaultKind[] {
    const healed: FaultKind[] = [];
    for (let i = 0; i < this.#active.length;) {
      const a = this.#active[i]!;
      if (all || a.healStep <= step) {
        void a.heal();
        this.#active.splice(i, 1);
        healed.push(a.kind);
        if (all) this.#freeAt.set(a.target, step + COOLDOWN_STEPS);
      } else i++;
    }
    return healed;
  }

  /** Waits for every background job (processes starting, the apiserver restarting). */
  async settled(): Promise<void> {
    await Promise.all([...this.#pending.values()]);
    await this.#world.replicas.settled();
  }
}
