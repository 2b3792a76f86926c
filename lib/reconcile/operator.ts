/**
 * Wires the operator: its caches (caches.ts), the parts every controller shares (settings, the config
 * gate, the Backrest clients, listings, drift repair), the three controllers, which event wakes which key
 * (through the store indexes: the reconcilers themselves only read the stores), and the manager that runs
 * them. Used by `main.ts` and, unchanged, by the integration tests.
 */
import { perVolSyncKind, VOLSYNC_KINDS, type VolSyncKind } from "../api/mod.ts";
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
  type KubeClient,
  type KubeObject,
  objectKey as keyOf,
} from "../kube/mod.ts";
import type { Logger, RuntimeMetrics } from "../observe/mod.ts";
import {
  Controller,
  type Informer,
  type InformerEvent,
  type LeaderElectionOptions,
  Manager,
  type Runnable,
} from "../runtime/mod.ts";
import { autoBindingReconciler } from "./auto_binding.ts";
import { bindingReconciler } from "./binding.ts";
import type { EventSink } from "./binding_status.ts";
import { type OperatorCaches, operatorCaches } from "./caches.ts";
import { readClaim, RepoClaims } from "./claims.ts";
import { ConfigGate, heldWhileUnknown } from "./config_gate.ts";
import { DriftRepair } from "./drift.ts";
import { hashKeyLoader } from "./hash_key.ts";
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
import {
  backrestLabel,
  countedBackrest,
  createOperatorMetrics,
  type OperatorMetrics,
  ReadyGauge,
  unusedBackrestSweeper,
} from "./metrics.ts";
import { OwnWrites } from "./own_writes.ts";
import { operatorConfigReconciler, putInForce } from "./operator_config.ts";
import { RepoListings } from "./repo_listings.ts";
import { SettingsHolder } from "./settings.ts";

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
  readonly controllers: Controllers;
}

/** The three controllers. */
export interface Controllers {
  /** Reconciles Bindings (keys `namespace/name`). */
  binding: Controller;
  /** Generates Bindings for VolSync objects (keys `namespace/Kind/name`). */
  autoBinding: Controller;
  /** Reports the OperatorConfig and puts it in force. */
  operatorConfig: Controller;
}

/** What the controllers share. */
interface Shared {
  settings: SettingsHolder;
  events: EventSink & Partial<Runnable>;
  metrics: OperatorMetrics | undefined;
  gate: ConfigGate;
  /** Gated (and counted) Backrest clients. */
  backrest: (connection: BackrestConnection) => BackrestApi;
  listings: RepoListings;
  claims: RepoClaims;
  ownWrites: OwnWrites;
}

/** Builds informers, controllers and the manager. */
export function createOperator(o: OperatorOptions): Operator {
  const caches = operatorCaches({ ...o, resyncMs: o.resyncMs ?? 600_000 });
  const shared = sharedParts(o, caches);
  // Drift repair wakes the Binding controller, which is built after it (and before it can run).
  const drift = driftRepair(o, caches, shared, (key) => controllers.binding.enqueue(key));
  const controllers = buildControllers(o, caches, shared, drift);
  wireEvents(o, caches, shared, controllers, drift);
  const manager = new Manager({
    caches: caches.all,
    // No Binding is reconciled before the OperatorConfig in the cache is in force (fail closed).
    beforeControllers: () =>
      void putInForce(shared.settings, caches.configs.store.getByName(o.configNamespace, o.configName)),
    controllers: [controllers.operatorConfig, controllers.binding, controllers.autoBinding],
    leaderRunnables: [drift],
    runnables: [
      ...(shared.events.start ? [{ start: (s: AbortSignal) => shared.events.start!(s) }] : []),
      ...(o.runnables ?? []),
    ],
    ...(o.leaderElection ? { leaderElection: { ...o.leaderElection, client: o.kube } } : {}),
    logger: o.logger,
    metrics: o.metrics,
  });
  return {
    manager,
    settings: shared.settings,
    gate: shared.gate,
    drift,
    bindings: caches.bindings,
    secrets: caches.secrets,
    controllers,
  };
}

/** The settings, Events, metrics, config gate, Backrest clients, listings and claims. */
function sharedParts(o: OperatorOptions, caches: OperatorCaches): Shared {
  const log = o.logger;
  const settings = new SettingsHolder(o.configNamespace, o.configName);
  const events = o.events ?? new EventRecorder({
    client: o.kube,
    component: "backrest-volsync-operator",
    // A namespace being deleted takes no new Events: expected, not worth an error line per Binding.
    onError: (e) =>
      isNamespaceTerminating(e)
        ? log.debug("Event dropped: its namespace is terminating")
        : log.error("Event write failed", e),
  });
  const metrics = o.metrics ? createOperatorMetrics(o.metrics.registry) : undefined;
  // Backrest is called only while every cache is current, the OperatorConfig's first (config_gate.ts).
  const gate = new ConfigGate({
    caches: caches.all,
    settings: () => settings.current,
    logger: log.named("config-gate"),
    known: metrics?.configKnown,
    holds: metrics?.configHolds,
  });
  const clients = o.backrest ?? ((c: BackrestConnection) => backrestClient(c));
  // Refused calls never reach Backrest, so they are not counted as Backrest requests.
  const backrest = gate.gatedBackrest(metrics ? countedBackrest(clients, metrics.backrestRequests) : clients);
  if (metrics) caches.bindings.addHandler(unusedBackrestSweeper(metrics, caches.bindings.store));
  return {
    settings,
    events,
    metrics,
    gate,
    backrest,
    listings: new RepoListings({ backrest }),
    claims: new RepoClaims(o.kube, caches.claimLeases.store, o.configNamespace),
    ownWrites: new OwnWrites(),
  };
}

