/**
 * A Binding's status and Events from the outcome of a reconcile. Rules: an outcome is our words only
 * (reasons, key names, hashes; never a Secret value or Backrest's text); the status is written only when it
 * differs from what the object holds (our own write's watch event then wakes nothing: own_writes.ts); an
 * Event is recorded when Ready's status or reason changes, not on every retry.
 */
import { sha256 } from "../sha256.ts";
import {
  type BindingStatus,
  type Condition,
  ConditionType,
  findCondition,
  Reason,
  setCondition,
} from "../api/mod.ts";
import { isRecord, type KubeClient, type KubeObject, objectKey } from "../kube/mod.ts";
import type { OwnWrites } from "./own_writes.ts";
import { bindingType } from "./resources.ts";
import { sameJSON } from "../json.ts";

/** Where Events go (the aggregating recorder in production, a list in unit tests). */
export interface EventSink {
  /** Records an Event about `obj`; must neither block nor throw (the recorder writes later). */
  record(obj: KubeObject, type: "Normal" | "Warning", reason: string, message: string): void;
}

/** What a reconcile step reports; `ready: true` only when the repo is registered. */
export interface Outcome {
  /** Ready's status. */
  ready: boolean;
  /** Ready's reason (a `Reason` value). */
  reason: string;
  /** Ready's message: our words, never a Secret value or Backrest's text. */
  message: string;
  /** The step conditions this outcome settles (undefined: left as they are): SourceResolved. */
  sourceResolved?: boolean;
  /** SecretResolved. */
  secretResolved?: boolean;
  /** Applied. */
  applied?: boolean;
  /** The text behind a failure (ours), hashed into `lastErrorHash`. */
  error?: string;
}

/** Status fields to set besides the conditions (`undefined`: remove). */
export type StatusExtra = { [K in keyof BindingStatus]?: BindingStatus[K] | undefined };

/** What status building needs of a Binding (an unparseable one has only this). */
export interface StatusOwner {
  metadata: { generation?: number | undefined };
  status: BindingStatus;
}

/** sha256 hex of an error text (the prototype's `lastErrorHash`). */
export function errorHash(text: string): string {
  return sha256().update(text).digest("hex");
}

/** The Ready message of an applied Binding, naming Secret keys that were not passed (key names only). */
export function appliedMessage(ignored: readonly string[]): string {
  // The same text for every Binding without left-out keys (the id is in status.repoId): thousands of
  // Bindings share one copy.
  const base = "The repo is registered in Backrest (see status.repoId)";
  if (ignored.length === 0) return base;
  const shown = ignored.slice(0, 10).join(", ") +
    (ignored.length > 10 ? ` and ${ignored.length - 10} more` : "");
  return `${base}; Secret keys not passed to restic (VolSync's restic mover does not pass them, or they ` +
    `name files in Backrest's pod): ${shown}`;
}

/** Drops `undefined` members so a status compares equal to its JSON round-trip. */
function canonical(v: unknown): Record<string, unknown> {
  const out: unknown = JSON.parse(JSON.stringify(v ?? {}));
  return isRecord(out) ? out : {};
}

/** Writes outcomes into Bindings' status and Events. */
export interface StatusWriter {
  /** The status `outcome` gives `b` (conditions set at `now`), without writing it. */
  statusWith(b: StatusOwner, outcome: Outcome): BindingStatus;
  /** Records the Event (on a transition) and writes the status with `extra` (when it changed). */
  report(
    obj: KubeObject,
    b: StatusOwner,
    outcome: Outcome,
    signal: AbortSignal,
    extra?: StatusExtra,
  ): Promise<void>;
}

/** A {@linkcode StatusWriter} over `kube`. */
export function statusWriter(deps: {
  kube: KubeClient;
  events: EventSink;
  ownWrites?: Pick<OwnWrites, "writing" | "wrote" | "failed"> | undefined;
  /** Told each Binding's Ready outcome (the `backrest_volsync_binding_ready` metric). */
  readiness?: { set(namespace: string, name: string, ready: boolean, reason: string): void } | undefined;
  now: () => Date;
}): StatusWriter {
  async function write(obj: KubeObject, next: object, signal: AbortSignal): Promise<void> {
    const before = canonical(isRecord(obj.status) ? obj.status : {});
    const after = canonical(next);
    if (sameJSON(before, after)) return;
    const patch: Record<string, unknown> = { ...after };
    for (const k of Object.keys(before)) if (!(k in after)) patch[k] = null;
    const key = objectKey(obj);
    deps.ownWrites?.writing(key, after);
    let answer: KubeObject;
    try {
      answer = await deps.kube.patchStatus(bindingType, obj.metadata.name ?? "", { status: patch }, {
        namespace: obj.metadata.namespace,
        signal,
      });
    } catch (e) {
      deps.ownWrites?.failed(key);
      throw e;
    }
    deps.ownWrites?.wrote(key, answer);
  }

  function statusWith(b: StatusOwner, outcome: Outcome): BindingStatus {
    const t = deps.now();
    const gen = b.metadata.generation;
    let conditions: Condition[] = b.status.conditions;
    const cond = (type: string, ok: boolean | undefined, reason: string, message: string) => {
      if (ok === undefined) return;
      conditions = setCondition(conditions, {
        type,
        status: ok ? "True" : "False",
        reason,
        message,
        ...(gen !== undefined ? { observedGeneration: gen } : {}),
      }, t);
    };
    cond(ConditionType.Ready, outcome.ready, outcome.reason, outcome.message);
    cond(
      ConditionType.SourceResolved,
      outcome.sourceResolved,
      outcome.sourceResolved ? Reason.Resolved : outcome.reason,
      outcome.sourceResolved ? "VolSync object found with a restic repository" : outcome.message,
    );
    cond(
      ConditionType.SecretResolved,
      outcome.secretResolved,
      outcome.secretResolved ? Reason.Resolved : outcome.reason,
      outcome.secretResolved ? "Repository Secret read and mapped" : outcome.message,
    );
    cond(
      ConditionType.Applied,
      outcome.applied,
      outcome.applied ? Reason.Applied : outcome.reason,
      outcome.applied ? "Repo registered in Backrest" : outcome.message,
    );
    const status: BindingStatus = { ...b.status, conditions };
    if (gen !== undefined) status.observedGeneration = gen;
    if (outcome.error !== undefined) status.lastErrorHash = errorHash(outcome.error);
    else if (outcome.ready) delete status.lastErrorHash;
    return status;
  }

  return {
    statusWith,
    async report(obj, b, outcome, signal, extra = {}) {
      const before = findCondition(b.status.conditions, ConditionType.Ready);
      if (!before || before.reason !== outcome.reason || (before.status === "True") !== outcome.ready) {
        deps.events.record(obj, outcome.ready ? "Normal" : "Warning", outcome.reason, outcome.message);
      }
      deps.readiness?.set(
        obj.metadata.namespace ?? "",
        obj.metadata.name ?? "",
        outcome.ready,
        outcome.reason,
      );
      await write(obj, { ...statusWith(b, outcome), ...extra }, signal);
    },
  };
}
