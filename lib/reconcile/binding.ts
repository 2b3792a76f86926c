/**
 * The Binding reconciler, as a pipeline of named steps that each either hand the next one what it needs
 * or end the reconcile with a {@linkcode Stop} (pipeline.ts: what to report, and whether to retry or wait
 * for a change). `runPipeline` lists them in order:
 *
 *   gateStep      id form, the Go prototype's claim, pause, URL allowlist, an open breaker (nothing read yet)
 *   sourceStep    the VolSync object from the cache (binding_inputs.ts)
 *   readStep      the repository Secret and the auth Secret, each a GET (binding_inputs.ts)
 *   desireStep    the Backrest repo they map to, under the OperatorConfig's repositoryPolicy
 *   claimStep     the repo id's claim in the ledger (binding_claim.ts, claims.ts)
 *   applyStep     AddRepo when the desired repo's hash differs from the last applied one, the last attempt
 *                 failed, or drift repair found the repo missing; never while paused. CheckRepoExists first
 *                 only when nobody knows the repository exists (one restic run per change, not two)
 *                 (then ids this Binding moved away from are given up)
 *   tasksStep     index and stats once per completed sync (opt-in)
 *   reportStep    Applied (binding_status.ts)
 *
 * Deletion and the finalizer are binding_finalizer.ts. Rules: the reconciler reads the Binding and VolSync
 * objects from the caches, never the event that woke it; a problem the user must fix ends the reconcile
 * (the watch brings it back when an input changes), one that may pass writes status then retries with
 * backoff; no Secret value and no Backrest error text reaches status, Events, logs or errors.
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
import { type BindingFinalizer, bindingFinalizer } from "./binding_finalizer.ts";
import { type BindingInputs, bindingInputs, type Inputs, type Source } from "./binding_inputs.ts";
import {
  appliedMessage,
  errorHash,
  type EventSink,
  type StatusExtra,
  type StatusOwner,
  type StatusWriter,
  statusWriter,
} from "./binding_status.ts";
import type { VolSyncStores } from "./caches.ts";
import type { ClaimLedger } from "./claims.ts";
import type { ConfigGate } from "./config_gate.ts";
import type { ReadyGauge } from "./metrics.ts";
import { failureOutcome, MAPPING_REASONS } from "./outcomes.ts";
import type { OwnWrites } from "./own_writes.ts";
import {
  isStop,
  notReady,
  RetryableError,
  SecretReadError,
  type Step,
  type Stop,
  stopWith,
} from "./pipeline.ts";
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
  /**
   * Told of each status write, so the watch event it causes wakes nothing, and asked for the Binding, so a
   * reconcile reads that write before the cache has it (own_writes.ts).
   */
  ownWrites?: Pick<OwnWrites, "writing" | "wrote" | "failed" | "latest">;
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

/** The pipeline's parts, made once per reconciler: what every step may use besides its own inputs. */
interface Pipeline {
  deps: BindingReconcilerDeps;
  now: () => Date;
  timeoutMs: number;
  status: StatusWriter;
  inputs: BindingInputs;
  finalizer: BindingFinalizer;
  claim: ReturnType<typeof bindingClaim>;
  /** CheckRepoExists attempts that found no repository, per Binding key (for the recheck delay). */
  notInitializedAttempts: Map<string, number>;
}

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
  const p: Pipeline = {
    deps,
    now,
    timeoutMs,
    status,
    inputs,
    finalizer: bindingFinalizer({ ...deps, status, inputs, timeoutMs }),
    claim: bindingClaim(deps),
    notInitializedAttempts: new Map(),
  };
  return (key, ctx) => reconcileBinding(p, key, ctx);
}

