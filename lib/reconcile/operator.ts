/**
 * Wires the operator: informers (Bindings, VolSync objects, Secrets metadata-only, the OperatorConfig),
 * the controllers and the drift repair, under one manager. Which event wakes which Binding is decided
 * here, through the store indexes; the reconcilers themselves only read the stores. Used by `main.ts`
 * and, unchanged, by the integration tests.
 */
import {
  type BackrestApi,
  backrestClient,
  type BackrestConnection,
  backrestRefusing,
  keyedHasher,
  type StatusHasher,
} from "../backrest/mod.ts";
import {
  EventRecorder,
  isNamespaceTerminating,
  isRecord,
  type KubeClient,
  type KubeObject,
  leases,
  objectKey as keyOf,
  secrets,
} from "../kube/mod.ts";
import type { Logger, RuntimeMetrics } from "../observe/mod.ts";
import {
  compactObject,
  Controller,
  identityOnly,
  type Informer,
  type InformerEvent,
  informerFor,
  intern,
  type LeaderElectionOptions,
  Manager,
  metadataInformerFor,
  type Runnable,
} from "../runtime/mod.ts";
import { autoBindingReconciler } from "./auto_binding.ts";
import { bindingReconciler } from "./binding.ts";
import type { EventSink } from "./binding_status.ts";
import {
  bindingIndexers,
  INDEX_BY_AUTH_SECRET,
  INDEX_BY_GENERATED_NAME,
  INDEX_BY_REPO,
  INDEX_BY_REPOSITORY_SECRET,
  INDEX_BY_SOURCE,
  INDEX_BY_VOLSYNC_REF,
  parseVolsyncKey,
  volsyncIndexers,
  volsyncKey,
} from "./indexes.ts";
import { claimIndexers, LABEL_REPO_CLAIM, readClaim, RepoClaims, slimClaim } from "./claims.ts";
import { ConfigGate, heldWhileUnknown } from "./config_gate.ts";
import { DriftRepair } from "./drift.ts";
import { hashKeyLoader } from "./hash_key.ts";
import {
  backrestLabel,
  countedBackrest,
  createOperatorMetrics,
  ReadyGauge,
  unusedBackrestSweeper,
} from "./metrics.ts";
import { OwnWrites } from "./own_writes.ts";
import { operatorConfigReconciler, putInForce } from "./operator_config.ts";
import { RepoListings } from "./repo_listings.ts";
import {
  bindingType,
  operatorConfigType,
  replicationDestinationType,
  replicationSourceType,
} from "./resources.ts";
import { SettingsHolder } from "./settings.ts";
import type { VolSyncKind } from "../api/mod.ts";

/** How to build the operator. */
export interface OperatorOptions {
  /** The Kubernetes client every informer, reconciler and the elector use. */
  kube: KubeClient;
  /** Namespaces to watch; empty means all. */
  namespaces: readonly string[];
  /** The operator's own namespace: its OperatorConfig, default auth Secret and repo claim Leases. */
  configNamespace: string;
  /** Name of the OperatorConfig to read. */
  configName: string;
  /** Workers of the Binding and auto-binding controllers (the OperatorConfig's has one). */
  concurrency: number;
  /** The logger everything writes to (drift repair as its `drift` child). */
  logger: Logger;
  /** Runtime metrics; when given, the operator's own metrics are registered in its registry too. */
  metrics?: RuntimeMetrics | undefined;
  /** Omit to reconcile without leader election. */
  leaderElection?: Omit<LeaderElectionOptions, "logger" | "metrics" | "clock" | "client"> | undefined;
  /** Backrest clients (default: the pooled Connect client). Tests pass a stand-in here. */
  backrest?: ((connection: BackrestConnection) => BackrestApi) | undefined;
  /** Where Events go (default: an aggregating recorder writing core/v1 Events). */
  events?: (EventSink & Partial<Runnable>) | undefined;
  /** Deadline of each Backrest call. */
  backrestTimeoutMs?: number | undefined;
  /**
   * How status hashes are made. Default: keyed, under the key Secret in `configNamespace` (made when
   * absent; hash_key.ts). Tests pass `stretchedHasher()` to write status as the builds before keys did.
   */
  statusHasher?: StatusHasher | undefined;
  /** Informer resync (re-enqueue everything), default 10 min. */
  resyncMs?: number | undefined;
  /** Extra runnables on every replica (the HTTP server). */
  runnables?: readonly Runnable[] | undefined;
}

