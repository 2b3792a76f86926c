/**
 * The Binding reconciler, as a pipeline of steps that each either hand the next one what it needs or end
 * the reconcile with a {@linkcode Stop} (what to report, and whether to retry or wait for a change):
 *
 *   gate      id form, the Go prototype's claim, pause, URL allowlist, an open breaker (nothing read yet)
 *   source    the VolSync object from the cache (binding_inputs.ts)
 *   read      the repository Secret and the auth Secret, each a GET (binding_inputs.ts)
 *   desire    the Backrest repo they map to, under the OperatorConfig's repositoryPolicy
 *   claim     the repo id's claim in the ledger (binding_claim.ts, claims.ts)
 *   apply     AddRepo when the desired repo's hash differs from the last applied one, the last attempt
 *             failed, or drift repair found the repo missing; never while paused. CheckRepoExists first
 *             only when nobody knows the repository exists (one restic run per change, not two)
 *   tasks     index and stats once per completed sync (opt-in)
 *   report    Applied (binding_status.ts)
 *
 * Deletion and the finalizer are binding_finalizer.ts. Rules: the reconciler reads the Binding and VolSync
 * objects from the caches, never the event that woke it; a problem the user must fix ends the reconcile
 * (the watch brings it back when an input changes), one that may pass writes status then retries with
 * backoff; no Secret value and no Backrest error text reaches status, Events, logs or errors. Each Backrest
 * call is preceded by the gate's check that the settings this reconcile read are still in force and known
 * (config_gate.ts); a refusal ends the reconcile with no status write (the controller holds the key).
 */
import {
  backrestURLAllowed,
  type Binding,
  canonicalBackrestURL,
  completedSyncMarker,
  ConditionType,
  FINALIZER_REMOVE_REPO,
  foreignDefaultId,
  formatErrors,
  formatTime,
  isConditionTrue,
  parseBinding,
  Reason,
  repoIdOf,
  VOLSYNC_KIND_INFO,
  type VolSyncObject,
} from "../api/mod.ts";
import {
  authFingerprint,
  type BackrestApi,
  type BackrestConnection,
  BackrestError,
  type DesiredRepo,
  desiredRepo,
  REFUSED,
  RepoMappingError,
  type StatusHasher,
} from "../backrest/mod.ts";
import type { KubeClient, KubeObject } from "../kube/mod.ts";
import { type Action, done, type ReconcileContext, requeueAfter, type Store } from "../runtime/mod.ts";
import { appliedByPrototype, bindingClaim } from "./binding_claim.ts";
import { failureOutcome, MAPPING_REASONS } from "./outcomes.ts";
import { bindingFinalizer, RetryableError } from "./binding_finalizer.ts";
import { bindingInputs, type Inputs, isStop, SecretReadError, type Stop } from "./binding_inputs.ts";
import type { VolSyncStores } from "./caches.ts";
import {
  appliedMessage,
  errorHash,
  type EventSink,
  type StatusExtra,
  type StatusOwner,
  statusWriter,
} from "./binding_status.ts";
import type { ClaimLedger } from "./claims.ts";
import type { ConfigGate } from "./config_gate.ts";
import type { ReadyGauge } from "./metrics.ts";
import type { OwnWrites } from "./own_writes.ts";
import type { RepoListings } from "./repo_listings.ts";
import type { OperatorSettings } from "./settings.ts";

/** Which repos drift repair found missing from their Backrest. */
export interface DriftState {
  /** True when the Binding's repo was found missing in Backrest since it was last applied. */
  isMissing(bindingKey: string): boolean;
  /** The repo is in Backrest now (just applied). */
  markPresent(bindingKey: string): void;
}

