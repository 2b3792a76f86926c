/**
 * The operations a cluster's users make, drawn at random: Secret edits and rotations, Bindings created,
 * edited (`idOverride`, `deletionPolicy`, repo settings) and deleted, VolSync objects deleted and created
 * again, auto-binding annotations flipped, generated Bindings tampered with, the OperatorConfig paused and
 * resumed and its policy changed, namespaces deleted and new ones made.
 * Rules: every draw happens before the operation's first request and none depends on what a request
 * returned, so a seed replays the same operations; the model is updated by the decision, not by its
 * effect. What a Binding had applied when it left an id (read from its status and from Backrest) only
 * decides which ids the checker expects to stay.
 */
import { BINDINGS } from "../../tests/harness/operator.ts";
import { kubeCall } from "./kube.ts";
import { type BindingModel, generated, type Ns, type Unit, unitId } from "./model.ts";
import type { Prng } from "./prng.ts";
import { CONFIG_NAME, OPT_IN, type World } from "./world.ts";

/** The kinds of operation. */
export const OP_KINDS = [
  "secret-edit",
  "secret-rotate",
  "binding-create",
  "binding-delete",
  "binding-edit-id",
  "binding-edit-deletion-policy",
  "binding-edit-settings",
  "volsync-recreate",
  "annotation-flip",
  "generated-tamper",
  "config-pause",
  "config-policy",
  "namespace-delete",
  "namespace-create",
] as const;
/** One kind of operation. */
export type OpKind = typeof OP_KINDS[number];

/** Relative weights of the kinds (before eligibility). */
const WEIGHTS: Record<OpKind, number> = {
  "secret-edit": 6,
  "secret-rotate": 3,
  "binding-create": 3,
  "binding-delete": 3,
  "binding-edit-id": 2,
  "binding-edit-deletion-policy": 2,
  "binding-edit-settings": 3,
  "volsync-recreate": 2,
  "annotation-flip": 4,
  "generated-tamper": 1,
  "config-pause": 1,
  "config-policy": 1.5,
  "namespace-delete": 0.4,
  "namespace-create": 0,
};

/** An operation chosen and done; `detail` names objects, never values. */
export interface OpRecord {
  kind: OpKind;
  detail: string;
}

/** Something the driver must do at a later step (undo a pause or a policy spell). */
export interface Scheduled {
  step: number;
  what: "resume" | "allowlist-lift" | "local-lift";
}

/** What an operation needs besides the world. */
export interface OpContext {
  world: World;
  rng: Prng;
  step: number;
  /** Schedules a later action. */
  schedule(s: Scheduled): void;
  /** Notes a config write that closes or opens the way to a proxy (for the checker's spells). */
  spell(kind: "pause" | "allowlist", state: "on" | "off", at: number): void;
  /** Called before a namespace is deleted (its Events go with it: the leak sweep reads them first). */
  beforeNamespaceDelete(ns: string): Promise<void>;
}

const OPT_IN_VALUES: readonly (string | undefined)[] = ["true", "false", undefined, "yes", "0"];
const FLAGS: readonly string[] = ["--compression=max", "--limit-upload=1000", "--no-cache", "--pack-size=16"];

/** A random `spec.repo` (besides `idOverride`): each setting present or not. */
export function randomSettings(rng: Prng): Record<string, unknown> {
  const s: Record<string, unknown> = {};
  if (rng.chance(0.5)) s.extraFlags = FLAGS.filter(() => rng.chance(0.5));
  if (rng.chance(0.5)) s.autoUnlock = rng.chance(0.5);
  if (rng.chance(0.3)) {
    s.prunePolicy = { schedule: { maxFrequencyDays: rng.int(1, 30) }, maxUnusedPercent: 25 };
  }
  if (rng.chance(0.3)) {
    s.checkPolicy = { schedule: { maxFrequencyDays: rng.int(7, 60) }, readDataSubsetPercent: rng.int(0, 10) };
  }
  if (rng.chance(0.3)) {
    s.forgetPolicy = {
      schedule: { maxFrequencyDays: rng.int(1, 7) },
      retention: { policyKeepLastN: rng.int(1, 30) },
    };
  }
  if (rng.chance(0.2)) s.commandPrefix = { ioNice: "IO_BEST_EFFORT_LOW", cpuNice: "CPU_LOW" };
  if (rng.chance(0.15)) s.envAllowlist = ["RESTIC_PACK_SIZE"];
  return s;
}

