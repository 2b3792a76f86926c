/**
 * Names shared with the Go prototype and with users: API group, kinds, labels, annotations, finalizer,
 * condition types and reasons. Rule: every value that reaches the apiserver, an object or a status is
 * spelled here once; the prototype's values are kept byte for byte.
 */

/** API group of both CRDs. */
export const GROUP = "backrest.garethgeorge.com";
/** Version of both CRDs. */
export const VERSION = "v1alpha1";
/** `group/version`, the apiVersion of our objects. */
export const API_VERSION = `${GROUP}/${VERSION}`;

/** Kind of the Binding CRD. */
export const BINDING_KIND = "BackrestVolSyncBinding";
/** Kind of the OperatorConfig CRD. */
export const OPERATOR_CONFIG_KIND = "BackrestVolSyncOperatorConfig";
/** Plural (resource) of the Binding CRD. */
export const BINDING_PLURAL = "backrestvolsyncbindings";
/** Plural (resource) of the OperatorConfig CRD. */
export const OPERATOR_CONFIG_PLURAL = "backrestvolsyncoperatorconfigs";

/** VolSync's API group. */
export const VOLSYNC_GROUP = "volsync.backube";
/** VolSync's API version. */
export const VOLSYNC_VERSION = "v1alpha1";

/** Where a resource lives on the apiserver. */
export interface ResourceRef {
  /** API group, e.g. {@link GROUP}. */
  readonly group: string;
  /** API version within the group. */
  readonly version: string;
  /** The resource name in URL paths (lowercase plural). */
  readonly plural: string;
  /** The kind its objects carry. */
  readonly kind: string;
  /** Whether its objects live in a namespace. */
  readonly namespaced: boolean;
}

/** The Binding resource. */
export const BINDING_RESOURCE: ResourceRef = {
  group: GROUP,
  version: VERSION,
  plural: BINDING_PLURAL,
  kind: BINDING_KIND,
  namespaced: true,
};
/** The OperatorConfig resource. */
export const OPERATOR_CONFIG_RESOURCE: ResourceRef = {
  group: GROUP,
  version: VERSION,
  plural: OPERATOR_CONFIG_PLURAL,
  kind: OPERATOR_CONFIG_KIND,
  namespaced: true,
};
/** VolSync's ReplicationSource resource. */
export const REPLICATION_SOURCE_RESOURCE: ResourceRef = {
  group: VOLSYNC_GROUP,
  version: VOLSYNC_VERSION,
  plural: "replicationsources",
  kind: "ReplicationSource",
  namespaced: true,
};
/** VolSync's ReplicationDestination resource. */
export const REPLICATION_DESTINATION_RESOURCE: ResourceRef = {
  group: VOLSYNC_GROUP,
  version: VOLSYNC_VERSION,
  plural: "replicationdestinations",
  kind: "ReplicationDestination",
  namespaced: true,
};

/** What the operator needs to know of one VolSync kind. */
export interface VolSyncKindInfo {
  /** Where its objects live. */
  readonly resource: ResourceRef;
  /** The name prefix of the Bindings auto-binding generates for it (the prototype's). */
  readonly generatedPrefix: string;
  /** Whether a completed sync leaves a new snapshot for Backrest to index (`triggerTasksOnSnapshot`). */
  readonly snapshotTasks: boolean;
}

/** The VolSync kinds a Binding can point at. */
export const VOLSYNC_KINDS = ["ReplicationSource", "ReplicationDestination"] as const;
/** A VolSync kind. */
export type VolSyncKind = typeof VOLSYNC_KINDS[number];

/**
 * What is kind-specific, as data: everything the operator does differently per VolSync kind is read here,
 * so a third kind is one entry in {@linkcode VOLSYNC_KINDS} and one here (plus its CRD in the tests and its
 * RBAC), and a kind without an entry does not type-check.
 */
export const VOLSYNC_KIND_INFO: { readonly [K in VolSyncKind]: VolSyncKindInfo } = {
  ReplicationSource: {
    resource: REPLICATION_SOURCE_RESOURCE,
    generatedPrefix: "bvsb-rs-",
    snapshotTasks: true,
  },
  ReplicationDestination: {
    resource: REPLICATION_DESTINATION_RESOURCE,
    generatedPrefix: "bvsb-rd-",
    snapshotTasks: false,
  },
};

/** One value per VolSync kind, made by `value`: the one place such a record is built. */
export function perVolSyncKind<T>(value: (kind: VolSyncKind) => T): { [K in VolSyncKind]: T } {
  const out: Partial<Record<VolSyncKind, T>> = {};
  for (const kind of VOLSYNC_KINDS) out[kind] = value(kind);
  return out as { [K in VolSyncKind]: T };
}