/** The built operator. */
export interface Operator {
  /** Runs the caches everywhere and the controllers (and drift repair) on the leader: call `start`. */
  readonly manager: Manager;
  /** The operator settings in force. */
  readonly settings: SettingsHolder;
  /** Whether the OperatorConfig in force is known to be current: Backrest is called only while it is. */
  readonly gate: ConfigGate;
  /** The drift repair, started with the controllers. */
  readonly drift: DriftRepair;
  /** The Bindings informer (its store is the Binding cache). */
  readonly bindings: Informer<KubeObject>;
  /** The Secrets informer (metadata only: names and resourceVersions). */
  readonly secrets: Informer<KubeObject>;
  /** The three controllers, by what they reconcile. */
  readonly controllers: { binding: Controller; autoBinding: Controller; operatorConfig: Controller };
}

/**
 * Keeps of a VolSync object only what the operator reads (metadata, spec.restic's repository and customCA,
 * the sync status), so mover logs and the rest of large specs never sit in memory.
 */
export function slimVolSync(obj: KubeObject): KubeObject {
  const { metadata, apiVersion, kind } = compactObject(obj);
  const spec = isRecord(obj.spec) ? obj.spec : {};
  const restic = isRecord(spec.restic) ? spec.restic : undefined;
  const status = isRecord(obj.status) ? obj.status : {};
  const mover = isRecord(status.latestMoverStatus) ? status.latestMoverStatus : undefined;
  return {
    ...(apiVersion ? { apiVersion } : {}),
    ...(kind ? { kind } : {}),
    metadata,
    spec: restic ? { restic: { repository: restic.repository, customCA: restic.customCA } } : {},
    status: {
      lastSyncTime: status.lastSyncTime,
      lastManualSync: status.lastManualSync,
      ...(mover ? { latestMoverStatus: { result: mover.result } } : {}),
    },
  };
}

/**
 * {@linkcode compactObject} for Bindings, also sharing the strings many Bindings repeat: the Backrest URL
 * (spec and status) and the source kind.
 */
export function compactBinding(obj: KubeObject): KubeObject {
  const out = compactObject(obj);
  if (isRecord(out.spec)) {
    const spec = { ...out.spec };
    if (isRecord(spec.backrest) && typeof spec.backrest.url === "string") {
      spec.backrest = { ...spec.backrest, url: intern(spec.backrest.url) };
    }
    if (isRecord(spec.source) && typeof spec.source.kind === "string") {
      spec.source = { ...spec.source, kind: intern(spec.source.kind) };
    }
    out.spec = spec;
  }
  if (isRecord(out.status) && typeof out.status.backrestURL === "string") {
    out.status = { ...out.status, backrestURL: intern(out.status.backrestURL) };
  }
  return out;
}

