/**
 * The Binding reconciler: VolSync object + its repository Secret (+ auth Secret) -> the desired Backrest
 * repo -> AddRepo when anything changed -> status, Events, one log line. Rules:
 * - It reads the Binding and VolSync objects from the caches and Secrets with a GET (caches hold no
 *   Secret data); it never trusts the event that woke it.
 * - Backrest is called only when the desired repo's hash differs from the last applied one, the last
 *   attempt failed, or drift repair found the repo missing; never while paused.
 * - A problem the user must fix ends the reconcile (the watch brings it back when an input changes);
 *   a problem that may pass (Backrest down, deadline) writes status, then throws to retry with backoff.
 * - No Secret value reaches status, Events, logs or errors: they carry key names, reasons and hashes;
 *   nor does Backrest's own error text (it can echo Backrest's environment): status and Events carry our
 *   words and Backrest's error code, the scrubbed text goes to a debug log line.
 * - A repo id is applied only by the Binding holding its claim (claims.ts), and removed only by it, on the
 *   URL it applied it to. An id that exists in Backrest but that no Binding applied is not taken unless
 *   the Binding may adopt it.
 */
import { createHash } from "node:crypto";
import {
  backrestURLAllowed,
  type Binding,
  type BindingStatus,
  canonicalBackrestURL,
  completedSyncMarker,
  type Condition,
  ConditionType,
  defaultRepoId,
  FINALIZER_REMOVE_REPO,
  findCondition,
  formatErrors,
  formatTime,
  hasCustomCA,
  isConditionTrue,
  parseBinding,
  parseVolSyncObject,
  Reason,
  repoIdOf,
  repositorySecretName,
  setCondition,
  type VolSyncObject,
} from "../api/mod.ts";
import {
  authFingerprint,
  authFromSecret,
  type BackrestApi,
  type BackrestAuth,
  type BackrestConnection,
  BackrestError,
  describeFailure,
  type DesiredRepo,
  desiredRepo,
  REFUSED,
  RepoMappingError,
} from "../backrest/mod.ts";
import { isRecord, type KubeClient, KubeError, type KubeObject, secrets } from "../kube/mod.ts";
import { type Action, done, type ReconcileContext, requeueAfter, type Store } from "../runtime/mod.ts";
import type { Claim, Holder, RepoClaims } from "./claims.ts";
import { bindingType } from "./resources.ts";
import type { OwnWrites } from "./own_writes.ts";
import type { RepoListings } from "./repo_listings.ts";
import { sameJSON } from "./same.ts";
import type { OperatorSettings } from "./settings.ts";

/** Where Events go (the aggregating recorder in production, a list in unit tests). */
export interface EventSink {
  record(obj: KubeObject, type: "Normal" | "Warning", reason: string, message: string): void;
}

/** Which repos drift repair found missing from their Backrest. */
export interface DriftState {
  /** True when the Binding's repo was found missing in Backrest since it was last applied. */
  isMissing(bindingKey: string): boolean;
  /** The repo is in Backrest now (just applied). */
  markPresent(bindingKey: string): void;
}

/** The repo id ledger as the reconciler uses it (claims.ts; a map in unit tests). */
export type ClaimLedger = Pick<RepoClaims, "get" | "heldBy" | "acquire" | "release">;

/** What the Binding reconciler needs, injected. */
export interface BindingReconcilerDeps {
  kube: KubeClient;
  /** Cache of Bindings (full objects). */
  bindings: Store<KubeObject>;
  /** Caches of VolSync objects by kind. */
  replicationSources: Store<KubeObject>;
  replicationDestinations: Store<KubeObject>;
  settings: () => OperatorSettings;
  /** A (pooled) Backrest client for a connection. */
  backrest: (connection: BackrestConnection) => BackrestApi;
  events: EventSink;
  drift: DriftState;
  /** Who holds each repo id. */
  claims: ClaimLedger;
  /** Which ids each Backrest holds (shared listings) and the credentials that reach it. */
  listings: Pick<RepoListings, "ids" | "remember">;
  /** Told of each status write, so the watch event it causes wakes nothing (see own_writes.ts). */
  ownWrites?: Pick<OwnWrites, "writing" | "failed">;
  /** Deadline of each Backrest call (AddRepo runs restic on the server). */
  backrestTimeoutMs?: number;
  /** Whether calls to a Backrest URL are being refused (its breaker is open); default: never. */
  backrestRefusing?: (url: string) => boolean;
  now?: () => Date;
}

