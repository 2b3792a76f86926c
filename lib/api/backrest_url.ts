/**
 * Backrest base URLs: which are acceptable at all, their one canonical form, and which an OperatorConfig
 * allowlist admits. Rules: a URL is accepted only in a form that every parser reads alike (no
 * percent-encoding, no `;`, `\`, `?`, `#`, no `.`/`..` or empty path segments, ASCII only, no
 * credentials), so what a Binding names, what the allowlist admits and what the client calls are one
 * address; the canonical form (lowercase scheme and host, explicit port, no trailing slash) is what the
 * operator compares, stores and calls. An allowlist prefix matches on the canonical scheme, host and port
 * exactly and on the path by whole segments.
 */

/**
 * The accepted shape: scheme, a DNS name or bracketed IPv6 address, an optional port, and non-empty path
 * segments of RFC 3986 `pchar`s without percent-encoding or `;`. Trailing slashes are allowed (and dropped).
 * Spelled as a string so the CRDs' CEL rule can carry exactly this expression (a test compares them).
 */
export const BACKREST_URL_PATTERN_SOURCE: string =
  "^[hH][tT][tT][pP][sS]?://([a-zA-Z0-9]([a-zA-Z0-9.-]*[a-zA-Z0-9])?|\\[[0-9a-fA-F:.]+\\])(:[0-9]{1,5})?" +
  "(/[a-zA-Z0-9._~!$&'()*+,=:@-]+)*/*$";
/** A `.` or `..` path segment (after the authority). */
export const BACKREST_URL_DOT_SEGMENT_SOURCE = "^[^/]*//[^/]*(/[^/]*)*/\\.\\.?(/|$)";

const PATTERN = new RegExp(BACKREST_URL_PATTERN_SOURCE);
const DOT_SEGMENT = new RegExp(BACKREST_URL_DOT_SEGMENT_SOURCE);
const SHAPE = "must be an absolute http:// or https:// URL with a host";

/** Why `url` cannot be a Backrest URL, or `undefined` when it can (see the module rules). */
export function backrestURLProblem(url: string): string | undefined {
  if (/^[a-zA-Z][a-zA-Z0-9+.-]*:\/\/[^/?#]*@/.test(url)) {
    return "must not carry credentials (user:password@); put them in a Secret named by authRef";
  }
  if (!/^[hH][tT][tT][pP][sS]?:\/\/[^/]/.test(url)) return SHAPE;
  if (/[%;\\?#]/.test(url)) {
    return "must not contain %, ;, \\, ? or # (one spelling per address: no encoding, parameters, query or fragment)";
  }
  if (!PATTERN.test(url)) {
    return `${SHAPE}: a DNS name or [IPv6] host, an optional port, and a path of plain segments (ASCII)`;
  }
  if (DOT_SEGMENT.test(url)) return "must not contain . or .. path segments";
  const port = /^[^/]*\/\/[^/]*:([0-9]+)(\/|$)/.exec(url)?.[1];
  if (port !== undefined && (Number(port) < 1 || Number(port) > 65535)) return "port must be 1 to 65535";
  return undefined;
}

/**
 * The canonical form of an acceptable URL: `<scheme>://<lowercase host>:<port><path>` with the default
 * port made explicit and trailing slashes dropped; `undefined` when {@linkcode backrestURLProblem} finds one.
 */
export function canonicalBackrestURL(url: string): string | undefined {
  if (backrestURLProblem(url) !== undefined) return undefined;
  const parsed = new URL(url);
  const port = parsed.port || (parsed.protocol === "https:" ? "443" : "80");
  const path = parsed.pathname.replace(/\/+$/, "");
  return `${parsed.protocol}//${parsed.hostname}:${port}${path}`;
}

/**
 * The origin of an acceptable URL, `<scheme>://<lowercase host>:<port>` (the canonical form without its
 * path): what names a Backrest where tenants' paths must not show, such as metric labels.
 */
export function backrestOrigin(url: string): string | undefined {
  const canonical = canonicalBackrestURL(url);
  if (canonical === undefined) return undefined;
  const path = canonical.indexOf("/", canonical.indexOf("//") + 2);
  return path < 0 ? canonical : canonical.slice(0, path);
}

function segments(pathname: string): string[] {
  return pathname.split("/").filter((s) => s !== "");
}

/** Whether `url` falls under `prefix` (see the module rule). Input that is not acceptable never matches. */
export function urlUnderPrefix(url: string, prefix: string): boolean {
  const u = canonicalBackrestURL(url);
  const p = canonicalBackrestURL(prefix);
  if (u === undefined || p === undefined) return false;
  const [uu, pp] = [new URL(u), new URL(p)];
  if (uu.protocol !== pp.protocol || uu.hostname !== pp.hostname || uu.port !== pp.port) return false;
  const want = segments(pp.pathname);
  const got = segments(uu.pathname);
  return want.length <= got.length && want.every((s, i) => got[i] === s);
}

/** Whether an allowlist admits `url`; an empty allowlist admits every acceptable URL. */
export function backrestURLAllowed(url: string, allowlist: readonly string[]): boolean {
  if (canonicalBackrestURL(url) === undefined) return false;
  return allowlist.length === 0 || allowlist.some((prefix) => urlUnderPrefix(url, prefix));
}
