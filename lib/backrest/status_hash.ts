/**
 * The hashes of a Binding's inputs that status keeps (`lastAppliedInputHash`, `appliedRepositoryHash`):
 * anyone who can read the Binding reads them, so they must not let a reader test guesses of the Secret
 * values they cover.
 *
 * - **Keyed** (`hmac:` and 64 hex chars): HMAC-SHA256 under the installation's own random key, kept in a
 *   Secret in the operator's namespace (lib/reconcile/hash_key.ts). Without the key a guess cannot be
 *   tested at all, and one hash costs microseconds.
 * - **Stretched** (64 hex chars, the format before keys): PBKDF2-HMAC-SHA256, 2 048 rounds, a fixed salt.
 *   About 0.5 ms of CPU each, and it only slows guessing. Still computed to recognise what an earlier
 *   build wrote (no release has shipped them, but main has run them since November), so an upgrade
 *   applies nothing again (`matches`).
 */

import { hmacSha256, sha256 } from "../sha256.ts";

/** Hashes the inputs of an apply for status, and recognises the hashes earlier builds wrote. */
export interface StatusHasher {
  /** The hash of `input` as status records it now. */
  hash(input: Uint8Array): Promise<string>;
  /** Whether `stored`, a status value in this or an earlier build's format, is the hash of `input`. */
  matches(stored: string, input: Uint8Array): Promise<boolean>;
}

/** The prefix of keyed hashes: what tells them from the stretched ones of earlier builds. */
export const KEYED_PREFIX = "hmac:";
const STRETCHED_FORMAT = /^[0-9a-f]{64}$/;

/**
 * Keyed hashes under the key `key` resolves to (asked on every hash, so a key still loading or failed to
 * load holds up, or fails, the reconcile that needs it); stretched ones of earlier builds are recognised.
 */
export function keyedHasher(key: () => Promise<HashKey>): StatusHasher {
  const hash = async (input: Uint8Array) => KEYED_PREFIX + (await key()).mac(input);
  return {
    hash,
    async matches(stored, input) {
      if (stored.startsWith(KEYED_PREFIX)) return stored === await hash(input);
      return STRETCHED_FORMAT.test(stored) && stored === await stretch(input);
    },
  };
}

/** Stretched hashes only: the format before keys (unit tests of logic that does not care which). */
export function stretchedHasher(): StatusHasher {
  return {
    hash: stretch,
    async matches(stored, input) {
      return STRETCHED_FORMAT.test(stored) && stored === await stretch(input);
    },
  };
}

/** A new random key, as the key Secret holds it (32 bytes). */
export function newHashKeyBytes(): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(KEY_BYTES));
}

/** How long the key must be: HMAC-SHA256's block-size-bounded key, as long as its output. */
export const KEY_BYTES = 32;

/** An imported status hash key: what it can do, never what it is (its states stay in a closure). */
export interface HashKey {
  /** HMAC-SHA256 of `input` under the key, as lowercase hex. */
  mac(input: Uint8Array): string;
}

/**
 * `bytes` as a status hash key. The MAC is computed synchronously in JavaScript (lib/sha256.ts), the bytes
 * Web Crypto's HMAC gives, so hashes written by builds that used Web Crypto still match.
 */
export function importHashKey(bytes: Uint8Array): HashKey {
  return { mac: hmacSha256(bytes) };
}

const SALT = new TextEncoder().encode("backrest-volsync-operator/desired-repo/v1");
// PBKDF2-HMAC-SHA256 through WebCrypto: the same bytes as node:crypto's pbkdf2Sync gave, which the first
// builds used.
const ROUNDS = 2048;

async function stretch(input: Uint8Array): Promise<string> {
  // Every reconcile (resyncs, status echoes) of a Binding whose status an earlier build wrote compares
  // again: remember the last results by a plain SHA-256 of the input (in memory only).
  const fingerprint = sha256().update(input).digest("base64");
  const known = stretched.get(fingerprint);
  if (known !== undefined) {
    stretched.delete(fingerprint); // re-insert: the Map's order is the LRU order
    stretched.set(fingerprint, known);
    return known;
  }
  const key = await crypto.subtle.importKey("raw", input as Uint8Array<ArrayBuffer>, "PBKDF2", false, [
    "deriveBits",
  ]);
  const bits = await crypto.subtle.deriveBits(
    { name: "PBKDF2", hash: "SHA-256", salt: SALT, iterations: ROUNDS },
    key,
    256,
  );
  const hash = hex(bits);
  stretched.set(fingerprint, hash);
  if (stretched.size > STRETCHED_MAX) stretched.delete(stretched.keys().next().value!);
  return hash;
}

/** Stretched hashes by the SHA-256 of their input, least recently used first; about 170 bytes each. */
const stretched = new Map<string, string>();
const STRETCHED_MAX = 65_536; // above the Bindings one operator serves, so a resync never thrashes it

function hex(bits: ArrayBuffer): string {
  return Array.from(new Uint8Array(bits), (b) => b.toString(16).padStart(2, "0")).join("");
}