/** Index of Bindings by the repo id they ask for (one id has one owner across every Backrest). */
export const INDEX_BY_REPO = "byRepo";
/** Index of Bindings by their VolSync object: `<namespace>/<Kind>/<name>`. */
export const INDEX_BY_SOURCE = "bySource";
/** Index of Bindings by their auth Secret: `<namespace>/<name>`. */
export const INDEX_BY_AUTH_SECRET = "byAuthSecret";
/** Index of VolSync objects by their repository Secret: `<namespace>/<name>`. */
export const INDEX_BY_REPOSITORY_SECRET = "byRepositorySecret";

/** Index functions for the Binding cache. */
export const bindingIndexers = {
  [INDEX_BY_REPO]: (obj: KubeObject): string[] => {
    const parsed = parseBinding(obj);
    if (!parsed.ok) return [];
    return [repoIdOf(parsed.value)];
  },
  [INDEX_BY_SOURCE]: (obj: KubeObject): string[] => {
    const spec = isRecord(obj.spec) ? obj.spec : undefined;
    const source = spec && isRecord(spec.source) ? spec.source : undefined;
    if (!source || typeof source.kind !== "string" || typeof source.name !== "string") return [];
    return [`${obj.metadata.namespace}/${source.kind}/${source.name}`];
  },
  [INDEX_BY_AUTH_SECRET]: (obj: KubeObject): string[] => {
    const spec = isRecord(obj.spec) ? obj.spec : undefined;
    const backrest = spec && isRecord(spec.backrest) ? spec.backrest : undefined;
    const authRef = backrest && isRecord(backrest.authRef) ? backrest.authRef : undefined;
    return authRef && typeof authRef.name === "string" && authRef.name
      ? [`${obj.metadata.namespace}/${authRef.name}`]
      : [];
  },
};

/** Index functions for the VolSync caches. */
export const volsyncIndexers = {
  [INDEX_BY_REPOSITORY_SECRET]: (obj: KubeObject): string[] => {
    const spec = isRecord(obj.spec) ? obj.spec : undefined;
    const restic = spec && isRecord(spec.restic) ? spec.restic : undefined;
    return restic && typeof restic.repository === "string" && restic.repository
      ? [`${obj.metadata.namespace}/${restic.repository}`]
      : [];
  },
};

const NOT_INITIALIZED_RECHECK_MS = [15_000, 30_000, 60_000, 120_000, 300_000, 600_000];
/** How old a listing may be when it decides whether an id already exists in Backrest. */
const LISTING_MAX_AGE_MS = 5_000;
/** When an id that exists in Backrest unowned is asked for again (it may have been removed meanwhile). */
const EXISTS_RECHECK_MS = 300_000;

/**
 * Whether `id` reads as another namespace's default id (`volsync-<namespace>-<kind>-<name>` with a
 * namespace other than `namespace`): an idOverride may not squat on ids that are another namespace's by
 * name. Every way of reading it counts (namespaces and names may both contain the kind's word).
 */
export function foreignDefaultId(id: string, namespace: string): boolean {
  if (!id.startsWith("volsync-")) return false;
  for (const kind of ["-replicationsource-", "-replicationdestination-"]) {
    for (let at = id.indexOf(kind); at >= 0; at = id.indexOf(kind, at + 1)) {
      const ns = id.slice("volsync-".length, at);
      if (ns !== "" && ns !== namespace && at + kind.length < id.length) return true;
    }
  }
  return false;
}

/** Thrown after status was written, so the runtime retries with backoff. Carries no Secret data. */
export class RetryableError extends Error {
  override readonly name = "RetryableError";
}

/** Reading a Secret failed for a reason other than its absence (RBAC, apiserver trouble): retried. */
class SecretReadError extends Error {
  override readonly name = "SecretReadError";
}

