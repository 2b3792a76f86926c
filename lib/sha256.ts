/**
 * SHA-256 (FIPS 180-4), synchronous, for the short digests the operator names things by (claim Leases,
 * auto-binding names, Event series, error hashes, credential fingerprints, client pool keys), and
 * HMAC-SHA256 for the keyed status hashes (lib/backrest/status_hash.ts).
 *
 * Why not `node:crypto`: importing it starts Deno's Node compatibility layer, which no other module on the
 * operator's path needs; that alone cost about 70 ms of CPU and 10 MB of resident memory at every start
 * (measured with `deno run` on a script importing nothing else). Web Crypto is asynchronous: these
 * digests are taken in synchronous code, and each of its calls is an op run on another thread. The bytes
 * are the same as `node:crypto`'s and Web Crypto's: `sha256_test.ts` compares them over many lengths and
 * pieces.
 */

// deno-fmt-ignore
const K = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);
// deno-fmt-ignore
const H0 = new Int32Array([
  0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
]);
const W = new Int32Array(64);
const encoder = new TextEncoder();

/** Runs the compression function over the 64-byte blocks of `data` from `at` to `end`, updating `h`. */
function blocks(h: Int32Array, data: Uint8Array, at: number, end: number): void {
  for (; at < end; at += 64) {
    for (let t = 0, i = at; t < 16; t++, i += 4) {
      W[t] = (data[i]! << 24) | (data[i + 1]! << 16) | (data[i + 2]! << 8) | data[i + 3]!;
    }
    for (let t = 16; t < 64; t++) {
      const w15 = W[t - 15]!, w2 = W[t - 2]!;
      const s0 = ((w15 >>> 7) | (w15 << 25)) ^ ((w15 >>> 18) | (w15 << 14)) ^ (w15 >>> 3);
      const s1 = ((w2 >>> 17) | (w2 << 15)) ^ ((w2 >>> 19) | (w2 << 13)) ^ (w2 >>> 10);
      W[t] = (W[t - 16]! + s0 + W[t - 7]! + s1) | 0;
    }
    let a = h[0]!, b = h[1]!, c = h[2]!, d = h[3]!, e = h[4]!, f = h[5]!, g = h[6]!, hh = h[7]!;
    for (let t = 0; t < 64; t++) {
      const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
      const t1 = (hh + S1 + ((e & f) ^ (~e & g)) + K[t]! + W[t]!) | 0;
      const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
      const t2 = (S0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
      hh = g;
      g = f;
      f = e;
      e = (d + t1) | 0;
      d = c;
      c = b;
      b = a;
      a = (t1 + t2) | 0;
    }
    h[0] = (h[0]! + a) | 0;
    h[1] = (h[1]! + b) | 0;
    h[2] = (h[2]! + c) | 0;
    h[3] = (h[3]! + d) | 0;
    h[4] = (h[4]! + e) | 0;
    h[5] = (h[5]! + f) | 0;
    h[6] = (h[6]! + g) | 0;
    h[7] = (h[7]! + hh) | 0;
  }
}

/** A SHA-256 in progress: feed it with `update`, then read it once with `digest`. */
export interface Sha256 {
  /** Adds `data` (a string is taken as its UTF-8 bytes). */
  update(data: string | Uint8Array): Sha256;
  /** The digest of everything added, as lowercase hex or standard base64 (with padding). */
  digest(encoding: "hex" | "base64"): string;
}

/** Strings are encoded here when they fit (3 bytes per UTF-16 unit at most), so `update` allocates nothing. */
const scratch = new Uint8Array(4096);

/** A new SHA-256, used like `node:crypto`'s `createHash("sha256")`: `sha256().update(x).digest("hex")`. */
export function sha256(): Sha256 {
  return new Running(H0.slice(), 0);
}

/**
 * HMAC-SHA256 (RFC 2104) under `key`, synchronous: `hmacSha256(key)(message)` is the MAC as lowercase hex,
 * the bytes Web Crypto's `sign("HMAC", ...)` gives (`sha256_test.ts` compares them). The key's inner and
 * outer states are computed once, so a MAC costs the message's blocks and two more, and no async op (which
 * took a thread hop and an event-loop turn each: about 1 ms of CPU per Binding at a cold start).
 */
export function hmacSha256(key: Uint8Array): (message: Uint8Array) => string {
  const block = new Uint8Array(64);
  if (key.length > 64) block.set(words(new Running(H0.slice(), 0).update(key).finish()));
  else block.set(key);
  const inner = H0.slice();
  const outer = H0.slice();
  const ipad = block.map((b) => b ^ 0x36);
  const opad = block.map((b) => b ^ 0x5c);
  blocks(inner, ipad, 0, 64);
  blocks(outer, opad, 0, 64);
  // Only the states are kept; the copies of the key made here are wiped.
  for (const copy of [block, ipad, opad]) copy.fill(0);
  return (message) => {
    const innerDigest = new Running(inner.slice(), 64).update(message).finish();
    return hex(new Running(outer.slice(), 64).update(words(innerDigest)).finish());
  };
}

/**
 * A SHA-256 in progress whose state `h` (updated in place) has taken `length` bytes, a multiple of 64, and
 * that can also end with its state words. A class: a hash is one object, no closures.
 */
class Running implements Sha256 {
  readonly #h: Int32Array;
  #length: number;
  /** Input not yet compressed (less than a block): `#fill` bytes of `#pending`. */
  readonly #pending = new Uint8Array(64);
  #fill = 0;

  constructor(h: Int32Array, length: number) {
    this.#h = h;
    this.#length = length;
  }

  update(data: string | Uint8Array): Running {
    if (typeof data !== "string") this.#absorb(data, data.length);
    else if (data.length * 3 <= scratch.length) {
      this.#absorb(scratch, encoder.encodeInto(data, scratch).written);
    } else {
      const bytes = encoder.encode(data);
      this.#absorb(bytes, bytes.length);
    }
    return this;
  }

  digest(encoding: "hex" | "base64"): string {
    const digest = this.finish();
    return encoding === "hex" ? hex(digest) : btoa(String.fromCharCode(...words(digest)));
  }

  /** Pads and compresses the last block; the state words are then the digest. */
  finish(): Int32Array {
    const pending = this.#pending;
    // A 1 bit, zeros, and the length in bits as a 64-bit big-endian number, ending a block.
    pending[this.#fill++] = 0x80;
    if (this.#fill > 56) {
      pending.fill(0, this.#fill);
      blocks(this.#h, pending, 0, 64);
      this.#fill = 0;
    }
    pending.fill(0, this.#fill, 56);
    putWord(pending, 56, Math.floor(this.#length / 0x20000000));
    putWord(pending, 60, this.#length << 3);
    blocks(this.#h, pending, 0, 64);
    return this.#h;
  }

  /** Adds the first `end` bytes of `data`. */
  #absorb(data: Uint8Array, end: number): void {
    this.#length += end;
    let at = 0;
    if (this.#fill > 0) {
      at = Math.min(64 - this.#fill, end);
      for (let i = 0; i < at; i++) this.#pending[this.#fill + i] = data[i]!;
      this.#fill += at;
      if (this.#fill < 64) return;
      blocks(this.#h, this.#pending, 0, 64);
      this.#fill = 0;
    }
    const whole = at + ((end - at) & ~63);
    blocks(this.#h, data, at, whole);
    for (let i = whole; i < end; i++) this.#pending[i - whole] = data[i]!;
    this.#fill = end - whole;
  }
}

/** The state words `h` as lowercase hex: one flat string, built from character codes. */
function hex(h: Int32Array): string {
  for (let i = 0; i < 8; i++) {
    const w = h[i]!;
    for (let j = 0; j < 8; j++) HEX_CODES[8 * i + j] = HEX_DIGITS[(w >>> (28 - 4 * j)) & 15]!;
  }
  return String.fromCharCode.apply(null, HEX_CODES as unknown as number[]);
}
const HEX_DIGITS = new Uint16Array(Array.from("0123456789abcdef", (c) => c.charCodeAt(0)));
const HEX_CODES = new Uint16Array(64);

/** `w` as 4 big-endian bytes at `at` of `out`. */
function putWord(out: Uint8Array, at: number, w: number): void {
  out[at] = w >>> 24;
  out[at + 1] = w >>> 16;
  out[at + 2] = w >>> 8;
  out[at + 3] = w;
}

/** The state words `h` as big-endian bytes. */
function words(h: Int32Array): Uint8Array {
  const out = new Uint8Array(32);
  for (let i = 0; i < 8; i++) putWord(out, 4 * i, h[i]!);
  return out;
}
