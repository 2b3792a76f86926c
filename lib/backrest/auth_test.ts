import assert from "node:assert/strict";
import { Sensitive } from "../api/sensitive.ts";
import { authFingerprint, authFromSecret, type BackrestAuth } from "./auth.ts";
import { BackrestError } from "./errors.ts";

const enc = new TextEncoder();
const data = (o: Record<string, string>) =>
  Object.fromEntries(Object.entries(o).map(([k, v]) => [k, enc.encode(v)]));
// Certificate-shaped text, for what is not parsed (fingerprints) or must not parse.
const block = (body: string) => `-----BEGIN CERTIFICATE-----\n${body}\n-----END CERTIFICATE-----\n`;
// Two self-signed test CAs (public certificates, made with openssl for these tests; no key is kept).
const CA_A = `-----BEGIN CERTIFICATE-----
MIIBgDCCASWgAwIBAgIUIbabkboXv1+1984E0c/Zg3SvJkAwCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJdGVzdC1jYS1hMCAXDTI2MTIwMjA5MjA0MloYDzIxMjYxMTA4
MDkyMDQyWjAUMRIwEAYDVQQDDAl0ZXN0LWNhLWEwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAAQ28hZ5NERuav58Q6O0D29DjOHh71HAnESI7WdfvJHiCkbSEwPRs2F1
yeI3pHgEBZG8WRC+XOIw+3xSJS8Ee2Eho1MwUTAdBgNVHQ4EFgQUJNTAj9gembMY
+Bg0EECYO2c8AyMwHwYDVR0jBBgwFoAUJNTAj9gembMY+Bg0EECYO2c8AyMwDwYD
VR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNJADBGAiEAgL27vLH8BdvcHV8JvZ/p
8QQZ1buVGx+oU7bizmaOLWQCIQCIRiS9WTECeGgrJpQiThkcvvZ98gBn9tUhZTWn
w4ZmKw==
-----END CERTIFICATE-----
`;
const CA_B = `-----BEGIN CERTIFICATE-----
MIIBfzCCASWgAwIBAgIUZ4gt8j4gjKNRMXx27vi0x+xiDggwCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJdGVzdC1jYS1iMCAXDTI2MTIwMjA5MjA0MloYDzIxMjYxMTA4
MDkyMDQyWjAUMRIwEAYDVQQDDAl0ZXN0LWNhLWIwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAAS6iQR8As7Qe7qDrjwaO1PU7mFS/TMXaApUseU6eUFhGuM+U2xPnUwS
F7fhVc//sgUKlGYI7Psr4eDuM996jnJmo1MwUTAdBgNVHQ4EFgQUvbe0fVvy1909
mj/jlyaCHlLSN2YwHwYDVR0jBBgwFoAUvbe0fVvy1909mj/jlyaCHlLSN2YwDwYD
VR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNIADBFAiEA6bE2Wf7M/fNPFoPJy06O
unYcrvbUQ3Q27uUqOUHrKMsCIBQ2dZqZYvKBfnbWp7Ai5PcBMcdpEvecQv1Zf713
F5aZ
-----END CERTIFICATE-----
`;

function refused(d: Record<string, Uint8Array>, kind: BackrestError["kind"], text: RegExp): void {
  assert.throws(
    () => authFromSecret(d),
    (e) => e instanceof BackrestError && e.kind === kind && text.test(e.message),
  );
}

Deno.test("authFromSecret: ca.crt alone is trust without credentials; beside credentials it joins them", () => {
  const bundle = `${CA_A}junk between\n${CA_B}`;
  assert.deepEqual(authFromSecret(data({ "ca.crt": bundle })), { kind: "none", caCerts: [CA_A, CA_B] });
  const bearer = authFromSecret(data({ token: "t0ken", "ca.crt": CA_A }));
  assert.equal(bearer.kind, "bearer");
  assert.deepEqual(bearer.caCerts, [CA_A]);
  const basic = authFromSecret(data({ username: "op", password: "pw", "ca.crt": CA_A }));
  assert.equal(basic.kind, "basic");
  assert.deepEqual(basic.caCerts, [CA_A]);
  assert.equal(authFromSecret(data({ token: "t0ken" })).caCerts, undefined);
});

Deno.test("authFromSecret: a ca.crt that holds no readable certificate, or half of Basic beside one, is refused by key name", () => {
  refused(data({ "ca.crt": "not a certificate" }), "invalid", /ca\.crt holds no PEM certificate/);
  refused({ "ca.crt": new Uint8Array([0xff, 0xfe]) }, "invalid", /ca\.crt is not valid UTF-8/);
  refused(data({ "ca.crt": block("QUJD") }), "invalid", /ca\.crt holds a certificate that cannot be read/);
  refused(data({ "ca.crt": CA_A, username: "op" }), "unauthenticated", /username and password/);
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
