/**
 * The installation's status hash key (lib/backrest/status_hash.ts): a random 32-byte key in the Secret
 * `backrest-volsync-operator-hash-key` in the operator's namespace, made by the first replica that finds
 * none and read by every later one, so hashes in status stay valid across restarts and upgrades.
 *
 * Namespace users have no rights in that namespace; the key never leaves the Secret and this process's
 * memory (held only as its HMAC states, never logged). Deleting the Secret is harmless: the
 * next start makes a new key, and each Binding is applied once more (AddRepo, one restic run on Backrest).
 */

import { type HashKey, importHashKey, KEY_BYTES, newHashKeyBytes } from "../backrest/mod.ts";
import { isRecord, type KubeClient, KubeError, type KubeObject, secrets } from "../kube/mod.ts";
import type { Logger } from "../observe/mod.ts";
import { SecretReadError } from "./pipeline.ts";

/** The key Secret's name, in the operator's (OperatorConfig's) namespace. */
export const HASH_KEY_SECRET = "backrest-volsync-operator-hash-key";
/** The data key holding the key's bytes. */
const DATA_KEY = "key";
/** After a failed load, how long callers get the same error before the next attempt. */
const RETRY_AFTER_MS = 5_000;

/**
 * Thrown when the key cannot be had; its text names the Secret and what to do, never key bytes. A Secret
 * the operator could not read: the Binding that needed it says `SecretUnreadable` with this text, retried.
 */
export class HashKeyError extends SecretReadError {
  /** Always `"HashKeyError"`. */
  override readonly name = "HashKeyError";
}

/**
 * The key, loaded (or made) on the first call and remembered; after a failure every call in the next
 * `RETRY_AFTER_MS` gets the same error (so thousands of Bindings retrying make one request, not thousands).
 */
export function hashKeyLoader(
  kube: KubeClient,
  namespace: string,
  log?: Logger,
  now: () => number = Date.now,
): () => Promise<HashKey> {
  let loading: Promise<HashKey> | undefined;
  let failedAt = 0;
  return () => {
    if (loading && failedAt && now() - failedAt >= RETRY_AFTER_MS) loading = undefined;
    return loading ??= load().catch((e) => {
      failedAt = now();
      throw e;
    });
  };

  async function load(): Promise<HashKey> {
    failedAt = 0;
    const where = `Secret ${namespace}/${HASH_KEY_SECRET}`;
    const failure = (verb: string, e: unknown) => {
      if (!(e instanceof KubeError)) return e;
      const next = e.status === 403
        ? `the operator's Role in ${namespace} must allow get and create on secrets`
        : "retrying";
      return new HashKeyError(
        `cannot ${verb} the status hash key ${where}: ${e.status} ${e.reason}; ${next}`,
        {
          cause: e,
        },
      );
    };
    const read = () =>
      kube.get(secrets, HASH_KEY_SECRET, { namespace }).catch((e) => Promise.reject(failure("read", e)));
    let secret = await read();
    if (!secret) {
      const made = newHashKeyBytes();
      try {
        secret = await kube.create(secrets, keySecret(namespace, made));
        log?.info("Made the status hash key", { secret: `${namespace}/${HASH_KEY_SECRET}` });
      } catch (e) {
        if (!(e instanceof KubeError && e.status === 409)) throw failure("create", e);
        secret = await read(); // another replica made it first: theirs counts
      } finally {
        made.fill(0);
      }
      if (!secret) {
        throw new HashKeyError(`the status hash key ${where} vanished while it was made; retrying`);
      }
    }
    const bytes = keyBytes(secret);
    if (!bytes) {
      throw new HashKeyError(
        `the status hash key ${where} holds no ${KEY_BYTES}-byte "${DATA_KEY}": delete it and the operator makes a new one (each Binding is then applied to Backrest once more)`,
      );
    }
    try {
      return importHashKey(bytes);
    } finally {
      bytes.fill(0);
    }
  }
}

function keySecret(namespace: string, bytes: Uint8Array): KubeObject {
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata: {
      name: HASH_KEY_SECRET,
      namespace,
      labels: { "app.kubernetes.io/managed-by": "backrest-volsync-operator" },
      annotations: {
        "backrest.garethgeorge.com/description":
          "Key of the hashes in BackrestVolSyncBinding status. If deleted, a new one is made and every Binding is applied once more.",
      },
    },
    type: "Opaque",
    data: { [DATA_KEY]: btoa(String.fromCharCode(...bytes)) },
  };
}

function keyBytes(secret: KubeObject): Uint8Array | undefined {
  const value = isRecord(secret.data) ? secret.data[DATA_KEY] : undefined;
  if (typeof value !== "string") return undefined;
  let raw: string;
  try {
    raw = atob(value);
  } catch {
    return undefined;
  }
  if (raw.length < KEY_BYTES) return undefined;
  return Uint8Array.from(raw, (c) => c.charCodeAt(0));
}