/** What the Binding reconciler needs, injected. */
export interface BindingReconcilerDeps {
  /** Reads Secrets and writes the Binding's finalizer and status. */
  kube: KubeClient;
  /** Cache of Bindings (full objects). */
  bindings: Store<KubeObject>;
  /** Caches of VolSync objects, by kind. */
  volsync: VolSyncStores;
  /** The settings in force, read on every reconcile. */
  settings: () => OperatorSettings;
  /** A (pooled) Backrest client for a connection. */
  backrest: (connection: BackrestConnection) => BackrestApi;
  /** Where Events about the Binding go (one whenever Ready's status or reason changes). */
  events: EventSink;
  /** Which repos drift repair found missing (a missing repo is applied again). */
  drift: DriftState;
  /** Who holds each repo id. */
  claims: ClaimLedger;
  /** Which ids each Backrest holds (shared listings) and the credentials that reach it. */
  listings: Pick<RepoListings, "ids" | "remember">;
  /** Told of each status write, so the watch event it causes wakes nothing (see own_writes.ts). */
  ownWrites?: Pick<OwnWrites, "writing" | "failed">;
  /** Told each Binding's Ready outcome, and when a Binding is gone (metrics.ts). */
  readiness?: Pick<ReadyGauge, "set" | "drop">;
  /**
   * Checked right before every Backrest call: throws when the OperatorConfig is not known to be current or
   * the settings the reconcile read are no longer in force (default: never).
   */
  gate?: Pick<ConfigGate, "check">;
  /** Deadline of each Backrest call (AddRepo runs restic on the server). */
  backrestTimeoutMs?: number;
  /** Whether calls to a Backrest URL are being refused (its breaker is open); default: never. */
  backrestRefusing?: (url: string) => boolean;
  /** How status hashes are made (default: stretched, the format before keys; the operator's is keyed). */
  hasher?: StatusHasher;
  /** Clock for status times (default: the system clock). */
  now?: () => Date;
}

/** When a repository that VolSync has not created yet is looked for again, attempt by attempt. */
const NOT_INITIALIZED_RECHECK_MS = [15_000, 30_000, 60_000, 120_000, 300_000, 600_000];

/** What the steps after the gate share: the Binding, where its repo goes, and what it is called. */
interface Target {
  obj: KubeObject;
  b: Binding;
  key: string;
  namespace: string;
  /** The canonical Backrest URL (parsing admitted only URLs that have one). */
  url: string;
  repoId: string;
  settings: OperatorSettings;
  ctx: ReconcileContext;
}