/** One reconcile: a Binding gone, unparseable, being deleted, or run through the pipeline. */
async function reconcileBinding(p: Pipeline, key: string, ctx: ReconcileContext): Promise<Action> {
  // The cache, or our own status write while the cache has not heard it yet (own_writes.ts).
  const cached = p.deps.bindings.get(key);
  const obj = p.deps.ownWrites ? p.deps.ownWrites.latest(key, cached) : cached;
  if (!obj) {
    p.notInitializedAttempts.delete(key);
    p.deps.readiness?.drop(key);
    await p.finalizer.releaseClaimsOf(key, undefined, ctx.signal);
    return done;
  }
  const parsed = parseBinding(obj);
  if (!parsed.ok) {
    if (obj.metadata.deletionTimestamp && obj.metadata.finalizers?.includes(FINALIZER_REMOVE_REPO)) {
      // Nothing can be removed on the strength of an unreadable spec: let the object go (and its ids).
      await p.finalizer.releaseClaimsOf(key, undefined, ctx.signal);
      await p.finalizer.drop(obj, ctx.signal);
      return done;
    }
    const b = { metadata: { generation: obj.metadata.generation }, status: parsed.status };
    return end(
      p,
      { obj, b, ctx },
      notReady(Reason.InvalidSpec, `invalid spec: ${formatErrors(parsed.errors)}`),
    );
  }
  const b = parsed.value;
  try {
    if (b.metadata.deletionTimestamp) return await p.finalizer.handleDeletion(obj, b, key, ctx);
    // A finalizer change wakes us again through the watch; the rest runs on that fresh object.
    if (await p.finalizer.ensure(obj, b, ctx.signal)) return done;
    return await runPipeline(p, {
      obj,
      b,
      key,
      namespace: b.metadata.namespace ?? "",
      url: canonicalBackrestURL(b.spec.backrest.url) ?? "",
      repoId: repoIdOf(b),
      settings: p.deps.settings(),
      ctx,
    });
  } catch (e) {
    if (!(e instanceof SecretReadError)) throw e;
    return end(
      p,
      { obj, b, ctx },
      stopWith({ ready: false, reason: Reason.SecretUnreadable, message: e.message }, { retry: e.message }),
    );
  }
}

/** The steps in order, for a Binding that parsed and is not being deleted. */
async function runPipeline(p: Pipeline, t: Target): Promise<Action> {
  const gated = await gateStep(p, t);
  if (gated) return end(p, t, gated);

  const src = sourceStep(p, t);
  if (isStop(src)) return end(p, t, src);
  const resolved = { resolvedRepositorySecret: src.secretName };

  const read = await readStep(p, t, src);
  if (isStop(read)) return end(p, t, read);

  const desired = await desireStep(p, t, src, read);
  if (isStop(desired)) return end(p, t, { ...desired, extra: resolved });

  const connection: BackrestConnection = { url: t.url, auth: read.auth, timeoutMs: p.timeoutMs };
  const claimed = await claimStep(p, t, connection);
  if (isStop(claimed)) return end(p, t, { ...claimed, extra: resolved });

  const api = p.deps.backrest(connection);
  const applied = await applyStep(p, t, desired, src.source, connection, api);
  if (isStop(applied)) return end(p, t, { ...applied, extra: resolved });
  await releaseMovedIds(p, t);

  const tasks = await tasksStep(p, t, src.source, api);
  return reportStep(p, t, desired, src.source, applied, { ...resolved, ...tasks });
}

/** Reports a step's stop and turns it into the runtime's action. */
async function end(
  p: Pipeline,
  t: { obj: KubeObject; b: StatusOwner; ctx: ReconcileContext },
  s: Stop,
): Promise<Action> {
  await p.status.report(t.obj, t.b, s.stop, t.ctx.signal, s.extra);
  if (s.retry !== undefined) throw new RetryableError(s.retry);
  return s.requeueMs ? requeueAfter(s.requeueMs) : done;
}

/** What can be decided before anything is read: nothing here calls Backrest or reads a Secret. */
async function gateStep(p: Pipeline, t: Target): Promise<Stop | undefined> {
  const { b, key, repoId, settings } = t;
  if (b.spec.repo.idOverride && foreignDefaultId(repoId, t.namespace)) {
    return notReady(
      Reason.InvalidSpec,
      `spec.repo.idOverride ${repoId} has the form of another namespace's default repo id ` +
        "(volsync-<namespace>-<kind>-<name>); choose an id that does not start with volsync-",
    );
  }
  // A Binding the Go prototype applied holds its id from the first look, before any status of ours
  // (Paused, a missing Secret, ...) replaces the prototype's, which is the only evidence of it.
  if (!p.deps.claims.get(repoId) && appliedByPrototype(b)) {
    await p.deps.claims.acquire(repoId, { key, uid: b.metadata.uid ?? "" }, undefined, t.ctx.signal);
  }
  if (settings.spec.paused) {
    return settings.halted
      ? notReady(Reason.OperatorConfigInvalid, `Halted: ${settings.halted}; no Backrest call is made`)
      : notReady(
        Reason.Paused,
        "The operator is paused (OperatorConfig spec.paused); no Backrest call is made",
      );
  }
  if (!backrestURLAllowed(t.url, settings.spec.backrestURLAllowlist)) {
    return notReady(
      Reason.BackrestURLNotAllowed,
      "spec.backrest.url is not under any prefix of the OperatorConfig's backrestURLAllowlist; " +
        "ask the operator's admin to allow it or point the Binding at an allowed Backrest",
    );
  }
  // A Backrest that stopped answering: wait for it without reading a Secret, taking a claim or writing
  // anything new (the status and Event were written when it first failed).
  if (p.deps.backrestRefusing?.(t.url)) {
    const message = `Backrest did not answer (unavailable); retrying with backoff. ${REFUSED}`;
    return stopWith(
      { ready: false, reason: Reason.BackrestUnreachable, message, error: message },
      { retry: message },
    );
  }
  return undefined;
}

