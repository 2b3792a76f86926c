/**
 * Credentials for Backrest, read from an auth Secret's data: key `token` means `Authorization: Bearer`,
 * keys `username` + `password` mean HTTP Basic (or, with `login`, a JWT from `v1.Authentication/Login`).
 * Rule: values stay in `Sensitive`; only the auth header builder reveals them. A fingerprint (a hash) is
 * what callers may store or compare.
 */

import { createHash } from "node:crypto";
import { Sensitive } from "../api/sensitive.ts";
import { BackrestError } from "./errors.ts";

/** How the client authenticates to Backrest. */
export type BackrestAuth =
  | { kind: "none" }
  | { kind: "bearer"; token: Sensitive }
  | { kind: "basic"; username: string; password: Sensitive };

const decoder = new TextDecoder("utf-8", { fatal: true });

function text(data: Record<string, Uint8Array>, key: string): string | undefined {
  const bytes = data[key];
  if (bytes === undefined) return undefined;
  let value: string;
  try {
    value = decoder.decode(bytes);
  } catch {
    throw new BackrestError("unauthenticated", "Auth", `auth Secret key ${key} is not valid UTF-8`);
  }
  // A trailing newline from `echo` is never part of a token or password sent in a header.
  value = value.replace(/\r?\n$/, "");
  if (/[\r\n\0]/.test(value)) {
    throw new BackrestError("unauthenticated", "Auth", `auth Secret key ${key} contains a line break or NUL`);
  }
  return value;
}

/**
 * The credentials an auth Secret holds. `token` wins over `username`/`password`; a Secret with neither
 * (or only half of Basic) is an `unauthenticated` BackrestError naming the keys, never their values.
 */
export function authFromSecret(data: Record<string, Uint8Array>): BackrestAuth {
  const token = text(data, "token");
  if (token) return { kind: "bearer", token: new Sensitive(token) };
  const username = text(data, "username");
  const password = text(data, "password");
  if (username && password) return { kind: "basic", username, password: new Sensitive(password) };
  throw new BackrestError(
    "unauthenticated",
    "Auth",
    "auth Secret needs key token, or keys username and password (non-empty)",
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

/** A stable hex digest of the credentials (kind, user, secret); says nothing about the values. */
export function authFingerprint(auth: BackrestAuth): string {
  const h = createHash("sha256").update("backrest-volsync-operator/auth/v1\0").update(auth.kind);
  if (auth.kind === "bearer") h.update("\0").update(auth.token.reveal());
  if (auth.kind === "basic") h.update("\0").update(auth.username).update("\0").update(auth.password.reveal());
  return h.digest("hex");
}

/** The `Authorization` header value for Basic auth. */
export function basicHeader(username: string, password: Sensitive): string {
  const bytes = new TextEncoder().encode(`${username}:${password.reveal()}`);
  return `Basic ${btoa(String.fromCharCode(...bytes))}`;
}
