/**
 * The Binding reconciler: VolSync object + its repository Secret (+ auth Secret) -> the desired Backrest
 * repo -> AddRepo when anything changed -> status, Events, one log line. Rules:
 * - It reads the Binding and VolSync objects from the caches and Secrets with a GET (caches hold no
 *   Secret data); it never trusts the event that woke it.
 * - Backrest is called only when the desired repo's hash differs from the last applied one, the last
 *   attempt failed, or drift repair found the repo missing; never while paused.
 * - A problem the user must fix ends the reconcile (the watch brings it back when an input changes);
 *   a problem that may pass (Backrest down, deadline) writes status, then throws to retry with backoff.
 * - No Secret value reaches status, Events, logs or errors: they carry key names, reasons and hashes.
 */
import { createHash } from "node:crypto";
import {
  backrestURLAllowed,
  type Binding,
  type BindingStatus,
  completedSyncMarker,
  type Condition,
  ConditionType,
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
  type DesiredRepo,
  desiredRepo,
  RepoMappingError,
} from "../backrest/mod.ts";
import { isRecord, type KubeClient, KubeError, type KubeObject, secrets } from "../kube/mod.ts";
import { type Action, done, type ReconcileContext, requeueAfter, type Store } from "../runtime/mod.ts";
import { bindingType } from "./resources.ts";
import type { OwnWrites } from "./own_writes.ts";
import { sameJSON } from "./same.ts";
import type { OperatorSettings } from "./settings.ts";

/** Where Events go (the aggregating recorder in production, a list in unit tests). */
export interface EventSink {
  record(obj: KubeObject, type: "Normal" | "Warning", reason: string, message: string): void;
}

/** Which repos drift repair found missing from their Backrest, and the last way each Backrest was reached. */
export interface DriftState {
  /** True when the Binding's repo was found missing in Backrest since it was last applied. */
  isMissing(bindingKey: string): boolean;
  /** The repo is in Backrest now (just applied). */
  markPresent(bindingKey: string): void;
  /** Remembers how to reach a Backrest for the periodic listing. */
  rememberConnection(connection: BackrestConnection): void;
}

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
  /** Told of each status write, so the watch event it causes wakes nothing (see own_writes.ts). */
  ownWrites?: Pick<OwnWrites, "writing" | "failed">;
  /** Deadline of each Backrest call (AddRepo runs restic on the server). */
  backrestTimeoutMs?: number;
  now?: () => Date;
}

/** Index of Bindings by the Backrest repo they claim: `<url>|<repo id>`. */
export const INDEX_BY_REPO = "byRepo";
/** Index of Bindings by their VolSync object: `<namespace>/<Kind>/<name>`. */
export const INDEX_BY_SOURCE = "bySource";
/** Index of Bindings by their auth Secret: `<namespace>/<name>`. */
export const INDEX_BY_AUTH_SECRET = "byAuthSecret";
/** Index of VolSync objects by their repository Secret: `<namespace>/<name>`. */
export const INDEX_BY_REPOSITORY_SECRET = "byRepositorySecret";

/** A Backrest URL as compared for repo claims (no trailing slash). */
export function normalizeURL(url: string): string {
  return url.replace(/\/+$/, "");
}

