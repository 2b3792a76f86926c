/**
 * Credentials for Backrest, read from an auth Secret's data: key `token` means `Authorization: Bearer`,
 * keys `username` + `password` mean HTTP Basic (Backrest checks them on every request). Key `ca.crt`, with
 * or without credentials, holds the PEM CA certificates trusted for an https Backrest beyond the system's.
 * Rule: values stay in `Sensitive`; only the auth header builder reveals them. A fingerprint (a hash) is
 * what callers may store or compare.
 */

import { sha256 } from "../sha256.ts";
import { Sensitive } from "../api/sensitive.ts";
import { BackrestError, type BackrestErrorKind } from "./errors.ts";

/** How the client authenticates to Backrest, and the extra CA certificates (PEM, one each) it trusts. */
export type BackrestAuth =
  & (
    | { kind: "none" }
    | { kind: "bearer"; token: Sensitive }
    | { kind: "basic"; username: string; password: Sensitive }
  )
  & { caCerts?: readonly string[] };

/** The auth Secret key holding CA certificates (the name Kubernetes uses for one, as in TLS Secrets). */
export const CA_KEY = "ca.crt";

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----\r?\n[A-Za-z0-9+/=\r\n]+-----END CERTIFICATE-----/g;

const decoder = new TextDecoder("utf-8", { fatal: true });

/** Key `key` of the auth Secret as text; undefined without the key; `kind` is what not UTF-8 counts as. */
function utf8(data: Record<string, Uint8Array>, key: string, kind: BackrestErrorKind): string | undefined {
  const bytes = data[key];
  if (bytes === undefined) return undefined;
  try {
    return decoder.decode(bytes);
  } catch {
    throw new BackrestError(kind, "Auth", `auth Secret key ${key} is not valid UTF-8`);
  }
}

function text(data: Record<string, Uint8Array>, key: string): string | undefined {
  const raw = utf8(data, key, "unauthenticated");
  if (raw === undefined) return undefined;
  // A trailing newline from `echo` is never part of a token or password sent in a header.
  const value = raw.replace(/\r?\n$/, "");
  if (/[\r\n\0]/.test(value)) {
    throw new BackrestError("unauthenticated", "Auth", `auth Secret key ${key} contains a line break or NUL`);
  }
  return value;
}

/** The certificates of key `ca.crt`, each one PEM block; undefined without the key. */
function caCerts(data: Record<string, Uint8Array>): string[] | undefined {
  const pem = utf8(data, CA_KEY, "invalid");
  if (pem === undefined) return undefined;
  const certs = [...pem.matchAll(PEM_CERTIFICATE)].map((m) => `${m[0]}\n`);
  if (certs.length === 0) {
    throw new BackrestError("invalid", "Auth", `auth Secret key ${CA_KEY} holds no PEM certificate`);
  }
  // Parsed here, where the problem can be named on the Binding, rather than when a client is built.
  try {
    Deno.createHttpClient({ caCerts: certs }).close();
  } catch {
    throw new BackrestError(
      "invalid",
      "Auth",
      `auth Secret key ${CA_KEY} holds a certificate that cannot be read`,
    );
  }
  return certs;
}

/**
 * The credentials an auth Secret holds. `token` wins over `username`/`password`; `ca.crt` alone means no
 * credentials, only trust. A Secret with none of them (or only half of Basic) is an `unauthenticated`
 * BackrestError naming the keys, never their values; an unreadable `ca.crt` is an `invalid` one.
 */
export function authFromSecret(data: Record<string, Uint8Array>): BackrestAuth {
  const cas = caCerts(data);
  const trust = cas ? { caCerts: cas } : {};
  const token = text(data, "token");
  if (token) return { kind: "bearer", token: new Sensitive(token), ...trust };
  const username = text(data, "username");
  const password = text(data, "password");
  if (username && password) return { kind: "basic", username, password: new Sensitive(password), ...trust };
  const credentialKeys = ["token", "username", "password"].filter((k) => data[k] !== undefined);
  if (cas && credentialKeys.length === 0) return { kind: "none", ...trust };
  throw new BackrestError(
    "unauthenticated",
    "Auth",
    `auth Secret needs key token, or keys username and password (non-empty), or only ${CA_KEY}`,
  );
}

/** The secret values of `auth`, for scrubbing server text. */
export function authSecrets(auth: BackrestAuth): string[] {
  switch (auth.kind) {
    case "none":
      return [];
    case "bearer":
      return [auth.token.reveal()];
    case "basic":
      return [auth.password.reveal()];
  }
}

/** A stable hex digest of the credentials (kind, user, secret, CAs); says nothing about the values. */
export function authFingerprint(auth: BackrestAuth): string {
  const h = sha256().update("backrest-volsync-operator/auth/v1\0").update(auth.kind);
  if (auth.kind === "bearer") h.update("\0").update(auth.token.reveal());
  if (auth.kind === "basic") h.update("\0").update(auth.username).update("\0").update(auth.password.reveal());
  // Without CAs the digest is what it was before they existed, so an upgrade re-applies nothing.
  for (const ca of auth.caCerts ?? []) h.update("\0ca\0").update(ca);
  return h.digest("hex");
}

/** The `Authorization` header value for Basic auth. */
export function basicHeader(username: string, password: Sensitive): string {
  const bytes = new TextEncoder().encode(`${username}:${password.reveal()}`);
  return `Basic ${btoa(String.fromCharCode(...bytes))}`;
}
