/**
 * Backrest base URLs: which are acceptable at all, and which an OperatorConfig allowlist admits. Rule: an
 * allowlist prefix matches on scheme, host and port exactly (default ports normalized, host
 * case-insensitive) and on the path by whole segments, so `http://backrest:9898` admits
 * `http://backrest:9898/ui` but never `http://backrest:98981` or `http://backrest.evil.example`.
 */

/** Why `url` cannot be a Backrest URL, or `undefined` when it can (absolute http/https with a host). */
export function backrestURLProblem(url: string): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return "must be an absolute http:// or https:// URL with a host";
  }
  if ((parsed.protocol !== "http:" && parsed.protocol !== "https:") || parsed.hostname === "") {
    return "must be an absolute http:// or https:// URL with a host";
  }
  if (parsed.username !== "" || parsed.password !== "") {
    return "must not carry credentials (user:password@); put them in a Secret named by authRef";
  }
  return undefined;
}

function segments(pathname: string): string[] {
  return pathname.split("/").filter((s) => s !== "");
}

/** Whether `url` falls under `prefix` (see the module rule). Unparsable input never matches. */
export function urlUnderPrefix(url: string, prefix: string): boolean {
  let u: URL;
  let p: URL;
  try {
    u = new URL(url);
    p = new URL(prefix);
  } catch {
    return false;
  }
  if (u.protocol !== p.protocol || u.host !== p.host) return false;
  const want = segments(p.pathname);
  const got = segments(u.pathname);
  return want.length <= got.length && want.every((s, i) => got[i] === s);
}

/** Whether an allowlist admits `url`; an empty allowlist admits every URL. */
export function backrestURLAllowed(url: string, allowlist: readonly string[]): boolean {
  return allowlist.length === 0 || allowlist.some((prefix) => urlUnderPrefix(url, prefix));
}
