import assert from "node:assert/strict";
import { createHash, createHmac } from "node:crypto";
import { hmacSha256, sha256 } from "./sha256.ts";

const hex = (b: ArrayBuffer) => [...new Uint8Array(b)].map((x) => x.toString(16).padStart(2, "0")).join("");

Deno.test("sha256: the FIPS 180-4 examples", () => {
  assert.equal(
    sha256().update("").digest("hex"),
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
  );
  assert.equal(
    sha256().update("abc").digest("hex"),
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
  );
  assert.equal(
    sha256().update("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq").digest("hex"),
    "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
  );
});

Deno.test("sha256: the bytes Web Crypto and node:crypto give, every length across three blocks, in pieces", async () => {
  const data = crypto.getRandomValues(new Uint8Array(200));
  for (let n = 0; n <= data.length; n++) {
    const input = data.subarray(0, n);
    const expected = hex(await crypto.subtle.digest("SHA-256", input));
    assert.equal(sha256().update(input).digest("hex"), expected, `length ${n}`);
    const cut = n >> 1;
    assert.equal(
      sha256().update(input.subarray(0, cut)).update(input.subarray(cut)).digest("hex"),
      expected,
      `length ${n} in two pieces`,
    );
    assert.equal(
      sha256().update(input).digest("base64"),
      createHash("sha256").update(input).digest("base64"),
      `length ${n}, base64`,
    );
  }
});

Deno.test("sha256: strings are their UTF-8 bytes, as node:crypto's update(string) takes them", () => {
  for (const s of ["", "ns/b\0x", "päßwörd ✓ 🔑", "a".repeat(1000), "\u{10ffff}\ud800"]) {
    assert.equal(sha256().update(s).digest("hex"), createHash("sha256").update(s).digest("hex"), s);
    assert.equal(
      sha256().update(s).update("\0").update(s).digest("base64"),
      createHash("sha256").update(s).update("\0").update(s).digest("base64"),
    );
  }
});

Deno.test("sha256: fed a byte at a time, or in pieces that straddle blocks, it gives the same digest", async () => {
  const data = crypto.getRandomValues(new Uint8Array(300));
  for (const n of [0, 1, 55, 56, 63, 64, 65, 119, 120, 127, 128, 129, 300]) {
    const input = data.subarray(0, n);
    const expected = hex(await crypto.subtle.digest("SHA-256", input));
    const bytewise = sha256();
    for (const b of input) bytewise.update(Uint8Array.of(b));
    assert.equal(bytewise.digest("hex"), expected, `length ${n}, a byte at a time`);
    const pieces = sha256();
    for (let at = 0; at < n; at += 37) pieces.update(input.subarray(at, at + 37));
    assert.equal(pieces.digest("hex"), expected, `length ${n}, in pieces of 37`);
  }
  // A string too long for the encoding buffer goes through the encoder as a whole.
  const long = "ä".repeat(5000);
  assert.equal(sha256().update(long).digest("hex"), createHash("sha256").update(long).digest("hex"));
});

Deno.test("hmacSha256: the MACs Web Crypto gives, for keys shorter, as long as and longer than a block, every message length across three blocks", async () => {
  const data = crypto.getRandomValues(new Uint8Array(200));
  for (const keyLength of [0, 1, 32, 63, 64, 65, 100]) {
    const keyBytes = crypto.getRandomValues(new Uint8Array(keyLength));
    const mac = hmacSha256(keyBytes);
    if (keyLength === 0) {
      // Web Crypto refuses an empty HMAC key; RFC 4231's definition pads it with zeros like any other.
      assert.equal(
        mac(new TextEncoder().encode("The quick brown fox jumps over the lazy dog")),
        createHmac("sha256", "").update("The quick brown fox jumps over the lazy dog").digest("hex"),
      );
      continue;
    }
    const key = await crypto.subtle.importKey("raw", keyBytes, { name: "HMAC", hash: "SHA-256" }, false, [
      "sign",
    ]);
    for (let n = 0; n <= data.length; n++) {
      const message = data.subarray(0, n);
      assert.equal(
        mac(message),
        hex(await crypto.subtle.sign("HMAC", key, message)),
        `key ${keyLength}, length ${n}`,
      );
    }
  }
});

Deno.test("hmacSha256: RFC 4231 test case 2, and the same MAC however often it is asked", () => {
  const mac = hmacSha256(new TextEncoder().encode("Jefe"));
  const message = new TextEncoder().encode("what do ya want for nothing?");
  const expected = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
  assert.equal(mac(message), expected);
  assert.equal(mac(message), expected, "the key's states are not consumed by a MAC");
});