function bindingPath(ns: string, name = ""): string {
  return `${BINDINGS}/namespaces/${ns}/backrestvolsyncbindings${name ? `/${name}` : ""}`;
}

function volsyncPath(unit: Unit, named = true): string {
  const plural = unit.kind === "ReplicationSource" ? "replicationsources" : "replicationdestinations";
  return `/apis/volsync.backube/v1alpha1/namespaces/${unit.ns.name}/${plural}${
    named ? `/${unit.source}` : ""
  }`;
}

const MERGE = { contentType: "application/merge-patch+json" };

/**
 * Whether the Binding `name` reports `id` applied (Ready) and Backrest holds `id` right now: then it must
 * stay once the Binding leaves it (the operator leaves a repo behind when a Binding moves away or is
 * deleted with Retain). Anything less (not applied yet, another Binding's stale claim) decides nothing.
 */
async function applied(world: World, unit: Unit, name: string, id: string): Promise<boolean> {
  const { body } = await kubeCall(world.cp, "GET", bindingPath(unit.ns.name, name), undefined, { ok: [404] });
  const status = (body as { status?: Record<string, unknown> } | null)?.status;
  const conditions = (status?.conditions ?? []) as { type: string; status: string }[];
  if (status?.repoId !== id || !conditions.some((c) => c.type === "Ready" && c.status === "True")) {
    return false;
  }
  try {
    return unit.backrest === "real"
      ? (await world.real.getConfig()).repos.some((r) => r.id === id)
      : world.standin.repos.has(id);
  } catch {
    return false; // Backrest is down: nothing can be concluded
  }
}

/** The generated Binding's name for an auto unit. */
export function generatedName(unit: Unit): string {
  return `${unit.kind === "ReplicationSource" ? "bvsb-rs-" : "bvsb-rd-"}${unit.source}`;
}

/** Draws an eligible kind. */
export function drawOp(ctx: OpContext): OpKind | undefined {
  const m = ctx.world.model;
  const s = ctx.world.sizes;
  const hand = m.units("hand");
  const bound = hand.filter((u) => u.binding);
  const target = s.handNamespaces * (s.realPerNamespace + s.standinPerNamespace);
  const deficit = m.live("hand").length < s.handNamespaces || m.live("auto").length < s.autoNamespaces;
  const weights: Partial<Record<OpKind, number>> = { ...WEIGHTS };
  if (bound.length === 0) {
    for (
      const k of [
        "binding-delete",
        "binding-edit-id",
        "binding-edit-deletion-policy",
        "binding-edit-settings",
      ]
    ) {
      weights[k as OpKind] = 0;
    }
  }
  // Keep the population near its size: fewer Bindings, more creations; more, more deletions.
  weights["binding-create"] = bound.length < target ? 4 : 1;
  if (bound.length <= target * 0.6) weights["binding-delete"] = 0;
  if (m.units("auto").length === 0) {
    weights["annotation-flip"] = 0;
    weights["generated-tamper"] = 0;
  }
  if (m.config.paused) weights["config-pause"] = 0;
  if (deficit) weights["namespace-create"] = 3;
  // A namespace is deleted only while every role has its full count.
  if (deficit) weights["namespace-delete"] = 0;
  if (hand.length + m.units("auto").length === 0) {
    weights["secret-edit"] = 0;
    weights["secret-rotate"] = 0;
    weights["volsync-recreate"] = 0;
  }
  return ctx.rng.weighted(weights);
}

