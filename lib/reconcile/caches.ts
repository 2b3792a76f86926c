/**
 * The operator's caches: one informer per resource it watches (Bindings, each VolSync kind, Secrets as
 * metadata only, the one OperatorConfig, the repo claim Leases), each holding as little as the reconcilers
 * read. Rule: every cache is built here, with its indexes and its slimming transform; nothing else lists or
 * watches.
 */
import { perVolSyncKind, VOLSYNC_KINDS, type VolSyncKind } from "../api/mod.ts";
import { isRecord, type KubeClient, type KubeObject, leases, secrets } from "../kube/mod.ts";
import type { Logger } from "../observe/mod.ts";
import {
  compactObject,
  identityOnly,
  type Informer,
  informerFor,
  intern,
  metadataInformerFor,
  type Store,
} from "../runtime/mod.ts";
import { claimIndexers, LABEL_REPO_CLAIM, slimClaim } from "./claims.ts";
import { bindingIndexers, volsyncIndexers } from "./indexes.ts";
import { bindingType, operatorConfigType, volsyncTypes } from "./resources.ts";

/** What the caches are built for. */
export interface CacheOptions {
  /** The client every informer lists and watches with. */
  kube: KubeClient;
  /** Namespaces to watch; empty means all. */
  namespaces: readonly string[];
  /** The operator's own namespace: its OperatorConfig, default auth Secret and repo claim Leases. */
  configNamespace: string;
  /** Name of the OperatorConfig to read. */
  configName: string;
  /** Informer resync (re-enqueue everything). */
  resyncMs: number;
  /** Logs the watchers' lines. */
  logger: Logger;
}

/** The caches of VolSync objects, one per kind. */
export type VolSyncStores = { readonly [K in VolSyncKind]: Store<KubeObject> };

/** The operator's informers. */
export interface OperatorCaches {
  /** Bindings, full objects (managedFields dropped, repeated strings shared). */
  readonly bindings: Informer<KubeObject>;
  /** VolSync objects by kind, slimmed to what the reconcilers read. */
  readonly volsync: { readonly [K in VolSyncKind]: Informer<KubeObject> };
  /** Secrets: names and resourceVersions only, never data. */
  readonly secrets: Informer<KubeObject>;
  /** The one OperatorConfig the operator follows. */
  readonly configs: Informer<KubeObject>;
  /** The repo id ledger: Leases in the operator's own namespace. */
  readonly claimLeases: Informer<KubeObject>;
  /** All of them, the OperatorConfig's first (the manager syncs them; the config gate watches them). */
  readonly all: readonly Informer<KubeObject>[];
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

/** Builds the informers (none runs until the manager starts it). */
export function operatorCaches(o: CacheOptions): OperatorCaches {
  const common = { namespaces: o.namespaces, resyncMs: o.resyncMs, logger: o.logger };
  const bindings = informerFor(o.kube, bindingType, {
    ...common,
    indexers: bindingIndexers,
    transform: compactBinding,
  });
  const volsync = perVolSyncKind((kind) =>
    informerFor(o.kube, volsyncTypes[kind], {
      ...common,
      indexers: volsyncIndexers(kind),
      transform: slimVolSync,
    })
  );
  // Secrets: metadata only, never data. A change of resourceVersion is all we need to hear.
  // Confined to namespaces, it also watches the operator's own, where the default auth Secret lives.
  const secretMeta = metadataInformerFor(o.kube, secrets, {
    namespaces: o.namespaces.length > 0 ? [...new Set([...o.namespaces, o.configNamespace])] : o.namespaces,
    logger: o.logger,
    transform: identityOnly,
  });
  // After any failure the one OperatorConfig is listed again rather than its watch resumed: a resumed
  // watch replays what it missed (a pause, say) only after it opened, and the gate opens when it opens.
  const configs = informerFor(o.kube, operatorConfigType, {
    namespaces: [o.configNamespace],
    fieldSelector: `metadata.name=${o.configName}`,
    logger: o.logger,
    transform: compactObject,
    relistAfterFailure: true,
  });
  // The repo id ledger: Leases in the operator's own namespace, out of namespace users' reach.
  const claimLeases = informerFor(o.kube, leases, {
    name: "repo-claims",
    namespaces: [o.configNamespace],
    labelSelector: `${LABEL_REPO_CLAIM}=true`,
    logger: o.logger,
    indexers: claimIndexers,
    transform: slimClaim,
  });
  return {
    bindings,
    volsync,
    secrets: secretMeta,
    configs,
    claimLeases,
    all: [configs, claimLeases, bindings, ...VOLSYNC_KINDS.map((k) => volsync[k]), secretMeta],
  };
}