/** Drift repair: one listing per Backrest per period, on the leader, while the config is known. */
function driftRepair(
  o: OperatorOptions,
  caches: OperatorCaches,
  shared: Shared,
  enqueue: (key: string) => void,
): DriftRepair {
  const { settings, metrics } = shared;
  return new DriftRepair({
    bindings: caches.bindings.store,
    listings: shared.listings,
    periodMs: () => settings.current.spec.resyncPeriodMs,
    active: () => !settings.current.spec.paused,
    whenKnown: (signal) => shared.gate.waitKnown(signal),
    enqueue,
    ...(metrics
      ? { repaired: (url: string) => metrics.driftRepairs.inc({ backrest: backrestLabel(url) }) }
      : {}),
    logger: o.logger.named("drift"),
  });
}

/** The Binding, auto-binding and OperatorConfig controllers over their reconcilers. */
function buildControllers(
  o: OperatorOptions,
  caches: OperatorCaches,
  shared: Shared,
  drift: DriftRepair,
): Controllers {
  const { gate, settings } = shared;
  const volsync = perVolSyncKind((kind) => caches.volsync[kind].store);
  const reconcileBinding = bindingReconciler({
    kube: o.kube,
    bindings: caches.bindings.store,
    volsync,
    settings: () => settings.current,
    backrest: shared.backrest,
    events: shared.events,
    drift,
    claims: shared.claims,
    listings: shared.listings,
    ownWrites: shared.ownWrites,
    gate,
    ...(shared.metrics ? { readiness: new ReadyGauge(shared.metrics.bindingReady) } : {}),
    // Only the real clients share breakers; a stand-in given for tests never refuses.
    ...(o.backrest ? {} : { backrestRefusing }),
    ...(o.backrestTimeoutMs ? { backrestTimeoutMs: o.backrestTimeoutMs } : {}),
    hasher: o.statusHasher ?? keyedHasher(hashKeyLoader(o.kube, o.configNamespace, o.logger)),
  });
  // Namespaces take turns and none holds every worker, so one namespace's churn cannot make others wait.
  const byNamespace = {
    shardOf: (key: string) => key.slice(0, key.indexOf("/")),
    maxInFlightPerShard: Math.max(1, o.concurrency - 1),
  };
  const common = { concurrency: o.concurrency, logger: o.logger, metrics: o.metrics };
  const binding: Controller = new Controller({
    ...common,
    name: "backrestvolsyncbinding",
    // Held while the OperatorConfig in force is not known. A reconcile that starts before the event of our
    // last status write came back reads the object from before it: that event must wake the Binding again,
    // whatever this reconcile concludes.
    reconcile: heldWhileUnknown(
      gate,
      "backrestvolsyncbinding",
      (key) => binding.enqueue(key),
      (key, ctx) => (shared.ownWrites.reconciling(key), reconcileBinding(key, ctx)),
    ),
    // A failed AddRepo runs restic on the Backrest server: retry from 1 s, doubling up to 5 min.
    queue: { ...byNamespace, baseDelayMs: 1000, maxDelayMs: 300_000 },
    // In-flight AddRepo calls get 15 s on shutdown, so the Lease is released within main.ts's bound.
    shutdownTimeoutMs: 15_000,
  });
  const autoBinding: Controller = new Controller({
    ...common,
    name: "volsync-autobinding",
    // Keys are VolSync keys, namespace first.
    queue: byNamespace,
    // No generated Binding is created, changed or deleted while the OperatorConfig is not known.
    reconcile: heldWhileUnknown(
      gate,
      "volsync-autobinding",
      (key) => autoBinding.enqueue(key),
      autoBindingReconciler({
        kube: o.kube,
        bindings: caches.bindings.store,
        volsync,
        settings: () => settings.current,
        gate,
      }),
    ),
    logFields: (key) => {
      const ref = parseVolsyncKey(key);
      return ref ? { namespace: ref.namespace, kind: ref.kind, name: ref.name } : { name: key };
    },
  });
  const operatorConfig = new Controller({
    ...common,
    name: "backrestvolsyncoperatorconfig",
    reconcile: operatorConfigReconciler({
      kube: o.kube,
      configs: caches.configs.store,
      holder: settings,
      events: shared.events,
    }),
    concurrency: 1,
  });
  return { binding, autoBinding, operatorConfig };
}

