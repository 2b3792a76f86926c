/**
 * What a Binding reads before anything is sent: its VolSync object (from the cache), the repository Secret
 * and the auth Secret (each a GET: caches hold no Secret data). Rules: a problem the user must fix is a
 * {@linkcode Stop} naming the object or key, never a value; a Secret that cannot be read for another
 * reason than its absence (RBAC, apiserver trouble) is a {@linkcode SecretReadError}, retried; the
 * operator's default credentials are used only for the default Backrest URL, never sent anywhere else.
 */
import {
  type Binding,
  canonicalBackrestURL,
  formatErrors,
  hasCustomCA,
  parseVolSyncObject,
  Reason,
  repositorySecretName,
  type VolSyncObject,
} from "../api/mod.ts";
import { authFromSecret, type BackrestAuth, BackrestError } from "../backrest/mod.ts";
import { isRecord, type KubeClient, KubeError, type KubeObject, secrets } from "../kube/mod.ts";
import type { StatusExtra } from "./binding_status.ts";
import type { VolSyncStores } from "./caches.ts";
import { SecretReadError, type Stop, stopWith } from "./pipeline.ts";
import type { OperatorSettings } from "./settings.ts";

/** The VolSync object and the name of its repository Secret. */
export interface Source {
  source: VolSyncObject;
  secretName: string;
}

/** The Secrets' contents (decoded, never kept beyond the reconcile) and the credentials for Backrest. */
export interface Inputs {
  secretData: Record<string, Uint8Array>;
  auth: BackrestAuth;
}

/** The input steps, as the pipeline and the finalizer use them. */
export interface BindingInputs {
  /** The VolSync object `b` names, with a restic repository Secret and no custom CA. */
  source(b: Binding): Source | Stop;
  /** The repository Secret's data and the auth for `url` (canonical). */
  read(
    b: Binding,
    settings: OperatorSettings,
    url: string,
    secretName: string,
    signal: AbortSignal,
  ): Promise<Inputs | Stop>;
  /** The credentials for calls from `b` to `url`, or why there are none. */
  resolveAuth(
    b: Binding,
    settings: OperatorSettings,
    url: string,
    signal: AbortSignal,
  ): Promise<{ auth: BackrestAuth } | { problem: string }>;
}

/** The input steps of the Binding pipeline. */
export function bindingInputs(deps: {
  kube: KubeClient;
  volsync: VolSyncStores;
}): BindingInputs {
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
   * The auth for calls from `b` to `url` (canonical): its own authRef, else the operator's default
   * credentials, but only when `url` is the default Backrest URL.
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

  /** The VolSync object `b` names, with a restic repository Secret and no custom CA. */
  function source(b: Binding): Source | Stop {
    const namespace = b.metadata.namespace ?? "";
    const store = deps.volsync[b.spec.source.kind];
    const ref = `${b.spec.source.kind} ${namespace}/${b.spec.source.name}`;
    const notResolved = (reason: string, message: string, extra?: StatusExtra): Stop =>
      stopWith({ ready: false, reason, message, sourceResolved: false }, extra ? { extra } : {});
    const raw = store.getByName(namespace, b.spec.source.name);
    if (!raw) {
      return notResolved(Reason.VolSyncNotFound, `${ref} not found; the Binding is applied once it exists`);
    }
    const parsed = parseVolSyncObject(raw, b.spec.source.kind);
    if (!parsed.ok) {
      return notResolved(
        Reason.VolSyncMissingRepository,
        `${ref} is malformed: ${formatErrors(parsed.errors)}`,
      );
    }
    const obj = parsed.value;
    if (!obj.restic) {
      return notResolved(
        Reason.UnsupportedMover,
        `${ref} has no spec.restic: Backrest only understands restic repositories`,
      );
    }
    const secretName = repositorySecretName(obj);
    if (!secretName) {
      return notResolved(Reason.VolSyncMissingRepository, `${ref} has no spec.restic.repository Secret name`);
    }
    if (hasCustomCA(obj)) {
      return notResolved(
        Reason.CustomCAUnsupported,
        `${ref} sets spec.restic.customCA: restic in Backrest would need that CA as a file, ` +
          "which the operator cannot place; add the CA to Backrest's trust store and remove customCA, " +
          "or leave this repository out of Backrest",
        { resolvedRepositorySecret: secretName },
      );
    }
    return { source: obj, secretName };
  }

  /** The repository Secret's data and the auth for `url`. */
  async function read(
    b: Binding,
    settings: OperatorSettings,
    url: string,
    secretName: string,
    signal: AbortSignal,
  ): Promise<Inputs | Stop> {
    const namespace = b.metadata.namespace ?? "";
    const extra = { resolvedRepositorySecret: secretName };
    const secretData = await readSecretData(namespace, secretName, signal);
    if (!secretData) {
      return stopWith({
        ready: false,
        reason: Reason.RepositorySecretNotFound,
        message: `repository Secret ${namespace}/${secretName} not found`,
        sourceResolved: true,
        secretResolved: false,
      }, { extra });
    }
    const auth = await resolveAuth(b, settings, url, signal);
    if ("problem" in auth) {
      return stopWith({
        ready: false,
        reason: Reason.BackrestAuthInvalid,
        message: `${auth.problem}; the Binding is applied once it is fixed`,
        sourceResolved: true,
      }, { extra });
    }
    return { secretData, auth: auth.auth };
  }

  return { source, read, resolveAuth };
}