/** Does operation `kind` (drawn by {@linkcode drawOp}); returns what it did. */
export async function runOp(kind: OpKind, ctx: OpContext): Promise<OpRecord> {
  const { world, rng } = ctx;
  const m = world.model;
  const cp = world.cp;
  const all = [...m.units("hand"), ...m.units("auto")];
  const bound = m.units("hand").filter((u) => u.binding);
  switch (kind) {
    case "secret-edit": {
      const unit = rng.pick(all);
      const what = `${unit.ns.name}/${unit.secret}`;
      const key = world.secrets.add(`akid-${crypto.randomUUID()}`, `${what} AWS_ACCESS_KEY_ID`);
      await kubeCall(cp, "PATCH", `/api/v1/namespaces/${unit.ns.name}/secrets/${unit.secret}`, {
        stringData: { AWS_ACCESS_KEY_ID: key },
      }, MERGE);
      return { kind, detail: what };
    }
    case "secret-rotate": {
      const unit = rng.pick(all);
      const what = `${unit.ns.name}/${unit.secret}`;
      const loc = await world.location(unit.backrest, what);
      await kubeCall(cp, "PATCH", `/api/v1/namespaces/${unit.ns.name}/secrets/${unit.secret}`, {
        stringData: { RESTIC_REPOSITORY: loc.uri, RESTIC_PASSWORD: loc.password },
      }, MERGE);
      return { kind, detail: `${what} to a new ${unit.backrest} repository` };
    }
    case "binding-create": {
      const unbound = m.units("hand").filter((u) => !u.binding);
      const reuse = unbound.length > 0 && rng.chance(0.6);
      const settings = rng.chance(0.5) ? randomSettings(rng) : {};
      const deletionPolicy = rng.chance(0.5) ? "Remove" as const : "Retain" as const;
      const override = rng.chance(0.2);
      let unit: Unit;
      if (reuse) {
        unit = rng.pick(unbound);
      } else {
        const ns = rng.pick(m.live("hand"));
        const backrest = rng.chance(0.2) ? "real" as const : "standin" as const;
        const kind = rng.chance(0.25) ? "ReplicationDestination" as const : "ReplicationSource" as const;
        unit = await world.addUnit(ns, backrest, kind, false);
      }
      const b: BindingModel = {
        name: `b-${unit.n}-${unit.bindings++}`,
        idOverride: override ? m.nextOverride() : "",
        deletionPolicy,
        settings,
      };
      unit.binding = b;
      m.ledgers[unit.backrest].take(unitId(unit));
      await world.createBinding(unit);
      return { kind, detail: `${unit.ns.name}/${b.name} (${unit.backrest}, ${deletionPolicy})` };
    }
    case "binding-delete": {
      const unit = rng.pick(bound);
      const b = unit.binding!;
      const id = unitId(unit);
      unit.binding = undefined;
      const ledger = m.ledgers[unit.backrest];
      if (b.deletionPolicy === "Remove") ledger.removed(id);
      else ledger.leave(id, await applied(world, unit, b.name, id));
      await kubeCall(cp, "DELETE", bindingPath(unit.ns.name, b.name), undefined, { ok: [404] });
      return { kind, detail: `${unit.ns.name}/${b.name} (${b.deletionPolicy})` };
    }
    case "binding-edit-id": {
      const unit = rng.pick(bound);
      const b = unit.binding!;
      const next = b.idOverride !== "" && rng.chance(0.5) ? "" : m.nextOverride();
      const before = unitId(unit);
      const wasApplied = await applied(world, unit, b.name, before);
      b.idOverride = next;
      const ledger = m.ledgers[unit.backrest];
      ledger.leave(before, wasApplied);
      ledger.take(unitId(unit));
      await kubeCall(cp, "PATCH", bindingPath(unit.ns.name, b.name), {
        spec: { repo: { idOverride: next === "" ? null : next } },
      }, MERGE);
      return { kind, detail: `${unit.ns.name}/${b.name} to ${next === "" ? "the default id" : next}` };
    }
    case "binding-edit-deletion-policy": {
      const unit = rng.pick(bound);
      const b = unit.binding!;
      b.deletionPolicy = b.deletionPolicy === "Remove" ? "Retain" : "Remove";
      await kubeCall(cp, "PATCH", bindingPath(unit.ns.name, b.name), {
        spec: { deletionPolicy: b.deletionPolicy },
      }, MERGE);
      return { kind, detail: `${unit.ns.name}/${b.name} to ${b.deletionPolicy}` };
    }
    case "binding-edit-settings": {
      const unit = rng.pick(bound);
      const b = unit.binding!;
      const next = randomSettings(rng);
      // A merge patch: settings no longer wanted are set to null (removed).
      const repo: Record<string, unknown> = {};
      for (const k of Object.keys(b.settings)) repo[k] = null;
      Object.assign(repo, next);
      b.settings = next;
      await kubeCall(cp, "PATCH", bindingPath(unit.ns.name, b.name), { spec: { repo } }, MERGE);
      return { kind, detail: `${unit.ns.name}/${b.name}: ${Object.keys(next).join(",") || "none"}` };
    }
    case "volsync-recreate": {
      const unit = rng.pick(all);
      const pauseMs = rng.int(0, 2000);
      await kubeCall(cp, "DELETE", volsyncPath(unit), undefined, { ok: [404] });
      // Created again only once the old one is gone (a create before that would be refused).
      const deadline = Date.now() + 60_000;
      while (Date.now() < deadline) {
        const got = await kubeCall(cp, "GET", volsyncPath(unit), undefined, { ok: [404] });
        if (got.status === 404) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      await new Promise((r) => setTimeout(r, pauseMs));
      await world.createVolSync(unit);
      return { kind, detail: `${unit.ns.name}/${unit.kind}/${unit.source} (${pauseMs} ms away)` };
    }
    case "annotation-flip": {
      const unit = rng.pick(m.units("auto"));
      const choices = OPT_IN_VALUES.filter((v) => v !== unit.annotation);
      const next = rng.pick(choices);
      const was = generated(unit, m.config);
      const wasApplied = was && await applied(world, unit, generatedName(unit), unitId(unit));
      unit.annotation = next;
      const ledger = m.ledgers[unit.backrest];
      if (was && !generated(unit, m.config)) ledger.leave(unitId(unit), wasApplied);
      if (generated(unit, m.config)) ledger.take(unitId(unit));
      await kubeCall(cp, "PATCH", volsyncPath(unit), {
        metadata: { annotations: { [OPT_IN]: next ?? null } },
      }, MERGE);
      return { kind, detail: `${unit.ns.name}/${unit.source} to ${next ?? "(none)"}` };
    }
    case "generated-tamper": {
      const unit = rng.pick(m.units("auto"));
      const autoUnlock = rng.chance(0.5);
      // Put back by the operator; a Binding that is not there (not generated now) is left alone.
      const res = await kubeCall(cp, "PATCH", bindingPath(unit.ns.name, generatedName(unit)), {
        spec: { repo: { autoUnlock, extraFlags: ["--no-lock"] } },
      }, { ...MERGE, ok: [404] });
      return {
        kind,
        detail: `${unit.ns.name}/${generatedName(unit)}${res.status === 404 ? " (absent)" : ""}`,
      };
    }
    case "config-pause": {
      const steps = rng.int(2, 12);
      m.config.paused = true;
      await patchConfig(world, { paused: true });
      ctx.spell("pause", "on", Date.now());
      ctx.schedule({ step: ctx.step + steps, what: "resume" });
      return { kind, detail: `paused for ${steps} steps` };
    }
    case "config-policy": {
      const variant = rng.weighted({
        "generation-policy": 3,
        "default-repo": 2,
        "allowlist": 1,
        "local": 1,
      })!;
      const steps = rng.int(4, 30);
      switch (variant) {
        case "generation-policy": {
          const next = m.config.policy === "All" ? "Annotated" as const : "All" as const;
          await changeGeneration(world, () => m.config.policy = next);
          await patchConfig(world, { bindingGeneration: { policy: next } });
          return { kind, detail: `bindingGeneration.policy ${next}` };
        }
        case "default-repo": {
          const next: { autoUnlock?: boolean; extraFlags?: string[] } = rng.chance(0.5)
            ? {}
            : { autoUnlock: rng.chance(0.5), extraFlags: ["--no-cache"] };
          m.config.defaultRepo = next;
          await patchConfig(world, {
            bindingGeneration: {
              defaultRepo: { autoUnlock: next.autoUnlock ?? null, extraFlags: next.extraFlags ?? null },
            },
          });
          return { kind, detail: `defaultRepo ${JSON.stringify(next)}` };
        }
        case "allowlist": {
          if (m.config.allowlistRealOnly) return { kind, detail: "allowlist already restricted" };
          m.config.allowlistRealOnly = true;
          await patchConfig(world, { backrestURLAllowlist: [`${world.proxies.real.url}/`] });
          ctx.spell("allowlist", "on", Date.now());
          ctx.schedule({ step: ctx.step + steps, what: "allowlist-lift" });
          return { kind, detail: `only the real Backrest allowed for ${steps} steps` };
        }
        case "local": {
          if (m.config.localRefused) return { kind, detail: "loopback storage already refused" };
          m.config.localRefused = true;
          await patchConfig(world, { repositoryPolicy: { allowLocalAddresses: false } });
          ctx.schedule({ step: ctx.step + steps, what: "local-lift" });
          return { kind, detail: `loopback storage refused for ${steps} steps` };
        }
      }
      return { kind, detail: variant };
    }
    case "namespace-delete": {
      const role = rng.chance(0.75) ? "hand" as const : "auto" as const;
      const candidates = m.live(role);
      if (candidates.length === 0) return { kind, detail: `no ${role} namespace` };
      const ns = rng.pick(candidates);
      await ctx.beforeNamespaceDelete(ns.name);
      await deleteNamespace(world, ns);
      return { kind, detail: `${ns.name} (${role}, ${ns.units.length} units)` };
    }
    case "namespace-create": {
      const role = m.live("hand").length < world.sizes.handNamespaces ? "hand" as const : "auto" as const;
      const ns = await world.addNamespace(role);
      return { kind, detail: `${ns.name} (${role})` };
    }
  }
}

/** Merge-patches the OperatorConfig's spec. */
export async function patchConfig(world: World, spec: Record<string, unknown>): Promise<void> {
  await kubeCall(
    world.cp,
    "PATCH",
    `${BINDINGS}/namespaces/${world.cfgNs}/backrestvolsyncoperatorconfigs/${CONFIG_NAME}`,
    { spec },
    MERGE,
  );
}

/** Applies a change of the generation policy to the ledgers: ids no longer generated are left. */
async function changeGeneration(world: World, change: () => void): Promise<void> {
  const m = world.model;
  const units = m.units("auto");
  const before = units.map((u) => generated(u, m.config));
  const appliedNow = await Promise.all(
    units.map((u, i) => before[i] ? applied(world, u, generatedName(u), unitId(u)) : Promise.resolve(false)),
  );
  change();
  units.forEach((u, i) => {
    const now = generated(u, m.config);
    if (before[i] && !now) m.ledgers[u.backrest].leave(unitId(u), appliedNow[i]!);
    if (now) m.ledgers[u.backrest].take(unitId(u));
  });
}

/**
 * Deletes a namespace: its Bindings with Remove take their repos with them, the others (and the generated
 * ones, always Retain) leave them.
 */
export async function deleteNamespace(world: World, ns: Ns): Promise<void> {
  const m = world.model;
  for (const unit of ns.units) {
    if (ns.role === "hand" && unit.binding) {
      const id = unitId(unit);
      if (unit.binding.deletionPolicy === "Remove") m.ledgers[unit.backrest].removed(id);
      else m.ledgers[unit.backrest].leave(id, await applied(world, unit, unit.binding.name, id));
    } else if (generated(unit, m.config)) {
      m.ledgers[unit.backrest].leave(
        unitId(unit),
        await applied(world, unit, generatedName(unit), unitId(unit)),
      );
    }
  }
  ns.deleted = true;
  await kubeCall(world.cp, "DELETE", `/api/v1/namespaces/${ns.name}`, undefined, { ok: [404] });
}