/** Which event wakes which key: the reconcilers read the stores, never the event. */
function wireEvents(
  o: OperatorOptions,
  caches: OperatorCaches,
  shared: Shared,
  { binding, autoBinding, operatorConfig }: Controllers,
  drift: DriftRepair,
): void {
  const bindings = caches.bindings.store;
  const keyOfVolSync = (kind: VolSyncKind, obj: KubeObject) =>
    volsyncKey(obj.metadata.namespace ?? "", kind, obj.metadata.name ?? "");
  // Bindings: the object itself, and every rival claiming the same repo (a released claim frees them);
  // not the echo of the reconciler's own status write, which changes neither.
  const bindingsClaiming = (e: InformerEvent<KubeObject>): string[] => {
    const ids = new Set(bindingIndexers[INDEX_BY_REPO](e.object));
    if (e.type === "update") { for (const c of bindingIndexers[INDEX_BY_REPO](e.old)) ids.add(c); }
    return [...ids].flatMap((c) => bindings.keysByIndex(INDEX_BY_REPO, c));
  };
  binding.watch(caches.bindings, (e) => {
    const key = keyOf(e.object);
    if (e.type !== "resync" && shared.ownWrites.isEcho(key, e)) return [];
    return [key, ...bindingsClaiming(e)];
  });
  // Claims: one whose Binding is gone (deleted while no operator ran) wakes that key, whose reconcile
  // releases it; one given up wakes every Binding that asks for its id.
  binding.watch(caches.claimLeases, (e) => {
    const claim = readClaim(e.object);
    if (!claim || e.type === "resync") return [];
    if (e.type === "delete") return bindings.keysByIndex(INDEX_BY_REPO, claim.id);
    const holder = bindings.get(claim.holder.key);
    return holder?.metadata.uid === claim.holder.uid ? [] : [claim.holder.key];
  });
  for (const kind of VOLSYNC_KINDS) {
    const informer = caches.volsync[kind];
    // VolSync objects: the Bindings that name them.
    binding.watch(informer, (e) => bindings.keysByIndex(INDEX_BY_SOURCE, keyOfVolSync(kind, e.object)));
    // The object, and the others whose generated name it shares (theirs may move when it comes or goes).
    const sharedName = volsyncIndexers(kind)[INDEX_BY_GENERATED_NAME];
    autoBinding.watch(informer, (e) => [
      keyOfVolSync(kind, e.object),
      ...sharedName(e.object).flatMap((v) =>
        informer.store.byIndex(INDEX_BY_GENERATED_NAME, v).map((obj) => keyOfVolSync(kind, obj))
      ),
    ]);
  }
  // Managed Bindings changed by someone else: repair them from their VolSync object.
  autoBinding.watch(caches.bindings, (e) => bindingIndexers[INDEX_BY_VOLSYNC_REF](e.object));
  // Secrets: repository Secrets (through the VolSync objects that name them), auth Secrets, and the
  // operator's default auth Secret (every Binding may use it).
  binding.watch(caches.secrets, (e) => {
    if (e.type === "resync") return [];
    const ref = keyOf(e.object);
    const keys = new Set<string>(bindings.keysByIndex(INDEX_BY_AUTH_SECRET, ref));
    for (const kind of VOLSYNC_KINDS) {
      for (const v of caches.volsync[kind].store.byIndex(INDEX_BY_REPOSITORY_SECRET, ref)) {
        for (const k of bindings.keysByIndex(INDEX_BY_SOURCE, keyOfVolSync(kind, v))) keys.add(k);
      }
    }
    const s = shared.settings.current;
    if (
      e.object.metadata.namespace === s.configNamespace &&
      e.object.metadata.name === s.spec.defaultBackrest.authRef?.name
    ) {
      for (const k of bindings.keys()) keys.add(k);
    }
    return [...keys];
  });
  // The settings follow the config cache in the same breath as it changes, so no reconcile ever sees the
  // cache ahead of the settings in force (config_gate.ts); the reconciler reports the config's status.
  caches.configs.addHandler((e) => {
    if (e.type !== "resync") {
      void putInForce(shared.settings, caches.configs.store.getByName(o.configNamespace, o.configName));
    }
  });
  operatorConfig.watch(caches.configs);
  // A settings change (pause, allowlist, defaults, policy) concerns every Binding and VolSync object, and
  // a new resync period applies from now, not after the old one's wait.
  shared.settings.onChange((next, previous) => {
    if (next.spec.resyncPeriodMs !== previous.spec.resyncPeriodMs) drift.periodChanged();
    for (const k of bindings.keys()) binding.enqueue(k);
    for (const kind of VOLSYNC_KINDS) {
      for (const obj of caches.volsync[kind].store.list()) autoBinding.enqueue(keyOfVolSync(kind, obj));
    }
  });
}
