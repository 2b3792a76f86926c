import assert from "node:assert/strict";
import { Sensitive } from "../api/sensitive.ts";
import { authFingerprint, authFromSecret, type BackrestAuth } from "./auth.ts";
import { BackrestError } from "./errors.ts";

const enc = new TextEncoder();
const data = (o: Record<string, string>) =>
  Object.fromEntries(Object.entries(o).map(([k, v]) => [k, enc.encode(v)]));
// Certificate-shaped text (the client, not this parser, checks what is inside a block).
const block = (body: string) => `-----BEGIN CERTIFICATE-----\n${body}\n-----END CERTIFICATE-----\n`;

function refused(d: Record<string, Uint8Array>, kind: BackrestError["kind"], text: RegExp): void {
  assert.throws(
    () => authFromSecret(d),
    (e) => e instanceof BackrestError && e.kind === kind && text.test(e.message),
  );
}

Deno.test("authFromSecret: ca.crt alone is trust without credentials; beside credentials it joins them", () => {
  const bundle = `${block("QUJD")}junk between\n${block("REVG")}`;
  assert.deepEqual(authFromSecret(data({ "ca.crt": bundle })), {
    kind: "none",
    caCerts: [block("QUJD"), block("REVG")],
  });
  const bearer = authFromSecret(data({ token: "t0ken", "ca.crt": block("QUJD") }));
  assert.equal(bearer.kind, "bearer");
  assert.deepEqual(bearer.caCerts, [block("QUJD")]);
  const basic = authFromSecret(data({ username: "op", password: "pw", "ca.crt": block("QUJD") }));
  assert.equal(basic.kind, "basic");
  assert.deepEqual(basic.caCerts, [block("QUJD")]);
  assert.equal(authFromSecret(data({ token: "t0ken" })).caCerts, undefined);
});

Deno.test("authFromSecret: a ca.crt that holds no certificate, or half of Basic beside one, is refused by key name", () => {
  refused(data({ "ca.crt": "not a certificate" }), "invalid", /ca\.crt holds no PEM certificate/);
  refused({ "ca.crt": new Uint8Array([0xff, 0xfe]) }, "invalid", /ca\.crt is not valid UTF-8/);
  refused(data({ "ca.crt": block("QUJD"), username: "op" }), "unauthenticated", /username and password/);
  refused(data({}), "unauthenticated", /token, or keys username and password/);
});

Deno.test("authFingerprint: unchanged for credentials without CAs (an upgrade re-applies nothing); CAs change it", () => {
  // Digests of the release before ca.crt existed: Bindings' applied hashes are built from them.
  const before: [BackrestAuth, string][] = [
    [{ kind: "none" }, "65ff5691de37b3e657afd84a5ebff28ae221fb2210ef9442a09849d59f824a35"],
    [
      { kind: "bearer", token: new Sensitive("t0ken") },
      "3aeed677c531165978a92e21667f854442121d6e39263d7e1ebd7575f5e4c725",
    ],
    [
      { kind: "basic", username: "op", password: new Sensitive("pw") },
      "dc9adc725843a1a3b947bb83c3f1dfa8b60ffc58be536ac2366ce9d688e5bcee",
    ],
  ];
  for (const [auth, digest] of before) assert.equal(authFingerprint(auth), digest, auth.kind);
  const a = authFingerprint({ kind: "none", caCerts: [block("QUJD")] });
  const b = authFingerprint({ kind: "none", caCerts: [block("REVG")] });
  assert.notEqual(a, before[0]![1]);
  assert.notEqual(a, b);
});