/** Builds informers, controllers and the manager. */
export function createOperator(o: OperatorOptions): Operator {
  const log = o.logger;
  const namespaces = o.namespaces;
  const resyncMs = o.resyncMs ?? 600_000;
  const common = { namespaces, resyncMs, logger: log };

  const bindings = informerFor(o.kube, bindingType, {
    ...common,
    indexers: bindingIndexers,
    transform: compactBinding,
  });
  const sources = informerFor(o.kube, replicationSourceType, {
    ...common,
    indexers: volsyncIndexers("ReplicationSource"),
    transform: slimVolSync,
  });
  const destinations = informerFor(o.kube, replicationDestinationType, {
    ...common,
    indexers: volsyncIndexers("ReplicationDestination"),
    transform: slimVolSync,
  });
  // Secrets: metadata only, never data. A change of resourceVersion is all we need to hear.
  // Confined to namespaces, it also watches the operator's own, where the default auth Secret lives.
  const secretNamespaces = namespaces.length > 0
    ? [...new Set([...namespaces, o.configNamespace])]
    : namespaces;
  const secretMeta = metadataInformerFor(o.kube, secrets, {
    namespaces: secretNamespaces,
    logger: log,
    transform: identityOnly,
  });
  // After any failure the one OperatorConfig is listed again rather than its watch resumed: a resumed
  // watch replays what it missed (a pause, say) only after it opened, and the gate opens when it opens.
  const configs = informerFor(o.kube, operatorConfigType, {
    namespaces: [o.configNamespace],
    fieldSelector: `metadata.name=${o.configName}`,
    logger: log,
    transform: compactObject,
    relistAfterFailure: true,
  });
  // The repo id ledger: Leases in the operator's own namespace, out of namespace users' reach.
  const claimLeases = informerFor(o.kube, leases, {
    name: "repo-claims",
    namespaces: [o.configNamespace],
    labelSelector: `${LABEL_REPO_CLAIM}=true`,
    logger: log,
    indexers: claimIndexers,
    transform: slimClaim,
  });
  const claims = new RepoClaims(o.kube, claimLeases.store, o.configNamespace);

  const settings = new SettingsHolder(o.configNamespace, o.configName);
  const recorder = o.events ?? new EventRecorder({
    client: o.kube,
    component: "backrest-volsync-operator",
    // A namespace being deleted takes no new Events: expected, not worth an error line per Binding.
    onError: (e) =>
      isNamespaceTerminating(e)
        ? log.debug("Event dropped: its namespace is terminating")
        : log.error("Event write failed", e),
  });
  const own = o.metrics ? createOperatorMetrics(o.metrics.registry) : undefined;
  // Backrest is called only while every cache is current, the OperatorConfig's first (config_gate.ts).
  const gate = new ConfigGate({
    caches: [configs, claimLeases, bindings, sources, destinations, secretMeta],
    settings: () => settings.current,
    logger: log.named("config-gate"),
    known: own?.configKnown,
    holds: own?.configHolds,
  });
  const clients = o.backrest ?? ((c: BackrestConnection) => backrestClient(c));
  // Refused calls never reach Backrest, so they are not counted as Backrest requests.
  const backrest = gate.gatedBackrest(own ? countedBackrest(clients, own.backrestRequests) : clients);
  const listings = new RepoListings({ backrest });
  if (own) bindings.addHandler(unusedBackrestSweeper(own, bindings.store));

  const drift = new DriftRepair({
    bindings: bindings.store,
    listings,
    periodMs: () => settings.current.spec.resyncPeriodMs,
    active: () => !settings.current.spec.paused,
    whenKnown: (signal) => gate.waitKnown(signal),
    enqueue: (key) => binding.enqueue(key),
    ...(own ? { repaired: (url: string) => own.driftRepairs.inc({ backrest: backrestLabel(url) }) } : {}),
    logger: log.named("drift"),
  });
  const ownWrites = new OwnWrites();
  const reconcileBinding = bindingReconciler({
    kube: o.kube,
    bindings: bindings.store,
    replicationSources: sources.store,
    replicationDestinations: destinations.store,
    settings: () => settings.current,
    backrest,
    events: recorder,
    drift,
    claims,
    listings,
    ownWrites,
    gate,
    ...(own ? { readiness: new ReadyGauge(own.bindingReady) } : {}),
    // Only the real clients share breakers; a stand-in given for tests never refuses.
    ...(o.backrest ? {} : { backrestRefusing }),
    ...(o.backrestTimeoutMs ? { backrestTimeoutMs: o.backrestTimeoutMs } : {}),
    hasher: o.statusHasher ?? keyedHasher(hashKeyLoader(o.kube, o.configNamespace, log)),
  });
  const binding = new Controller({
    name: "backrestvolsyncbinding",
    // Held while the OperatorConfig in force is not known. A reconcile that starts before the event of our
    // last status write came back reads the object from before it: that event must wake the Binding again,
    // whatever this reconcile concludes.
    reconcile: heldWhileUnknown(
      gate,
      "backrestvolsyncbinding",
      (key) => binding.enqueue(key),
      (key, ctx) => (ownWrites.reconciling(key), reconcileBinding(key, ctx)),
    ),
    concurrency: o.concurrency,
    logger: log,
    metrics: o.metrics,
    // A failed AddRepo runs restic on the Backrest server: retry from 1 s, doubling up to 5 min. Namespaces
    // take turns and none holds every worker, so one namespace's churn cannot make the others wait.
    queue: {
      baseDelayMs: 1000,
      maxDelayMs: 300_000,
      shardOf: (key) => key.slice(0, key.indexOf("/")),
      maxInFlightPerShard: Math.max(1, o.concurrency - 1),
    },
    // In-flight AddRepo calls get 15 s on shutdown, so the Lease is released within main.ts's bound.
    shutdownTimeoutMs: 15_000,
  });

  const autoBinding = new Controller({
    name: "volsync-autobinding",
    // Keys are VolSync keys, namespace first: namespaces take turns here too.
    queue: {
      shardOf: (key) => key.slice(0, key.indexOf("/")),
      maxInFlightPerShard: Math.max(1, o.concurrency - 1),
    },
    // No generated Binding is created, changed or deleted while the OperatorConfig is not known.
    reconcile: heldWhileUnknown(
      gate,
      "volsync-autobinding",
      (key) => autoBinding.enqueue(key),
      autoBindingReconciler({
        kube: o.kube,
        bindings: bindings.store,
        replicationSources: sources.store,
        replicationDestinations: destinations.store,
        settings: () => settings.current,
        gate,
      }),
    ),
    logFields: (key) => {
      const ref = parseVolsyncKey(key);
      return ref ? { namespace: ref.namespace, kind: ref.kind, name: ref.name } : { name: key };
    },
    concurrency: o.concurrency,
    logger: log,
    metrics: o.metrics,
  });
  const operatorConfig = new Controller({
    name: "backrestvolsyncoperatorconfig",
    reconcile: operatorConfigReconciler({
      kube: o.kube,
      configs: configs.store,
      holder: settings,
      events: recorder,
    }),
    concurrency: 1,
    logger: log,
    metrics: o.metrics,
  });

  // Bindings: the object itself, and every rival claiming the same repo (a released claim frees them);
  // not the echo of the reconciler's own status write, which changes neither.
  binding.watch(bindings, (e) => {
    const key = keyOf(e.object);
    if (e.type !== "resync" && ownWrites.isEcho(key, e)) return [];
    return [key, ...bindingsClaiming(e)];
  });
  const bindingsClaiming = (e: InformerEvent<KubeObject>): string[] => {
    const ids = new Set(bindingIndexers[INDEX_BY_REPO](e.object));
    if (e.type === "update") { for (const c of bindingIndexers[INDEX_BY_REPO](e.old)) ids.add(c); }
    return [...ids].flatMap((c) => bindings.store.keysByIndex(INDEX_BY_REPO, c));
  };
  // Claims: one whose Binding is gone (deleted while no operator ran) wakes that key, whose reconcile
  // releases it; one given up wakes every Binding that asks for its id.
  binding.watch(claimLeases, (e) => {
    const claim = readClaim(e.object);
    if (!claim || e.type === "resync") return [];
    if (e.type === "delete") return bindings.store.keysByIndex(INDEX_BY_REPO, claim.id);
    const holder = bindings.store.get(claim.holder.key);
    return holder?.metadata.uid === claim.holder.uid ? [] : [claim.holder.key];
  });
  // VolSync objects: the Bindings that name them.
  const volsync = [[sources, "ReplicationSource"], [destinations, "ReplicationDestination"]] as const;
  const keyOfVolSync = (kind: VolSyncKind, obj: KubeObject) =>
    volsyncKey(obj.metadata.namespace ?? "", kind, obj.metadata.name ?? "");
  for (const [informer, kind] of volsync) {
    binding.watch(informer, (e) => bindings.store.keysByIndex(INDEX_BY_SOURCE, keyOfVolSync(kind, e.object)));
    // The object, and the others whose generated name it shares (theirs may move when it comes or goes).
    const sharedName = volsyncIndexers(kind)[INDEX_BY_GENERATED_NAME];
    autoBinding.watch(informer, (e) => [
      keyOfVolSync(kind, e.object),
      ...sharedName(e.object).flatMap((v) =>
        informer.store.byIndex(INDEX_BY_GENERATED_NAME, v).map((o) => keyOfVolSync(kind, o))
      ),
    ]);
  }
  // Managed Bindings changed by someone else: repair them from their VolSync object.
  autoBinding.watch(bindings, (e) => bindingIndexers[INDEX_BY_VOLSYNC_REF](e.object));
  // Secrets: repository Secrets (through the VolSync objects that name them), auth Secrets, and the
  // operator's default auth Secret (every Binding may use it).
  binding.watch(secretMeta, (e) => {
    if (e.type === "resync") return [];
    const ref = keyOf(e.object);
    const keys = new Set<string>(bindings.store.keysByIndex(INDEX_BY_AUTH_SECRET, ref));
    for (const [informer, kind] of volsync) {
      for (const v of informer.store.byIndex(INDEX_BY_REPOSITORY_SECRET, ref)) {
        for (const k of bindings.store.keysByIndex(INDEX_BY_SOURCE, keyOfVolSync(kind, v))) keys.add(k);
      }
    }
    const s = settings.current;
    if (
      e.object.metadata.namespace === s.configNamespace &&
      e.object.metadata.name === s.spec.defaultBackrest.authRef?.name
    ) {
      for (const k of bindings.store.keys()) keys.add(k);
    }
    return [...keys];
  });
  // The settings follow the config cache in the same breath as it changes, so no reconcile ever sees the
  // cache ahead of the settings in force (config_gate.ts); the reconciler reports the config's status.
  configs.addHandler((e) => {
    if (e.type !== "resync") {
      void putInForce(settings, configs.store.getByName(o.configNamespace, o.configName));
    }
  });
  operatorConfig.watch(configs);
  // A settings change (pause, allowlist, defaults, policy) concerns every Binding and VolSync object, and
  // a new resync period applies from now, not after the old one's wait.
  settings.onChange((next, previous) => {
    if (next.spec.resyncPeriodMs !== previous.spec.resyncPeriodMs) drift.periodChanged();
    for (const k of bindings.store.keys()) binding.enqueue(k);
    for (const [informer, kind] of volsync) {
      for (const o of informer.store.list()) autoBinding.enqueue(keyOfVolSync(kind, o));
    }
  });

  const manager = new Manager({
    caches: [configs, claimLeases, bindings, sources, destinations, secretMeta],
    // No Binding is reconciled before the OperatorConfig in the cache is in force (fail closed).
    beforeControllers: () =>
      void putInForce(settings, configs.store.getByName(o.configNamespace, o.configName)),
    controllers: [operatorConfig, binding, autoBinding],
    leaderRunnables: [drift],
    runnables: [
      ...(recorder.start ? [{ start: (s: AbortSignal) => recorder.start!(s) }] : []),
      ...(o.runnables ?? []),
    ],
    ...(o.leaderElection ? { leaderElection: { ...o.leaderElection, client: o.kube } } : {}),
    logger: log,
    metrics: o.metrics,
  });
  return {
    manager,
    settings,
    gate,
    drift,
    bindings,
    secrets: secretMeta,
    controllers: { binding, autoBinding, operatorConfig },
  };
}
