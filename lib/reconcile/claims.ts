/**
 * Who owns a Backrest repo id: one Lease per claimed id in the operator's own namespace (label
 * `backrest.garethgeorge.com/repo-claim`), holding the Binding (`namespace/name`, uid) and the Backrest URL
 * it last applied the id to. Rules:
 * - The ledger lives where namespace users have no rights: neither a Binding's spec nor its status (which
 *   anyone with rights on `bindings/status` could forge) decides ownership.
 * - A claim is taken by creating its Lease, so of two Bindings asking at once exactly one gets it (the
 *   apiserver's AlreadyExists is the arbiter); it is given up only by the Binding's deletion or by its
 *   applying another id, so neither a later nor an older, edited Binding ever takes an applied id.
 * - An id is claimed whatever Backrest it is applied to: Backrest instances cannot be told apart by URL
 *   (DNS aliases, IPs, proxies), so one id has one owner across every Backrest this operator serves.
 */
import { GROUP } from "../api/mod.ts";
import { sha256 } from "../sha256.ts";
import { isConflict, isNotFound, type KubeClient, type Lease, leases } from "../kube/mod.ts";
import { intern, type Store } from "../runtime/mod.ts";

/** Label on every claim Lease (value `"true"`); the claims informer selects by it. */
export const LABEL_REPO_CLAIM = `${GROUP}/repo-claim`;
/** Annotation: the claimed repo id. */
export const ANNOTATION_REPO_ID = `${GROUP}/repo-id`;
/** Annotation: the canonical Backrest URL the holder last applied the id to (absent until it applied). */
export const ANNOTATION_BACKREST_URL = `${GROUP}/backrest-url`;
/** Annotation: the uid of the holding Binding. */
export const ANNOTATION_HOLDER_UID = `${GROUP}/holder-uid`;
/** Index of claim Leases by holder (`namespace/name` of the Binding). */
export const INDEX_CLAIM_BY_HOLDER = "byHolder";

/** A Binding as the ledger knows it. */
export interface Holder {
  /** `namespace/name`. */
  key: string;
  /** The Binding's uid: a Binding recreated under the same name takes over the claim on its next acquire. */
  uid: string;
}

/** One claim as read from the ledger. */
export interface Claim {
  /** The claimed repo id. */
  id: string;
  /** The Binding that holds it. */
  holder: Holder;
  /** Where the holder last applied the id; undefined until it has. */
  url: string | undefined;
  /** The Lease's name and resourceVersion, for precondition writes. */
  lease: { name: string; resourceVersion: string | undefined };
}

/** The Lease name of an id: `repo-` and 40 hex chars of its SHA-256 (ids may be longer than a name). */
export function claimName(id: string): string {
  return `repo-${sha256().update(id).digest("hex").slice(0, 40)}`;
}

/** A claim Lease as a {@linkcode Claim}, or undefined when it is not one. */
export function readClaim(obj: Lease): Claim | undefined {
  const a = obj.metadata.annotations ?? {};
  const id = a[ANNOTATION_REPO_ID];
  const uid = a[ANNOTATION_HOLDER_UID];
  const key = obj.spec?.holderIdentity;
  if (!id || !uid || !key || obj.metadata.name !== claimName(id)) return undefined;
  return {
    id,
    holder: { key, uid },
    url: a[ANNOTATION_BACKREST_URL] || undefined,
    lease: { name: obj.metadata.name, resourceVersion: obj.metadata.resourceVersion },
  };
}

/** Keeps of a claim Lease only what the ledger reads (the informer's transform). */
export function slimClaim(obj: Lease): Lease {
  const a = obj.metadata.annotations ?? {};
  const keep: Record<string, string> = {};
  for (const k of [ANNOTATION_REPO_ID, ANNOTATION_HOLDER_UID, ANNOTATION_BACKREST_URL]) {
    if (a[k] !== undefined) keep[k] = k === ANNOTATION_BACKREST_URL ? intern(a[k]) : a[k];
  }
  return {
    apiVersion: "coordination.k8s.io/v1",
    kind: "Lease",
    metadata: {
      ...(obj.metadata.name !== undefined ? { name: obj.metadata.name } : {}),
      ...(obj.metadata.namespace !== undefined ? { namespace: intern(obj.metadata.namespace) } : {}),
      ...(obj.metadata.resourceVersion !== undefined
        ? { resourceVersion: obj.metadata.resourceVersion }
        : {}),
      annotations: keep,
    },
    spec: obj.spec?.holderIdentity !== undefined ? { holderIdentity: obj.spec.holderIdentity } : {},
  };
}