/** The VolSync object the Binding names, from the cache (binding_inputs.ts). */
function sourceStep(p: Pipeline, t: Target): Step<Source> {
  return p.inputs.source(t.b);
}

/** The repository Secret and the auth Secret, each a GET (binding_inputs.ts). */
function readStep(p: Pipeline, t: Target, src: Source): Promise<Step<Inputs>> {
  return p.inputs.read(t.b, t.settings, t.url, src.secretName, t.ctx.signal);
}

/** The repo the Secrets map to, under the OperatorConfig's repositoryPolicy. */
async function desireStep(p: Pipeline, t: Target, src: Source, read: Inputs): Promise<Step<DesiredRepo>> {
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
      ...(p.deps.hasher ? { hasher: p.deps.hasher } : {}),
    });
  } catch (e) {
    if (!(e instanceof RepoMappingError)) throw e;
    const specInvalid = e.kind === "spec_invalid" || e.kind === "settings_not_allowed";
    const where = specInvalid ? "spec.repo" : `repository Secret ${t.namespace}/${src.secretName}`;
    return stopWith({
      ready: false,
      reason: MAPPING_REASONS[e.kind],
      message: `${where}: ${e.message}`,
      sourceResolved: true,
      secretResolved: specInvalid,
    });
  }
}

/** The repo id's claim in the ledger (binding_claim.ts): held by this Binding, or a stop. */
async function claimStep(p: Pipeline, t: Target, connection: BackrestConnection): Promise<Step<true>> {
  const claimed = await p.claim(t.b, t.key, t.repoId, connection, t.settings, t.ctx);
  if (!isStop(claimed)) return claimed;
  return { ...claimed, stop: { ...claimed.stop, sourceResolved: true, secretResolved: true } };
}

/** What applying left to report: the apply time to record, and whether it applied now. */
interface Applied {
  applyTime: string | undefined;
  appliedNow: boolean;
}

/** Registers the repo unless the status shows it registered as it is now. */
async function applyStep(
  p: Pipeline,
  t: Target,
  desired: DesiredRepo,
  source: VolSyncObject,
  connection: BackrestConnection,
  api: BackrestApi,
): Promise<Step<Applied>> {
  if (await upToDate(p, t, desired)) {
    // Applied with these very credentials: a candidate for the shared listings.
    p.deps.listings.remember(connection, false);
    return { applyTime: t.b.status.lastApplyTime, appliedNow: false };
  }
  try {
    const missing = await repositoryMissing(p, t, desired, source, api);
    if (missing) return missing;
    // Any failure is a failure, whatever Backrest's text says: that text can carry what a tenant wrote
    // (the repository URI), so it decides nothing.
    p.deps.gate?.check(t.settings);
    await api.addRepo(desired, { signal: t.ctx.signal });
  } catch (e) {
    if (!(e instanceof BackrestError)) throw e;
    return backrestFailure(t, e);
  }
  p.deps.drift.markPresent(t.key);
  p.deps.listings.remember(connection, true);
  t.ctx.log.info("Backrest repo applied", {
    repoId: t.repoId,
    volsync: `${t.b.spec.source.kind.toLowerCase()}/${t.namespace}/${t.b.spec.source.name}`,
  });
  return { applyTime: formatTime(p.now()), appliedNow: true };
}

/**
 * Whether the status shows the repo registered as it is now. A hash an earlier build wrote (stretched, not
 * keyed) still counts: the status then records the keyed one, and an upgrade applies nothing again.
 */
async function upToDate(p: Pipeline, t: Target, desired: DesiredRepo): Promise<boolean> {
  const { b } = t;
  return isConditionTrue(b.status.conditions, ConditionType.Ready) &&
    b.status.observedGeneration === b.metadata.generation &&
    b.status.repoId === t.repoId &&
    !p.deps.drift.isMissing(t.key) &&
    await desired.hashMatches(b.status.lastAppliedInputHash);
}