/** sha256 hex of an error text (the prototype's `lastErrorHash`). */
export function errorHash(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

/** Status fields to set (`undefined`: remove). */
type StatusExtra = { [K in keyof BindingStatus]?: BindingStatus[K] | undefined };

/** What status building needs of a Binding (an unparseable one has only this). */
interface StatusOwner {
  metadata: { generation?: number | undefined };
  status: BindingStatus;
}

/** A step's outcome, written into status. */
interface Outcome {
  ready: boolean;
  reason: string;
  message: string;
  sourceResolved?: boolean;
  secretResolved?: boolean;
  applied?: boolean;
  /** The error text behind a failure, hashed into `lastErrorHash`. */
  error?: string;
}

/** Builds the reconcile function. */
export function bindingReconciler(
  deps: BindingReconcilerDeps,
): (key: string, ctx: ReconcileContext) => Promise<Action> {
  const now = deps.now ?? (() => new Date());
  const notInitializedAttempts = new Map<string, number>();
  const timeoutMs = deps.backrestTimeoutMs ?? 120_000;

  /** Writes `next` as the status when it differs from what the object holds. */
  async function writeStatus(obj: KubeObject, previous: unknown, next: object, signal: AbortSignal) {
    const before = canonical(isRecord(previous) ? previous : {});
    const after = canonical(next);
    if (sameJSON(before, after)) return;
    const patch: Record<string, unknown> = { ...after };
    for (const k of Object.keys(before)) if (!(k in after)) patch[k] = null;
    const key = `${obj.metadata.namespace}/${obj.metadata.name}`;
    deps.ownWrites?.writing(key, after);
    try {
      await deps.kube.patchStatus(bindingType, obj.metadata.name ?? "", { status: patch }, {
        namespace: obj.metadata.namespace,
        signal,
      });
    } catch (e) {
      deps.ownWrites?.failed(key);
      throw e;
    }
  }

  function statusWith(b: StatusOwner, outcome: Outcome): BindingStatus {
    const t = now();
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

  /** Records an Event when the Ready condition's status or reason changes. */
  function eventOnTransition(obj: KubeObject, before: Condition | undefined, outcome: Outcome) {
    if (before && before.reason === outcome.reason && (before.status === "True") === outcome.ready) return;
    deps.events.record(obj, outcome.ready ? "Normal" : "Warning", outcome.reason, outcome.message);
  }

  async function finish(
    obj: KubeObject,
    b: StatusOwner,
    outcome: Outcome,
    ctx: ReconcileContext,
    extra: StatusExtra = {},
  ): Promise<void> {
    const next = { ...statusWith(b, outcome), ...extra };
    eventOnTransition(obj, findCondition(b.status.conditions, ConditionType.Ready), outcome);
    await writeStatus(obj, obj.status, next, ctx.signal);
  }

  async function readSecretData(
    namespace: string,
    name: string,
    signal: AbortSignal,
  ): Promise<Record<string, Uint8Array> | null> {
    let secret: KubeObject | null;
    try {
      secret = await deps.kube.get(secrets, name, { namespace, signal });
    } catch (e) {
      if (!(e instanceof KubeError) || signal.aborted) throw e;
      throw new SecretReadError(
        `cannot read Secret ${namespace}/${name}: ${e.status} ${e.reason}; check the operator's RBAC`,
        { cause: e },
      );
    }
    if (!secret) return null;
    const data: Record<string, Uint8Array> = {};
    if (isRecord(secret.data)) {
      for (const [k, v] of Object.entries(secret.data)) {
        if (typeof v !== "string") continue;
        data[k] = Uint8Array.from(atob(v), (c) => c.charCodeAt(0));
      }
    }
    return data;
  }

  /**
   * The auth for calls from `b` to `url`: its own authRef, else the operator's default credentials, but
   * only when `url` is the default Backrest URL (they are never sent anywhere else).
   */
  async function resolveAuth(
    b: Binding,
    settings: OperatorSettings,
    url: string,
    signal: AbortSignal,
  ): Promise<{ auth: BackrestAuth } | { problem: string }> {
    let namespace = b.metadata.namespace ?? "";
    let name = b.spec.backrest.authRef?.name;
    const dflt = settings.spec.defaultBackrest;
    if (!name && dflt.authRef?.name && dflt.url && canonicalBackrestURL(dflt.url) === url) {
      namespace = settings.configNamespace;
      name = dflt.authRef.name;
    }
    if (!name) return { auth: { kind: "none" } };
    const data = await readSecretData(namespace, name, signal);
    if (!data) return { problem: `auth Secret ${namespace}/${name} not found` };
    try {
      return { auth: authFromSecret(data) };
    } catch (e) {
      if (e instanceof BackrestError) return { problem: `auth Secret ${namespace}/${name}: ${e.message}` };
      throw e;
    }
  }

  function classifyBackrest(
    e: BackrestError,
    verb: string,
  ): { reason: string; message: string; retry: boolean } {
    switch (e.kind) {
      case "unauthenticated":
        return {
          reason: Reason.BackrestAuthInvalid,
          message: `Backrest refused the credentials (${verb}): check spec.backrest.authRef`,
          retry: true,
        };
      case "unavailable":
      case "deadline":
        return {
          reason: Reason.BackrestUnreachable,
          message: `Backrest did not answer ${verb} (${e.kind}); retrying with backoff. ${
            describeFailure(e)
          }`,
          retry: true,
        };
      case "unsupported":
        return {
          reason: Reason.BackrestUnsupported,
          message: `this Backrest cannot be used (needs v1.12.0 or newer). ${describeFailure(e)}`,
          retry: false,
        };
      case "invalid":
        return {
          reason: Reason.BackrestAddRepoFailed,
          message: `Backrest rejected ${verb} as invalid: ${describeFailure(e)}`,
          retry: false,
        };
      default:
        return { reason: Reason.BackrestAddRepoFailed, message: describeFailure(e), retry: true };
    }
  }

  async function handleDeletion(
    obj: KubeObject,
    b: Binding,
    key: string,
    ctx: ReconcileContext,
  ): Promise<Action> {
    const finalizers = obj.metadata.finalizers ?? [];
    if (!finalizers.includes(FINALIZER_REMOVE_REPO)) return done;
    const settings = deps.settings();
    // Only what this Binding holds now, on the URL it applied it to: neither the spec nor the status
    // (writable by others) can aim RemoveRepo at someone else's repo.
    const held = deps.claims.heldBy(key).filter((c) => c.holder.uid === b.metadata.uid);
    if (b.spec.deletionPolicy === "Remove") {
      for (const claim of held) {
        if (claim.url === undefined) continue;
        if (settings.spec.paused) {
          await finish(obj, b, {
            ready: false,
            reason: settings.halted ? Reason.OperatorConfigInvalid : Reason.Paused,
            message: `${settings.halted ?? "Paused"}: the repo is removed once the operator is resumed`,
          }, ctx);
          return done;
        }
        if (!backrestURLAllowed(claim.url, settings.spec.backrestURLAllowlist)) {
          await finish(obj, b, {
            ready: false,
            reason: Reason.RemoveFailed,
            message: "the Backrest URL the repo was applied to is not in the OperatorConfig's " +
              "backrestURLAllowlist any more; allow it again, or set spec.deletionPolicy to Retain to let go",
          }, ctx);
          return done;
        }
        const auth = await resolveAuth(b, settings, claim.url, ctx.signal);
        if ("problem" in auth) {
          await finish(obj, b, {
            ready: false,
            reason: Reason.RemoveFailed,
            message: `cannot remove the repo: ${auth.problem}`,
          }, ctx);
          throw new RetryableError(auth.problem);
        }
        const api = deps.backrest({ url: claim.url, auth: auth.auth, timeoutMs });
        try {
          await api.removeRepo(claim.id, { signal: ctx.signal });
        } catch (e) {
          if (!(e instanceof BackrestError)) throw e;
          const message = `Backrest did not remove repo ${claim.id}: ${describeFailure(e)}. ` +
            "Fix the cause (e.g. a plan still uses the repo) or set spec.deletionPolicy to Retain to let go";
          ctx.log.debug("RemoveRepo failed", { repoId: claim.id, backrestText: e.message });
          await finish(obj, b, { ready: false, reason: Reason.RemoveFailed, message, error: message }, ctx);
          throw new RetryableError(`RemoveRepo failed (${e.kind})`);
        }
        deps.events.record(obj, "Normal", Reason.Removing, `Removed repo ${claim.id} from Backrest`);
        ctx.log.info("Backrest repo removed", { repoId: claim.id });
      }
    }
    for (const claim of held) await deps.claims.release(claim, ctx.signal);
    await dropFinalizer(obj, ctx.signal);
    return done;
  }

  async function dropFinalizer(obj: KubeObject, signal: AbortSignal): Promise<void> {
    await deps.kube.patch(bindingType, obj.metadata.name ?? "", {
      metadata: {
        finalizers: (obj.metadata.finalizers ?? []).filter((f) => f !== FINALIZER_REMOVE_REPO),
        resourceVersion: obj.metadata.resourceVersion,
      },
    }, { namespace: obj.metadata.namespace, signal });
  }

  /** Gives up the claims of a Binding that is gone (or of an earlier object of the same name). */
  async function releaseClaimsOf(
    key: string,
    keepUid: string | undefined,
    signal: AbortSignal,
  ): Promise<void> {
    for (const claim of deps.claims.heldBy(key)) {
      if (claim.holder.uid !== keepUid) await deps.claims.release(claim, signal);
    }
  }

  async function ensureFinalizer(obj: KubeObject, b: Binding, signal: AbortSignal): Promise<boolean> {
    const finalizers = obj.metadata.finalizers ?? [];
    const has = finalizers.includes(FINALIZER_REMOVE_REPO);
    const want = b.spec.deletionPolicy === "Remove";
    if (has === want) return false;
    await deps.kube.patch(bindingType, obj.metadata.name ?? "", {
      metadata: {
        finalizers: want
          ? [...finalizers, FINALIZER_REMOVE_REPO]
          : finalizers.filter((f) => f !== FINALIZER_REMOVE_REPO),
        resourceVersion: obj.metadata.resourceVersion,
      },
    }, { namespace: obj.metadata.namespace, signal });
    return true;
  }

  /** DoRepoTask INDEX_SNAPSHOTS then STATS once per completed sync (ReplicationSource only). */
  async function snapshotTasks(
    b: Binding,
    source: VolSyncObject,
    api: BackrestApi,
    repoId: string,
    ctx: ReconcileContext,
  ): Promise<StatusExtra> {
    if (!b.spec.repo.triggerTasksOnSnapshot || source.kind !== "ReplicationSource") return {};
    const marker = completedSyncMarker(source);
    if (!marker) return {};
    const seen: StatusExtra = {
      lastSnapshotMarker: marker.marker,
      lastSnapshotSyncTime: marker.syncTime,
    };
    if (b.status.lastIndexedSnapshotMarker === marker.marker) return seen;
    const t = formatTime(now());
    try {
      await api.doRepoTask(repoId, "index_snapshots", { signal: ctx.signal });
      await api.doRepoTask(repoId, "stats", { signal: ctx.signal });
    } catch (e) {
      if (!(e instanceof BackrestError)) throw e;
      return { ...seen, lastRepoTaskTriggerTime: t, lastRepoTaskErrorHash: errorHash(e.message) };
    }
    ctx.log.info("Backrest repo tasks triggered", { repoId, marker: marker.marker });
    return {
      ...seen,
      lastIndexedSnapshotMarker: marker.marker,
      lastIndexedSnapshotSyncTime: marker.syncTime,
      lastRepoTaskTriggerTime: t,
      lastRepoTaskErrorHash: undefined,
    };
  }

  return async function reconcile(key: string, ctx: ReconcileContext): Promise<Action> {
    const obj = deps.bindings.get(key);
    if (!obj) {
      notInitializedAttempts.delete(key);
      await releaseClaimsOf(key, undefined, ctx.signal);
      return done;
    }
    const parsed = parseBinding(obj);
    if (!parsed.ok) {
      if (obj.metadata.deletionTimestamp && obj.metadata.finalizers?.includes(FINALIZER_REMOVE_REPO)) {
        // Nothing can be removed on the strength of an unreadable spec: let the object go (and its ids).
        await releaseClaimsOf(key, undefined, ctx.signal);
        await dropFinalizer(obj, ctx.signal);
        return done;
      }
      const message = `invalid spec: ${formatErrors(parsed.errors)}`;
      const pseudo: StatusOwner = {
        metadata: { generation: obj.metadata.generation },
        status: parsed.status,
      };
      await finish(obj, pseudo, { ready: false, reason: Reason.InvalidSpec, message }, ctx);
      return done;
    }
    const b = parsed.value;
    try {
      return await reconcileParsed(obj, b, key, ctx);
    } catch (e) {
      if (!(e instanceof SecretReadError)) throw e;
      await finish(obj, b, { ready: false, reason: Reason.SecretUnreadable, message: e.message }, ctx);
      throw new RetryableError(e.message);
    }
  };

  /** Everything after the Binding parsed: deletion, finalizer, pause, source, Secrets, apply, tasks. */
  async function reconcileParsed(
    obj: KubeObject,
    b: Binding,
    key: string,
    ctx: ReconcileContext,
  ): Promise<Action> {
    if (b.metadata.deletionTimestamp) return await handleDeletion(obj, b, key, ctx);
    // A finalizer change wakes us again through the watch; the rest runs on that fresh object.
    if (await ensureFinalizer(obj, b, ctx.signal)) return done;

    const settings = deps.settings();
    const namespace = b.metadata.namespace ?? "";
    // Parsing admitted only URLs with a canonical form; that form is what is compared, stored and called.
    const url = canonicalBackrestURL(b.spec.backrest.url) ?? "";
    const repoId = repoIdOf(b);
    const idFields = { repoId, backrestURL: url };

    if (b.spec.repo.idOverride && foreignDefaultId(repoId, namespace)) {
      await finish(obj, b, {
        ready: false,
        reason: Reason.InvalidSpec,
        message: `spec.repo.idOverride ${repoId} has the form of another namespace's default repo id ` +
          "(volsync-<namespace>-<kind>-<name>); choose an id that does not start with volsync-",
      }, ctx);
      return done;
    }
    // A Binding the Go prototype applied holds its id from the first look, before any status of ours
    // (Paused, a missing Secret, ...) replaces the prototype's, which is the only evidence of it.
    if (!deps.claims.get(repoId) && appliedByPrototype(b)) {
      await deps.claims.acquire(repoId, { key, uid: b.metadata.uid ?? "" }, undefined, ctx.signal);
    }
    if (settings.spec.paused) {
      await finish(obj, b, {
        ready: false,
        reason: settings.halted ? Reason.OperatorConfigInvalid : Reason.Paused,
        message: settings.halted
          ? `Halted: ${settings.halted}; no Backrest call is made`
          : "The operator is paused (OperatorConfig spec.paused); no Backrest call is made",
      }, ctx);
      return done;
    }
    if (!backrestURLAllowed(url, settings.spec.backrestURLAllowlist)) {
      await finish(obj, b, {
        ready: false,
        reason: Reason.BackrestURLNotAllowed,
        message: `spec.backrest.url is not under any prefix of the OperatorConfig's backrestURLAllowlist; ` +
          "ask the operator's admin to allow it or point the Binding at an allowed Backrest",
      }, ctx);
      return done;
    }

    // A Backrest that stopped answering: wait for it without reading a Secret, taking a claim or writing
    // anything new (the status and Event were written when it first failed).
    if (deps.backrestRefusing?.(url)) {
      const message = `Backrest did not answer (unavailable); retrying with backoff. ${REFUSED}`;
      await finish(
        obj,
        b,
        { ready: false, reason: Reason.BackrestUnreachable, message, error: message },
        ctx,
      );
      throw new RetryableError(message);
    }

    // The VolSync object.
    const store = b.spec.source.kind === "ReplicationSource"
      ? deps.replicationSources
      : deps.replicationDestinations;
    const rawSource = store.getByName(namespace, b.spec.source.name);
    const sourceRef = `${b.spec.source.kind} ${namespace}/${b.spec.source.name}`;
    if (!rawSource) {
      await finish(obj, b, {
        ready: false,
        reason: Reason.VolSyncNotFound,
        message: `${sourceRef} not found; the Binding is applied once it exists`,
        sourceResolved: false,
      }, ctx);
      return done;
    }
    const sourceParsed = parseVolSyncObject(rawSource, b.spec.source.kind);
    if (!sourceParsed.ok) {
      await finish(obj, b, {
        ready: false,
        reason: Reason.VolSyncMissingRepository,
        message: `${sourceRef} is malformed: ${formatErrors(sourceParsed.errors)}`,
        sourceResolved: false,
      }, ctx);
      return done;
    }
    const source = sourceParsed.value;
    if (!source.restic) {
      await finish(obj, b, {
        ready: false,
        reason: Reason.UnsupportedMover,
        message: `${sourceRef} has no spec.restic: Backrest only understands restic repositories`,
        sourceResolved: false,
      }, ctx);
      return done;
    }
    const secretName = repositorySecretName(source);
    if (!secretName) {
      await finish(obj, b, {
        ready: false,
        reason: Reason.VolSyncMissingRepository,
        message: `${sourceRef} has no spec.restic.repository Secret name`,
        sourceResolved: false,
      }, ctx);
      return done;
    }
    if (hasCustomCA(source)) {
      await finish(
        obj,
        b,
        {
          ready: false,
          reason: Reason.CustomCAUnsupported,
          message:
            `${sourceRef} sets spec.restic.customCA: restic in Backrest would need that CA as a file, ` +
            "which the operator cannot place; add the CA to Backrest's trust store and remove customCA, " +
            "or leave this repository out of Backrest",
          sourceResolved: false,
        },
        ctx,
        { resolvedRepositorySecret: secretName },
      );
      return done;
    }
    const resolved = { resolvedRepositorySecret: secretName };

    // The repository Secret and the auth Secret.
    const secretData = await readSecretData(namespace, secretName, ctx.signal);
    if (!secretData) {
      await finish(
        obj,
        b,
        {
          ready: false,
          reason: Reason.RepositorySecretNotFound,
          message: `repository Secret ${namespace}/${secretName} not found`,
          sourceResolved: true,
          secretResolved: false,
        },
        ctx,
        resolved,
      );
      return done;
    }
    const auth = await resolveAuth(b, settings, url, ctx.signal);
    if ("problem" in auth) {
      await finish(
        obj,
        b,
        {
          ready: false,
          reason: Reason.BackrestAuthInvalid,
          message: `${auth.problem}; the Binding is applied once it is fixed`,
          sourceResolved: true,
        },
        ctx,
        resolved,
      );
      return done;
    }

    let desired: DesiredRepo;
    try {
      desired = desiredRepo({
        namespace,
        kind: b.spec.source.kind,
        name: b.spec.source.name,
        secretData,
        settings: b.spec.repo,
        customCA: false,
        policy: settings.spec.repositoryPolicy,
        hashInputs: { url, auth: authFingerprint(auth.auth) },
      });
    } catch (e) {
      if (!(e instanceof RepoMappingError)) throw e;
      const reason = e.kind === "secret_invalid"
        ? Reason.RepositorySecretInvalid
        : e.kind === "unsupported"
        ? Reason.UnsupportedSecretKey
        : e.kind === "not_allowed"
        ? Reason.RepositoryBackendNotAllowed
        : Reason.InvalidSpec;
      const where = e.kind === "spec_invalid" ? "spec.repo" : `repository Secret ${namespace}/${secretName}`;
      await finish(
        obj,
        b,
        {
          ready: false,
          reason,
          message: `${where}: ${e.message}`,
          sourceResolved: true,
          secretResolved: e.kind === "spec_invalid" ? true : false,
        },
        ctx,
        resolved,
      );
      return done;
    }

    const connection: BackrestConnection = { url, auth: auth.auth, timeoutMs };
    const claimed = await claimRepo(b, key, repoId, connection, settings, ctx);
    if (claimed !== true) {
      await finish(obj, b, { ...claimed.outcome, sourceResolved: true, secretResolved: true }, ctx, resolved);
      if (claimed.retry) throw new RetryableError(claimed.outcome.message);
      return claimed.requeueMs ? requeueAfter(claimed.requeueMs) : done;
    }

    const api = deps.backrest(connection);
    const upToDate = b.status.lastAppliedInputHash === desired.hash &&
      isConditionTrue(b.status.conditions, ConditionType.Ready) &&
      b.status.observedGeneration === b.metadata.generation &&
      b.status.repoId === repoId &&
      !deps.drift.isMissing(key);

    let applyTime = b.status.lastApplyTime;
    if (upToDate) {
      // Applied with these very credentials: a candidate for the shared listings.
      deps.listings.remember(connection, false);
    } else {
      try {
        if (!desired.mayInitialize && !(await api.checkRepoExists(desired, { signal: ctx.signal }))) {
          const attempt = notInitializedAttempts.get(key) ?? 0;
          notInitializedAttempts.set(key, attempt + 1);
          const wait = NOT_INITIALIZED_RECHECK_MS[Math.min(attempt, NOT_INITIALIZED_RECHECK_MS.length - 1)]!;
          await finish(
            obj,
            b,
            {
              ready: false,
              reason: Reason.RepositoryNotInitialized,
              message:
                `no restic repository exists at the Secret's RESTIC_REPOSITORY yet (VolSync creates it on ` +
                `its first sync); checking again in ${
                  Math.round(wait / 1000)
                }s. Set spec.repo.autoInitialize: ` +
                "true to let Backrest create it",
              sourceResolved: true,
              secretResolved: true,
              applied: false,
            },
            ctx,
            resolved,
          );
          return requeueAfter(wait);
        }
        notInitializedAttempts.delete(key);
        await api.addRepo(desired, { signal: ctx.signal });
      } catch (e) {
        if (!(e instanceof BackrestError) || /already (been )?initialized/i.test(e.message)) {
          if (!(e instanceof BackrestError)) throw e;
        } else {
          const c = classifyBackrest(e, "AddRepo");
          ctx.log.debug("Backrest call failed", {
            repoId,
            rpc: e.rpc,
            code: e.code,
            backrestText: e.message,
          });
          await finish(
            obj,
            b,
            {
              ready: false,
              reason: c.reason,
              message: c.message,
              sourceResolved: true,
              secretResolved: true,
              applied: false,
              error: c.message,
            },
            ctx,
            resolved,
          );
          if (c.retry) throw new RetryableError(`${c.reason}: Backrest ${e.rpc} failed (${e.kind})`);
          return done;
        }
      }
      deps.drift.markPresent(key);
      deps.listings.remember(connection, true);
      applyTime = formatTime(now());
      ctx.log.info("Backrest repo applied", {
        repoId,
        volsync: `${b.spec.source.kind.toLowerCase()}/${namespace}/${b.spec.source.name}`,
      });
    }
    // Ids this Binding applied before and moved away from are free for others now.
    for (const old of deps.claims.heldBy(key)) {
      if (old.id !== repoId) await deps.claims.release(old, ctx.signal);
    }

    const tasks = await snapshotTasks(b, source, api, repoId, ctx);
    await finish(
      obj,
      b,
      {
        ready: true,
        reason: Reason.Applied,
        // The same text for every Binding (the id is in status.repoId): thousands of Bindings share one copy.
        message: appliedMessage(desired.ignoredKeys),
        sourceResolved: true,
        secretResolved: true,
        applied: true,
      },
      ctx,
      {
        ...resolved,
        ...idFields,
        lastAppliedInputHash: desired.hash,
        ...(applyTime ? { lastApplyTime: applyTime } : {}),
        ...tasks,
      },
    );
    if (tasks.lastRepoTaskErrorHash && tasks.lastIndexedSnapshotMarker === undefined) {
      throw new RetryableError("Backrest repo tasks failed");
    }
    return done;
  }

  /**
   * Makes sure the Binding holds `id` (claims.ts), taking it when nobody does and it is the Binding's to
   * take: an id of its own namespace's default form, one it (or the Go prototype) applied before claims
   * existed, one Backrest does not hold yet, or, with adoption allowed, one it adopts. Otherwise an outcome
   * to report.
   */
  async function claimRepo(
    b: Binding,
    key: string,
    id: string,
    connection: BackrestConnection,
    settings: OperatorSettings,
    ctx: ReconcileContext,
  ): Promise<true | { outcome: Outcome; retry?: boolean; requeueMs?: number }> {
    const holder: Holder = { key, uid: b.metadata.uid ?? "" };
    const current: Claim | undefined = deps.claims.get(id);
    const conflict = (other: Holder) => ({
      outcome: {
        ready: false,
        reason: Reason.RepoIdConflict,
        message: `Binding ${other.key} holds repo id ${id} (it applied it first); set spec.repo.idOverride ` +
          "to a free id (neither Binding overwrites the other)",
      },
    });
    if (current && current.holder.key !== key) return conflict(current.holder);
    if (current && current.holder.uid === holder.uid && current.url === connection.url) return true;
    // Free, or held by this Binding under an older uid or URL.
    if (!current && !mayTake(b, id, settings)) {
      let ids: ReadonlySet<string>;
      try {
        ids = await deps.listings.ids(connection.url, {
          maxAgeMs: LISTING_MAX_AGE_MS,
          signal: ctx.signal,
          extra: connection,
        });
      } catch (e) {
        if (!(e instanceof BackrestError)) throw e;
        const c = classifyBackrest(e, "GetSummaryDashboard");
        return {
          outcome: { ready: false, reason: c.reason, message: c.message, error: c.message },
          retry: c.retry,
        };
      }
      if (ids.has(id)) {
        return {
          outcome: {
            ready: false,
            reason: Reason.RepoExistsInBackrest,
            message: `repo id ${id} already exists in Backrest and no Binding applied it (created in the ` +
              "Backrest UI or by another tool); it is left alone. Use another spec.repo.idOverride, or set " +
              "spec.repo.adopt: true where the OperatorConfig's repositoryPolicy.allowAdoption permits it",
          },
          requeueMs: EXISTS_RECHECK_MS,
        };
      }
    }
    const got = await deps.claims.acquire(id, holder, connection.url, ctx.signal);
    return got.ok ? true : conflict(got.holder);
  }

  /** Whether an unclaimed id is the Binding's to take without asking Backrest whether it exists. */
  function mayTake(b: Binding, id: string, settings: OperatorSettings): boolean {
    const ns = b.metadata.namespace ?? "";
    if (id === defaultRepoId(ns, b.spec.source.kind, b.spec.source.name)) return true;
    if (b.spec.repo.adopt && settings.spec.repositoryPolicy.allowAdoption) return true;
    // Applied by an earlier version of this operator, before claims existed (the Go prototype's are claimed
    // at first sight: appliedByPrototype).
    return b.status.repoId === id;
  }

  /**
   * Whether the status is the Go prototype's record of applying this very spec: no `repoId` (ours always
   * sets it), an input hash, and Ready for the current generation.
   */
  function appliedByPrototype(b: Binding): boolean {
    const s = b.status;
    return s.repoId === undefined && s.lastAppliedInputHash !== undefined &&
      s.observedGeneration === b.metadata.generation && isConditionTrue(s.conditions, ConditionType.Ready);
  }
}

/** The Ready message, naming Secret keys that were not passed (key names only). */
function appliedMessage(ignored: readonly string[]): string {
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