/** Index functions for the Binding cache. */
export const bindingIndexers = {
  [INDEX_BY_REPO]: (obj: KubeObject): string[] => {
    const parsed = parseBinding(obj);
    if (!parsed.ok) return [];
    return [`${normalizeURL(parsed.value.spec.backrest.url)}|${repoIdOf(parsed.value)}`];
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
    if (!name && dflt.authRef?.name && dflt.url && normalizeURL(dflt.url) === normalizeURL(url)) {
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

  /** The Binding that owns the repo claim `b` makes, by age then name (the older one wins). */
  function claimWinner(b: Binding, key: string): string {
    const claim = `${normalizeURL(b.spec.backrest.url)}|${repoIdOf(b)}`;
    const rivals = deps.bindings.byIndex(INDEX_BY_REPO, claim);
    let best = key;
    let bestTs = b.metadata.creationTimestamp ?? "";
    for (const r of rivals) {
      const k = `${r.metadata.namespace}/${r.metadata.name}`;
      const ts = r.metadata.creationTimestamp ?? "";
      if (ts < bestTs || (ts === bestTs && k < best)) {
        best = k;
        bestTs = ts;
      }
    }
    return best;
  }

  function classifyBackrest(
    e: BackrestError,
    verb: string,
  ): { reason: string; message: string; retry: boolean } {
    switch (e.kind) {
      case "unauthenticated":
        return {
          reason: Reason.BackrestAuthInvalid,
          message: `Backrest refused the credentials (${verb}): check spec.backrest.authRef. ${e.message}`,
          retry: true,
        };
      case "unavailable":
      case "deadline":
        return {
          reason: Reason.BackrestUnreachable,
          message: `Backrest did not answer ${verb} (${e.kind}); retrying with backoff. ${e.message}`,
          retry: true,
        };
      case "unsupported":
        return {
          reason: Reason.BackrestUnsupported,
          message: `this Backrest cannot be used (needs v1.12.0 or newer). ${e.message}`,
          retry: false,
        };
      case "invalid":
        return {
          reason: Reason.BackrestAddRepoFailed,
          message: `Backrest rejected ${verb} as invalid: ${e.message}`,
          retry: false,
        };
      default:
        return { reason: Reason.BackrestAddRepoFailed, message: `${verb} failed: ${e.message}`, retry: true };
    }
  }

  async function handleDeletion(obj: KubeObject, b: Binding, ctx: ReconcileContext): Promise<Action> {
    const finalizers = obj.metadata.finalizers ?? [];
    if (!finalizers.includes(FINALIZER_REMOVE_REPO)) return done;
    const settings = deps.settings();
    const appliedId = b.status.repoId;
    const appliedURL = b.status.backrestURL;
    if (b.spec.deletionPolicy === "Remove" && appliedId && appliedURL && b.status.lastAppliedInputHash) {
      if (settings.spec.paused) {
        await finish(obj, b, {
          ready: false,
          reason: Reason.Paused,
          message: "Paused: the repo is removed once the operator is resumed",
        }, ctx);
        return done;
      }
      if (!backrestURLAllowed(appliedURL, settings.spec.backrestURLAllowlist)) {
        await finish(obj, b, {
          ready: false,
          reason: Reason.RemoveFailed,
          message: "the Backrest URL the repo was applied to is not in the OperatorConfig's " +
            "backrestURLAllowlist any more; allow it again, or set spec.deletionPolicy to Retain to let go",
        }, ctx);
        return done;
      }
      const auth = await resolveAuth(b, settings, appliedURL, ctx.signal);
      if ("problem" in auth) {
        await finish(obj, b, {
          ready: false,
          reason: Reason.RemoveFailed,
          message: `cannot remove the repo: ${auth.problem}`,
        }, ctx);
        throw new RetryableError(auth.problem);
      }
      const api = deps.backrest({ url: appliedURL, auth: auth.auth, timeoutMs });
      try {
        await api.removeRepo(appliedId, { signal: ctx.signal });
      } catch (e) {
        if (!(e instanceof BackrestError)) throw e;
        const message = `Backrest did not remove repo ${appliedId}: ${e.message}. ` +
          "Fix the cause (e.g. a plan still uses the repo) or set spec.deletionPolicy to Retain to let go";
        await finish(obj, b, { ready: false, reason: Reason.RemoveFailed, message, error: e.message }, ctx);
        throw new RetryableError(`RemoveRepo failed (${e.kind})`);
      }
      deps.events.record(obj, "Normal", Reason.Removing, `Removed repo ${appliedId} from Backrest`);
      ctx.log.info("Backrest repo removed", { repoId: appliedId });
    }
    await deps.kube.patch(bindingType, obj.metadata.name ?? "", {
      metadata: {
        finalizers: finalizers.filter((f) => f !== FINALIZER_REMOVE_REPO),
        resourceVersion: obj.metadata.resourceVersion,
      },
    }, { namespace: obj.metadata.namespace, signal: ctx.signal });
    return done;
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
      return done;
    }
    const parsed = parseBinding(obj);
    if (!parsed.ok) {
      if (obj.metadata.deletionTimestamp && obj.metadata.finalizers?.includes(FINALIZER_REMOVE_REPO)) {
        // Nothing can be removed on the strength of an unreadable spec: let the object go.
        await deps.kube.patch(bindingType, obj.metadata.name ?? "", {
          metadata: {
            finalizers: obj.metadata.finalizers.filter((f) => f !== FINALIZER_REMOVE_REPO),
            resourceVersion: obj.metadata.resourceVersion,
          },
        }, { namespace: obj.metadata.namespace, signal: ctx.signal });
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
    if (b.metadata.deletionTimestamp) return await handleDeletion(obj, b, ctx);
    // A finalizer change wakes us again through the watch; the rest runs on that fresh object.
    if (await ensureFinalizer(obj, b, ctx.signal)) return done;

    const settings = deps.settings();
    const namespace = b.metadata.namespace ?? "";
    const url = b.spec.backrest.url;
    const repoId = repoIdOf(b);
    const idFields = { repoId, backrestURL: url };

    if (settings.spec.paused) {
      await finish(obj, b, {
        ready: false,
        reason: Reason.Paused,
        message: "The operator is paused (OperatorConfig spec.paused); no Backrest call is made",
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
        hashInputs: { url: normalizeURL(url), auth: authFingerprint(auth.auth) },
      });
    } catch (e) {
      if (!(e instanceof RepoMappingError)) throw e;
      const reason = e.kind === "secret_invalid"
        ? Reason.RepositorySecretInvalid
        : e.kind === "unsupported"
        ? Reason.UnsupportedSecretKey
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

    const winner = claimWinner(b, key);
    if (winner !== key) {
      await finish(
        obj,
        b,
        {
          ready: false,
          reason: Reason.RepoIdConflict,
          message: `Binding ${winner} already claims repo ${repoId} on this Backrest; ` +
            "set spec.repo.idOverride to a free id (neither Binding overwrites the other)",
          sourceResolved: true,
          secretResolved: true,
        },
        ctx,
        resolved,
      );
      return done;
    }

    const connection: BackrestConnection = { url, auth: auth.auth, timeoutMs };
    const api = deps.backrest(connection);
    deps.drift.rememberConnection(connection);
    const upToDate = b.status.lastAppliedInputHash === desired.hash &&
      isConditionTrue(b.status.conditions, ConditionType.Ready) &&
      b.status.observedGeneration === b.metadata.generation &&
      b.status.repoId === repoId &&
      !deps.drift.isMissing(key);

    let applyTime = b.status.lastApplyTime;
    if (!upToDate) {
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
              error: e.message,
            },
            ctx,
            resolved,
          );
          if (c.retry) throw new RetryableError(`${c.reason}: Backrest ${e.rpc} failed (${e.kind})`);
          return done;
        }
      }
      deps.drift.markPresent(key);
      applyTime = formatTime(now());
      ctx.log.info("Backrest repo applied", {
        repoId,
        volsync: `${b.spec.source.kind.toLowerCase()}/${namespace}/${b.spec.source.name}`,
      });
    }

    const tasks = await snapshotTasks(b, source, api, repoId, ctx);
    await finish(
      obj,
      b,
      {
        ready: true,
        reason: Reason.Applied,
        // The same text for every Binding (the id is in status.repoId): thousands of Bindings share one copy.
        message: "The repo is registered in Backrest (see status.repoId)",
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
}

/** Drops `undefined` members so a status compares equal to its JSON round-trip. */
function canonical(v: unknown): Record<string, unknown> {
  const out: unknown = JSON.parse(JSON.stringify(v ?? {}));
  return isRecord(out) ? out : {};
}