/** Index functions for the claims cache. */
export const claimIndexers = {
  [INDEX_CLAIM_BY_HOLDER]: (obj: Lease): string[] => {
    const c = readClaim(obj);
    return c ? [c.holder.key] : [];
  },
};

/** The outcome of asking for an id: it is ours now, or another Binding holds it. */
export type Acquired = { ok: true; claim: Claim } | { ok: false; holder: Holder };

/** The ledger as the Binding reconciler uses it (a {@linkcode RepoClaims}; a map in unit tests). */
export type ClaimLedger = Pick<RepoClaims, "get" | "heldBy" | "acquire" | "release">;

/** The ledger: reads from the claims cache, writes to the apiserver. */
export class RepoClaims {
  readonly #kube: KubeClient;
  readonly #store: Store<Lease>;
  readonly #namespace: string;

  /** `store` caches the claim Leases of `namespace` (the operator's own), `kube` writes them. */
  constructor(kube: KubeClient, store: Store<Lease>, namespace: string) {
    this.#kube = kube;
    this.#store = store;
    this.#namespace = namespace;
  }

  /** The claim on `id` as cached (may lag a write by a moment; {@linkcode acquire} is authoritative). */
  get(id: string): Claim | undefined {
    const obj = this.#store.getByName(this.#namespace, claimName(id));
    return obj ? readClaim(obj) : undefined;
  }

  /** Every claim the Binding `key` holds (any uid: an older object of the same name included). */
  heldBy(key: string): Claim[] {
    return this.#store.byIndex(INDEX_CLAIM_BY_HOLDER, key).flatMap((o) => readClaim(o) ?? []);
  }

  /**
   * Takes `id` for `holder`, or tells who has it. A claim left by an earlier object of the same name
   * (deleted, then created again) passes to the new one. `url` is recorded when given.
   */
  async acquire(id: string, holder: Holder, url: string | undefined, signal: AbortSignal): Promise<Acquired> {
    // The cache decides what to try; the apiserver decides what holds: a create of a Lease that exists is
    // AlreadyExists, an update of a changed one a Conflict, and only then is the Lease read. So a new claim
    // costs one create, not a GET first.
    let current = this.get(id);
    for (let attempt = 0; attempt < 3; attempt++) {
      if (!current) {
        try {
          const created = await this.#kube.create(leases, this.#lease(id, holder, url), { signal });
          return { ok: true, claim: readClaim(created)! };
        } catch (e) {
          if (!isConflict(e)) throw e;
          current = await this.#read(id, signal);
          continue;
        }
      }
      if (current.holder.key !== holder.key) return { ok: false, holder: current.holder };
      if (current.holder.uid === holder.uid && (url === undefined || current.url === url)) {
        return { ok: true, claim: current };
      }
      try {
        const next = this.#lease(id, holder, url ?? current.url);
        next.metadata.resourceVersion = current.lease.resourceVersion;
        const updated = await this.#kube.update(leases, next, { signal });
        return { ok: true, claim: readClaim(updated)! };
      } catch (e) {
        // Changed since we read it (or gone): read again and decide again.
        if (!isConflict(e) && !isNotFound(e)) throw e;
        current = await this.#read(id, signal);
      }
    }
    if (current && current.holder.key !== holder.key) return { ok: false, holder: current.holder };
    throw new Error(`repo id claim for ${id} kept changing; retrying`);
  }

  /** Gives `claim` up, unless it changed hands since it was read. */
  async release(claim: Claim, signal: AbortSignal): Promise<void> {
    try {
      await this.#kube.delete(leases, claim.lease.name, {
        namespace: this.#namespace,
        signal,
        ...(claim.lease.resourceVersion
          ? { preconditions: { resourceVersion: claim.lease.resourceVersion } }
          : {}),
      });
    } catch (e) {
      // Someone else's now (or already gone): nothing of ours to give up.
      if (!isConflict(e) && !isNotFound(e)) throw e;
    }
  }

  async #read(id: string, signal: AbortSignal): Promise<Claim | undefined> {
    const obj = await this.#kube.get(leases, claimName(id), { namespace: this.#namespace, signal });
    return obj ? readClaim(obj) : undefined;
  }

  #lease(id: string, holder: Holder, url: string | undefined): Lease {
    return {
      apiVersion: "coordination.k8s.io/v1",
      kind: "Lease",
      metadata: {
        name: claimName(id),
        namespace: this.#namespace,
        labels: { [LABEL_REPO_CLAIM]: "true" },
        annotations: {
          [ANNOTATION_REPO_ID]: id,
          [ANNOTATION_HOLDER_UID]: holder.uid,
          ...(url !== undefined ? { [ANNOTATION_BACKREST_URL]: url } : {}),
        },
      },
      spec: { holderIdentity: holder.key },
    };
  }
}