/** Builds the reconcile function. */
export function bindingReconciler(
  deps: BindingReconcilerDeps,
): (key: string, ctx: ReconcileContext) => Promise<Action> {
  const now = deps.now ?? (() => new Date());
  const timeoutMs = deps.backrestTimeoutMs ?? 120_000;
  const status = statusWriter({
    kube: deps.kube,
    events: deps.events,
    ownWrites: deps.ownWrites,
    readiness: deps.readiness,
    now,
  });
  const inputs = bindingInputs(deps);
  const finalizer = bindingFinalizer({ ...deps, status, inputs, timeoutMs });
  const claim = bindingClaim(deps);
  const notInitializedAttempts = new Map<string, number>();

  /** Reports a step's stop and turns it into the runtime's action. */
  async function end(
    t: { obj: KubeObject; b: StatusOwner; ctx: ReconcileContext },
    s: Stop,
  ): Promise<Action> {
    await status.report(t.obj, t.b, s.stop, t.ctx.signal, s.extra);
    if (s.retry !== undefined) throw new RetryableError(s.retry);
    return s.requeueMs ? requeueAfter(s.requeueMs) : done;
  }

  /** What can be decided before anything is read: nothing here calls Backrest or reads a Secret. */
  async function gate(t: Target): Promise<Stop | undefined> {
    const { b, key, repoId, settings } = t;
    if (b.spec.repo.idOverride && foreignDefaultId(repoId, t.namespace)) {
      return stop(
        Reason.InvalidSpec,
        `spec.repo.idOverride ${repoId} has the form of another namespace's default repo id ` +
          "(volsync-<namespace>-<kind>-<name>); choose an id that does not start with volsync-",
      );
    }
    // A Binding the Go prototype applied holds its id from the first look, before any status of ours
    // (Paused, a missing Secret, ...) replaces the prototype's, which is the only evidence of it.
    if (!deps.claims.get(repoId) && appliedByPrototype(b)) {
      await deps.claims.acquire(repoId, { key, uid: b.metadata.uid ?? "" }, undefined, t.ctx.signal);
    }
    if (settings.spec.paused) {
      return settings.halted
        ? stop(Reason.OperatorConfigInvalid, `Halted: ${settings.halted}; no Backrest call is made`)
        : stop(
          Reason.Paused,
          "The operator is paused (OperatorConfig spec.paused); no Backrest call is made",
        );
    }
    if (!backrestURLAllowed(t.url, settings.spec.backrestURLAllowlist)) {
      return stop(
        Reason.BackrestURLNotAllowed,
        "spec.backrest.url is not under any prefix of the OperatorConfig's backrestURLAllowlist; " +
          "ask the operator's admin to allow it or point the Binding at an allowed Backrest",
      );
    }
    // A Backrest that stopped answering: wait for it without reading a Secret, taking a claim or writing
    // anything new (the status and Event were written when it first failed).
    if (deps.backrestRefusing?.(t.url)) {
      const message = `Backrest did not answer (unavailable); retrying with backoff. ${REFUSED}`;
      return {
        stop: { ready: false, reason: Reason.BackrestUnreachable, message, error: message },
        retry: message,
      };
    }
    return undefined;
  }

  /** The repo the Secrets map to, under the OperatorConfig's repositoryPolicy. */
  async function desire(t: Target, secretName: string, read: Inputs): Promise<DesiredRepo | Stop> {
    try {
      return await desiredRepo({
        namespace: t.namespace,
        kind: t.b.spec.source.kind,
        name: t.b.spec.source.name,
        secretData: read.secretData,
        settings: t.b.spec.repo,
        customCA: false,
        policy: t.settings.spec.repositoryPolicy,
        hashInputs: { url: t.url, auth: authFingerprint(read.auth) },
        ...(deps.hasher ? { hasher: deps.hasher } : {}),
      });
    } catch (e) {
      if (!(e instanceof RepoMappingError)) throw e;
      const specInvalid = e.kind === "spec_invalid" || e.kind === "settings_not_allowed";
      const reason = MAPPING_REASONS[e.kind];
      const where = specInvalid ? "spec.repo" : `repository Secret ${t.namespace}/${secretName}`;
      return {
        stop: {
          ready: false,
          reason,
          message: `${where}: ${e.message}`,
          sourceResolved: true,
          secretResolved: specInvalid,
        },
      };
    }
  }

  /**
   * Whether the repository is known to exist without asking Backrest (CheckRepoExists runs restic on the
   * server, and AddRepo runs it again): this Binding applied this very location before, or the VolSync
   * object reports a completed sync, which VolSync records only after its mover used the repository. Were
   * that status forged, AddRepo would create a repository at the tenant's own location: what
   * `autoInitialize: true`, theirs to set, does anyway. The location's hash is made only when the status
   * holds one to compare.
   */
  async function knownToExist(b: Binding, desired: DesiredRepo, source: VolSyncObject): Promise<boolean> {
    if (completedSyncMarker(source) !== undefined) return true;
    return await desired.repositoryHashMatches(b.status.appliedRepositoryHash);
  }

  /**
   * Registers the repo unless the status shows it registered as it is now: the apply time to record and
   * whether it applied now, or a stop.
   */
  async function apply(
    t: Target,
    desired: DesiredRepo,
    source: VolSyncObject,
    connection: BackrestConnection,
    api: BackrestApi,
  ): Promise<{ applyTime: string | undefined; appliedNow: boolean } | Stop> {
    const { b, key, ctx } = t;
    // A hash an earlier build wrote (stretched, not keyed) still counts: the status below then records
    // the keyed one, and an upgrade applies nothing again.
    const upToDate = isConditionTrue(b.status.conditions, ConditionType.Ready) &&
      b.status.observedGeneration === b.metadata.generation &&
      b.status.repoId === t.repoId &&
      !deps.drift.isMissing(key) &&
      await desired.hashMatches(b.status.lastAppliedInputHash);
    if (upToDate) {
      // Applied with these very credentials: a candidate for the shared listings.
      deps.listings.remember(connection, false);
      return { applyTime: b.status.lastApplyTime, appliedNow: false };
    }
    try {
      const ask = !desired.mayInitialize && !(await knownToExist(b, desired, source));
      if (ask) deps.gate?.check(t.settings);
      if (ask && !(await api.checkRepoExists(desired, { signal: ctx.signal }))) {
        const attempt = notInitializedAttempts.get(key) ?? 0;
        notInitializedAttempts.set(key, attempt + 1);
        const wait = NOT_INITIALIZED_RECHECK_MS[Math.min(attempt, NOT_INITIALIZED_RECHECK_MS.length - 1)]!;
        return {
          stop: {
            ready: false,
            reason: Reason.RepositoryNotInitialized,
            message: "no restic repository exists at the Secret's RESTIC_REPOSITORY yet (VolSync creates " +
              `it on its first sync); checking again in ${Math.round(wait / 1000)}s. Set ` +
              "spec.repo.autoInitialize: true to let Backrest create it",
            sourceResolved: true,
            secretResolved: true,
            applied: false,
          },
          requeueMs: wait,
        };
      }
      notInitializedAttempts.delete(key);
      // Any failure is a failure, whatever Backrest's text says: that text can carry what a tenant wrote
      // (the repository URI), so it decides nothing.
      deps.gate?.check(t.settings);
      await api.addRepo(desired, { signal: ctx.signal });
    } catch (e) {
      if (!(e instanceof BackrestError)) throw e;
      const c = failureOutcome(e, e.rpc);
      ctx.log.debug("Backrest call failed", {
        repoId: t.repoId,
        rpc: e.rpc,
        code: e.code,
        backrestText: e.message,
      });
      return {
        stop: {
          ready: false,
          reason: c.reason,
          message: c.message,
          sourceResolved: true,
          secretResolved: true,
          applied: false,
          error: c.message,
        },
        ...(c.retry ? { retry: `${c.reason}: Backrest ${e.rpc} failed (${e.kind})` } : {}),
      };
    }
    deps.drift.markPresent(key);
    deps.listings.remember(connection, true);
    ctx.log.info("Backrest repo applied", {
      repoId: t.repoId,
      volsync: `${b.spec.source.kind.toLowerCase()}/${t.namespace}/${b.spec.source.name}`,
    });
    return { applyTime: formatTime(now()), appliedNow: true };
  }

  /** DoRepoTask INDEX_SNAPSHOTS then STATS once per completed sync (ReplicationSource only, opt-in). */
  async function snapshotTasks(t: Target, source: VolSyncObject, api: BackrestApi): Promise<StatusExtra> {
    const { b, repoId, ctx } = t;
    if (!b.spec.repo.triggerTasksOnSnapshot || !VOLSYNC_KIND_INFO[source.kind].snapshotTasks) return {};
    const marker = completedSyncMarker(source);
    if (!marker) return {};
    const seen: StatusExtra = { lastSnapshotMarker: marker.marker, lastSnapshotSyncTime: marker.syncTime };
    if (b.status.lastIndexedSnapshotMarker === marker.marker) return seen;
    const at = formatTime(now());
    try {
      deps.gate?.check(t.settings);
      await api.doRepoTask(repoId, "index_snapshots", { signal: ctx.signal });
      deps.gate?.check(t.settings);
      await api.doRepoTask(repoId, "stats", { signal: ctx.signal });
    } catch (e) {
      if (!(e instanceof BackrestError)) throw e;
      return { ...seen, lastRepoTaskTriggerTime: at, lastRepoTaskErrorHash: errorHash(e.message) };
    }
    ctx.log.info("Backrest repo tasks triggered", { repoId, marker: marker.marker });
    return {
      ...seen,
      lastIndexedSnapshotMarker: marker.marker,
      lastIndexedSnapshotSyncTime: marker.syncTime,
      lastRepoTaskTriggerTime: at,
      lastRepoTaskErrorHash: undefined,
    };
  }

  /** The pipeline, for a Binding that parsed and is not being deleted. */
  async function run(t: Target): Promise<Action> {
    const gated = await gate(t);
    if (gated) return end(t, gated);

    const src = inputs.source(t.b);
    if (isStop(src)) return end(t, src);
    const resolved = { resolvedRepositorySecret: src.secretName };

    const read = await inputs.read(t.b, t.settings, t.url, src.secretName, t.ctx.signal);
    if (isStop(read)) return end(t, read);

    const desired = await desire(t, src.secretName, read);
    if (isStop(desired)) return end(t, { ...desired, extra: resolved });

    const connection: BackrestConnection = { url: t.url, auth: read.auth, timeoutMs };
    const claimed = await claim(t.b, t.key, t.repoId, connection, t.settings, t.ctx);
    if (claimed !== true) {
      return end(t, {
        ...claimed,
        stop: { ...claimed.stop, sourceResolved: true, secretResolved: true },
        extra: resolved,
      });
    }

    const api = deps.backrest(connection);
    const applied = await apply(t, desired, src.source, connection, api);
    if (isStop(applied)) return end(t, { ...applied, extra: resolved });
    // Ids this Binding applied before and moved away from are free for others now.
    for (const old of deps.claims.heldBy(t.key)) {
      if (old.id !== t.repoId) await deps.claims.release(old, t.ctx.signal);
    }

    const tasks = await snapshotTasks(t, src.source, api);
    // The location applied now, for a later reconcile to skip CheckRepoExists; needless (and not hashed)
    // while the VolSync object reports a completed sync, which tells that reconcile as much.
    const location = applied.appliedNow && completedSyncMarker(src.source) === undefined
      ? { appliedRepositoryHash: await desired.repositoryHash() }
      : {};
    await status.report(
      t.obj,
      t.b,
      {
        ready: true,
        reason: Reason.Applied,
        message: appliedMessage(desired.ignoredKeys),
        sourceResolved: true,
        secretResolved: true,
        applied: true,
      },
      t.ctx.signal,
      {
        ...resolved,
        repoId: t.repoId,
        backrestURL: t.url,
        lastAppliedInputHash: desired.hash,
        ...location,
        ...(applied.applyTime ? { lastApplyTime: applied.applyTime } : {}),
        ...tasks,
      },
    );
    if (tasks.lastRepoTaskErrorHash && tasks.lastIndexedSnapshotMarker === undefined) {
      throw new RetryableError("Backrest repo tasks failed");
    }
    return done;
  }

  return async function reconcile(key: string, ctx: ReconcileContext): Promise<Action> {
    const obj = deps.bindings.get(key);
    if (!obj) {
      notInitializedAttempts.delete(key);
      deps.readiness?.drop(key);
      await finalizer.releaseClaimsOf(key, undefined, ctx.signal);
      return done;
    }
    const parsed = parseBinding(obj);
    if (!parsed.ok) {
      if (obj.metadata.deletionTimestamp && obj.metadata.finalizers?.includes(FINALIZER_REMOVE_REPO)) {
        // Nothing can be removed on the strength of an unreadable spec: let the object go (and its ids).
        await finalizer.releaseClaimsOf(key, undefined, ctx.signal);
        await finalizer.drop(obj, ctx.signal);
        return done;
      }
      const b = { metadata: { generation: obj.metadata.generation }, status: parsed.status };
      return end({ obj, b, ctx }, stop(Reason.InvalidSpec, `invalid spec: ${formatErrors(parsed.errors)}`));
    }
    const b = parsed.value;
    try {
      if (b.metadata.deletionTimestamp) return await finalizer.handleDeletion(obj, b, key, ctx);
      // A finalizer change wakes us again through the watch; the rest runs on that fresh object.
      if (await finalizer.ensure(obj, b, ctx.signal)) return done;
      return await run({
        obj,
        b,
        key,
        namespace: b.metadata.namespace ?? "",
        url: canonicalBackrestURL(b.spec.backrest.url) ?? "",
        repoId: repoIdOf(b),
        settings: deps.settings(),
        ctx,
      });
    } catch (e) {
      if (!(e instanceof SecretReadError)) throw e;
      return end({ obj, b, ctx }, {
        stop: { ready: false, reason: Reason.SecretUnreadable, message: e.message },
        retry: e.message,
      });
    }
  };
}

/** A stop the user must act on: not Ready, for `reason`, until an input changes. */
function stop(reason: string, message: string): Stop {
  return { stop: { ready: false, reason, message } };
}