/**
 * A stop when CheckRepoExists finds no repository where nobody knows one exists and AddRepo may not create
 * it; `undefined` to go on with AddRepo. Checked again after 15 s, doubling to 10 min.
 */
async function repositoryMissing(
  p: Pipeline,
  t: Target,
  desired: DesiredRepo,
  source: VolSyncObject,
  api: BackrestApi,
): Promise<Stop | undefined> {
  const ask = !desired.mayInitialize && !(await knownToExist(t.b, desired, source));
  if (ask) p.deps.gate?.check(t.settings);
  if (!ask || await api.checkRepoExists(desired, { signal: t.ctx.signal })) {
    p.notInitializedAttempts.delete(t.key);
    return undefined;
  }
  const attempt = p.notInitializedAttempts.get(t.key) ?? 0;
  p.notInitializedAttempts.set(t.key, attempt + 1);
  const wait = NOT_INITIALIZED_RECHECK_MS[Math.min(attempt, NOT_INITIALIZED_RECHECK_MS.length - 1)]!;
  return stopWith({
    ready: false,
    reason: Reason.RepositoryNotInitialized,
    message: "no restic repository exists at the Secret's RESTIC_REPOSITORY yet (VolSync creates " +
      `it on its first sync); checking again in ${Math.round(wait / 1000)}s. Set ` +
      "spec.repo.autoInitialize: true to let Backrest create it",
    sourceResolved: true,
    secretResolved: true,
    applied: false,
  }, { requeueMs: wait });
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

/** The stop for a failed Backrest call: its reason and message by its kind (outcomes.ts), never its text. */
function backrestFailure(t: Target, e: BackrestError): Stop {
  const c = failureOutcome(e, e.rpc);
  t.ctx.log.debug("Backrest call failed", {
    repoId: t.repoId,
    rpc: e.rpc,
    code: e.code,
    backrestText: e.message,
  });
  return stopWith({
    ready: false,
    reason: c.reason,
    message: c.message,
    sourceResolved: true,
    secretResolved: true,
    applied: false,
    error: c.message,
  }, c.retry ? { retry: `${c.reason}: Backrest ${e.rpc} failed (${e.kind})` } : {});
}

/** DoRepoTask INDEX_SNAPSHOTS then STATS once per completed sync (kinds that make snapshots, opt-in). */
async function tasksStep(
  p: Pipeline,
  t: Target,
  source: VolSyncObject,
  api: BackrestApi,
): Promise<StatusExtra> {
  const { b, repoId, ctx } = t;
  if (!b.spec.repo.triggerTasksOnSnapshot || !VOLSYNC_KIND_INFO[source.kind].snapshotTasks) return {};
  const marker = completedSyncMarker(source);
  if (!marker) return {};
  const seen: StatusExtra = { lastSnapshotMarker: marker.marker, lastSnapshotSyncTime: marker.syncTime };
  if (b.status.lastIndexedSnapshotMarker === marker.marker) return seen;
  const at = formatTime(p.now());
  try {
    p.deps.gate?.check(t.settings);
    await api.doRepoTask(repoId, "index_snapshots", { signal: ctx.signal });
    p.deps.gate?.check(t.settings);
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

/** Ids this Binding applied before and moved away from are free for others now. */
async function releaseMovedIds(p: Pipeline, t: Target): Promise<void> {
  for (const old of p.deps.claims.heldBy(t.key)) {
    if (old.id !== t.repoId) await p.deps.claims.release(old, t.ctx.signal);
  }
}

/** Applied: the status says what Backrest holds. */
async function reportStep(
  p: Pipeline,
  t: Target,
  desired: DesiredRepo,
  source: VolSyncObject,
  applied: Applied,
  extra: StatusExtra,
): Promise<Action> {
  // The location applied now, for a later reconcile to skip CheckRepoExists; needless (and not hashed)
  // while the VolSync object reports a completed sync, which tells that reconcile as much.
  const location = applied.appliedNow && completedSyncMarker(source) === undefined
    ? { appliedRepositoryHash: await desired.repositoryHash() }
    : {};
  await p.status.report(
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
      ...extra,
      repoId: t.repoId,
      backrestURL: t.url,
      lastAppliedInputHash: desired.hash,
      ...location,
      ...(applied.applyTime ? { lastApplyTime: applied.applyTime } : {}),
    },
  );
  if (extra.lastRepoTaskErrorHash && extra.lastIndexedSnapshotMarker === undefined) {
    throw new RetryableError("Backrest repo tasks failed");
  }
  return done;
}
