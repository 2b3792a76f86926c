/**
 * SHA-256 and HMAC-SHA256, synchronous, for the short digests the operator names things by (claim Leases,
 * auto-binding names, Event series, error hashes, credential fingerprints, client pool keys) and for the
 * keyed status hashes (lib/backrest/status_hash.ts): a thin adapter over `@noble/hashes` (audited, no
 * dependencies, pure JavaScript). Why neither of the runtime's own: importing `node:crypto` starts Deno's
 * Node compatibility layer, which nothing else on the operator's path needs (about 70 ms of CPU and 10 MB
 * resident at every start); Web Crypto is asynchronous, and these digests are taken in synchronous code
 * (each of its calls is an op on another thread: about 1 ms of CPU per Binding at a cold start).
 * `sha256_test.ts` pins the bytes against `node:crypto` and Web Crypto.
 */
import { hmac } from "@noble/hashes/hmac.js";
import { sha256 as nobleSha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";

/** A SHA-256 in progress: feed it with `update`, then read it once with `digest`. */
export interface Sha256 {
  /** Adds `data` (a string is taken as its UTF-8 bytes). */
  update(data: string | Uint8Array): Sha256;
  /** The digest of everything added, as lowercase hex or standard base64 (with padding). */
  digest(encoding: "hex" | "base64"): string;
}

const encoder = new TextEncoder();

/** A new SHA-256, used like `node:crypto`'s `createHash("sha256")`: `sha256().update(x).digest("hex")`. */
export function sha256(): Sha256 {
  const running = nobleSha256.create();
  const hash: Sha256 = {
    update(data) {
      running.update(typeof data === "string" ? encoder.encode(data) : data);
      return hash;
    },
    digest(encoding) {
      const bytes = running.digest();
      return encoding === "hex" ? bytesToHex(bytes) : btoa(String.fromCharCode(...bytes));
    },
  };
  return hash;
}

/**
 * HMAC-SHA256 (RFC 2104) under `key`: `hmacSha256(key)(message)` is the MAC as lowercase hex, the bytes Web
 * Crypto's `sign("HMAC", ...)` gives. The key's inner and outer states are computed once, so a MAC costs
 * the message's blocks and two more.
 */
export function hmacSha256(key: Uint8Array): (message: Uint8Array) => string {
  const keyed = hmac.create(nobleSha256, key);
  return (message) => bytesToHex(keyed.clone().update(message).digest());
}
