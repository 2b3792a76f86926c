/**
 * What the driver has done, as far as its choices need to know: namespaces, their VolSync objects and
 * Secrets ("units"), the Bindings it wrote, the OperatorConfig it wrote, and per Backrest a ledger of repo
 * ids. Rules: the model changes only by the driver's own decisions, never by what it observes, so the same
 * seed makes the same choices; the checker derives what Backrest must hold from the apiserver, and uses
 * the ledger only for what the apiserver no longer shows (deleted Bindings and ids a Binding moved away
 * from).
 */

/** The two Backrests. */
export type BackrestName = "real" | "standin";
/** VolSync kinds the soak creates. */
export type UnitKind = "ReplicationSource" | "ReplicationDestination";

/** A Binding the driver wrote (hand-written, in a `hand` namespace). */
export interface BindingModel {
  name: string;
  /** Empty: the default id. */
  idOverride: string;
  deletionPolicy: "Retain" | "Remove";
  /** `spec.repo` besides `idOverride`, in the CRD's JSON form. */
  settings: Record<string, unknown>;
}

/** A VolSync object with its repository Secret, and the Binding for it if any. */
export interface Unit {
  /** Unique over the run; names derive from it. */
  n: number;
  ns: Ns;
  kind: UnitKind;
  source: string;
  secret: string;
  /** The Backrest its Bindings name (auto units: the OperatorConfig's default, the stand-in). */
  backrest: BackrestName;
  binding: BindingModel | undefined;
  /** Bindings written for this unit so far (each gets a new name). */
  bindings: number;
  /** The opt-in annotation's value in an `auto` namespace; undefined when absent. */
  annotation: string | undefined;
}

/** A namespace of the soak. */
export interface Ns {
  n: number;
  name: string;
  /** `hand`: hand-written Bindings (objects opted out of generation); `auto`: generated Bindings only. */
  role: "hand" | "auto";
  units: Unit[];
  deleted: boolean;
}

/** The OperatorConfig spec as the driver last wrote it (the parts it changes). */
export interface ConfigModel {
  paused: boolean;
  policy: "Annotated" | "All";
  defaultRepo: Record<string, unknown>;
  /** Only the real Backrest's proxy is allowed (the stand-in's Bindings are refused). */
  allowlistRealOnly: boolean;
  /** Loopback storage (the real Backrest's rest-server) is refused. */
  localRefused: boolean;
}

/**
 * Repo ids of one Backrest beyond what live Bindings require: every id a Binding of the soak could have
 * applied (`known`), ids that must stay (a Binding applied them and then moved away or was deleted with
 * Retain), and ids that must be gone (a Binding holding them was deleted with Remove).
 */
export class Ledger {
  readonly known = new Set<string>();
  readonly mustRemain = new Set<string>();
  readonly mustBeGone = new Set<string>();

  /** A Binding takes (or may take) `id`. */
  take(id: string): void {
    this.known.add(id);
    this.mustRemain.delete(id);
    this.mustBeGone.delete(id);
  }

  /** A Binding left `id` (moved away, deleted with Retain, or no longer generated); `applied`: it was there. */
  leave(id: string, applied: boolean): void {
    if (applied) this.mustRemain.add(id);
  }

  /** A Binding holding `id` was deleted with Remove. */
  removed(id: string): void {
    this.mustRemain.delete(id);
    this.mustBeGone.add(id);
  }

  /** Backrest lost everything: nothing left behind can be expected any more. */
  wiped(): void {
    this.mustRemain.clear();
  }
}

/** The default repo id of a VolSync object, as the operator (and the Go prototype) compute it. */
export function defaultId(ns: string, kind: UnitKind, name: string): string {
  return `volsync-${ns}-${kind.toLowerCase()}-${name}`;
}

/** The id a unit's Binding applies. */
export function unitId(unit: Unit): string {
  const override = unit.binding?.idOverride ?? "";
  return override !== "" ? override : defaultId(unit.ns.name, unit.kind, unit.source);
}

/** Whether the config makes the operator generate a Binding for an `auto` unit. */
export function generated(unit: Unit, config: ConfigModel): boolean {
  if (unit.ns.deleted || unit.ns.role !== "auto") return false;
  const v = unit.annotation?.trim().toLowerCase();
  if (v === "false" || v === "0" || v === "no") return false;
  return config.policy === "All" || v === "true" || v === "1" || v === "yes";
}

/** The driver's whole model. */
export class Model {
  readonly namespaces: Ns[] = [];
  readonly ledgers: Record<BackrestName, Ledger> = { real: new Ledger(), standin: new Ledger() };
  config: ConfigModel = {
    paused: false,
    policy: "Annotated",
    defaultRepo: {},
    allowlistRealOnly: false,
    localRefused: false,
  };
  #units = 0;
  #overrides = 0;

  /** A new unit number. */
  nextUnit(): number {
    return this.#units++;
  }

  /** A repo id override never used before in the run. */
  nextOverride(): string {
    return `soak-override-${this.#overrides++}`;
  }

  /** Live namespaces of `role`. */
  live(role: Ns["role"]): Ns[] {
    return this.namespaces.filter((ns) => !ns.deleted && ns.role === role);
  }

  /** Units of live namespaces of `role`. */
  units(role: Ns["role"]): Unit[] {
    return this.live(role).flatMap((ns) => ns.units);
  }
}