/** Label on generated Bindings (value `"true"`); Bindings without it are never touched by auto-binding. */
export const LABEL_MANAGED = `${GROUP}/managed`;
/** Annotation on generated Bindings naming the operator. */
export const ANNOTATION_MANAGED_BY = `${GROUP}/managed-by`;
/** Value of {@link ANNOTATION_MANAGED_BY}. */
export const MANAGED_BY = "backrest-volsync-operator";
/** Annotation on generated Bindings: `<lowercase kind>/<name>` of the VolSync object. */
export const ANNOTATION_VOLSYNC_REF = `${GROUP}/volsync-ref`;
/** Opt-in / opt-out annotation on VolSync objects (`true/1/yes`, `false/0/no`). */
export const ANNOTATION_BINDING = `${GROUP}/binding`;
/** Finalizer held by Bindings with `deletionPolicy: Remove` until the repo is removed from Backrest. */
export const FINALIZER_REMOVE_REPO = `${GROUP}/remove-repo`;
/** Field manager name for our writes. */
export const FIELD_MANAGER = "backrest-volsync-operator";

/** Default name of the OperatorConfig the operator reads (in its own namespace). */
export const DEFAULT_OPERATOR_CONFIG_NAME = "backrest-volsync-operator";

/** Condition types. `Ready` summarizes; the others tell which step holds a Binding back. */
export const ConditionType = {
  Ready: "Ready",
  SourceResolved: "SourceResolved",
  SecretResolved: "SecretResolved",
  Applied: "Applied",
} as const;
/** A condition type. */
export type ConditionType = typeof ConditionType[keyof typeof ConditionType];

/**
 * Condition reasons (also used as Event reasons). The first nine are the prototype's and keep their
 * spelling; users' alerts may match on them.
 */
export const Reason = {
  // The prototype's.
  Applied: "Applied",
  Paused: "Paused",
  InvalidSpec: "InvalidSpec",
  VolSyncNotFound: "VolSyncNotFound",
  VolSyncMissingRepository: "VolSyncMissingRepository",
  RepositorySecretNotFound: "RepositorySecretNotFound",
  RepositorySecretInvalid: "RepositorySecretInvalid",
  BackrestAuthInvalid: "BackrestAuthInvalid",
  BackrestAddRepoFailed: "BackrestAddRepoFailed",
  // Ours.
  /** A step succeeded (SourceResolved, SecretResolved). */
  Resolved: "Resolved",
  /** The OperatorConfig's spec is in force. */
  Accepted: "Accepted",
  /** The step has not run yet because an earlier one holds the Binding back. */
  Pending: "Pending",
  RepositoryNotInitialized: "RepositoryNotInitialized",
  /** Another Binding holds the repo id (it applied it first). */
  RepoIdConflict: "RepoIdConflict",
  /** The repo id exists in Backrest and no Binding applied it (the UI, another tool); adoption not allowed. */
  RepoExistsInBackrest: "RepoExistsInBackrest",
  /** The repository's restic backend is not in the OperatorConfig's repositoryPolicy.allowedBackends. */
  RepositoryBackendNotAllowed: "RepositoryBackendNotAllowed",
  /**
   * The repository (or a URL its Secret names) is on a loopback, link-local or unspecified address, which is
   * Backrest's own pod or node rather than storage, or on a cloud metadata service.
   */
  RepositoryLocationNotAllowed: "RepositoryLocationNotAllowed",
  /** A repo setting asks more of the shared Backrest than the OperatorConfig's repositoryPolicy.taskLimits. */
  RepoSettingsNotAllowed: "RepoSettingsNotAllowed",
  /** The OperatorConfig has been invalid since the operator started: nothing is done (fail closed). */
  OperatorConfigInvalid: "OperatorConfigInvalid",
  /** The VolSync object has no `spec.restic` (rclone, rsync, ... movers): nothing to register. */
  UnsupportedMover: "UnsupportedMover",
  /** The repository Secret holds a key that cannot work through env (GOOGLE_APPLICATION_CREDENTIALS). */
  UnsupportedSecretKey: "UnsupportedSecretKey",
  /** `spec.restic.customCA` is set; restic in Backrest would need the CA as a file. */
  CustomCAUnsupported: "CustomCAUnsupported",
  BackrestUnreachable: "BackrestUnreachable",
  /** Backrest answers but lacks an RPC we need (too old). */
  BackrestUnsupported: "BackrestUnsupported",
  BackrestURLNotAllowed: "BackrestURLNotAllowed",
  /** A Secret could not be read for a reason other than its absence (RBAC, apiserver trouble); retried. */
  SecretUnreadable: "SecretUnreadable",
  /** Deleting with `deletionPolicy: Remove`: removal from Backrest in progress. */
  Removing: "Removing",
  RemoveFailed: "RemoveFailed",
} as const;
/** A condition reason. */
export type Reason = typeof Reason[keyof typeof Reason];
