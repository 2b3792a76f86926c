/**
 * Where a tenant's repository makes restic in Backrest connect, and which of those places are Backrest's own
 * rather than storage. restic runs inside Backrest's pod, so a repository on loopback reaches Backrest's own
 * sidecars and ports, one on a link-local address reaches the node's cloud metadata service, and no
 * NetworkPolicy sits between a pod and its own loopback. Rules:
 * - every host a repository names is found the way restic finds it (the URI per backend, and the URL-valued
 *   env keys: swift's auth and storage URLs, the STS endpoint of an assumed role);
 * - a host is plain ASCII (Go's HTTP client maps full-width digits and ideographic dots to ASCII before it
 *   dials) and is judged in every spelling restic or a C resolver would read as an address: an IPv4 address
 *   must be a plain dotted quad of decimals (`2130706433`, `0x7f.1`, `0177.0.0.1` and `127.1` are refused
 *   as ambiguous, whatever they decode to: restic's pure-Go resolver looks them up as names, a cgo build
 *   reads them as addresses); IPv6 is judged by the IPv4 address it embeds (mapped, compatible, NAT64,
 *   6to4); a trailing dot, a zone and letter case change nothing; `localhost` and `*.localhost` are loopback;
 * - loopback, unspecified and link-local addresses are refused unless the OperatorConfig's
 *   `repositoryPolicy.allowLocalAddresses` admits them; cloud metadata addresses and names are refused always;
 * - a name is not resolved: one that an attacker's DNS points at such an address is for Backrest's egress
 *   policy and its pod network to stop (the README says so).
 * Messages name the Secret key and the kind of address, never the value.
 */

/** What kind of place a host is; `undefined` from {@linkcode hostKind} means ordinary storage. */
export type HostKind = "loopback" | "unspecified" | "link-local" | "metadata" | "ambiguous";

/** Cloud metadata and instance-identity addresses (AWS, ECS, EKS Pod Identity, GCP, Azure, Alibaba, Oracle, Tencent). */
const METADATA_V4: readonly string[] = [
  "169.254.169.254",
  "169.254.169.253",
  "169.254.170.2",
  "169.254.170.23",
  "169.254.0.23",
  "168.63.129.16",
  "100.100.100.200",
];
const METADATA_V6: readonly string[] = [
  "fd00:ec2::254",
  "fd00:ec2::23",
  "fd20:ce::254",
  "fd00:c1::a9fe:a9fe",
];
/** Names of metadata services (what the operator's own `--deny-net` lists too). */
const METADATA_NAMES: ReadonlySet<string> = new Set([
  "metadata",
  "metadata.google.internal",
  "metadata.goog",
  "instance-data",
  "instance-data.ec2.internal",
  "metadata.tencentyun.com",
  "metadata.azure.com",
]);

/** An IPv4 address as a number, from a plain dotted quad only. */
function dottedQuad(host: string): number | undefined {
  const m = /^(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})$/.exec(host);
  if (!m) return undefined;
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) return undefined;
  return ((parts[0]! << 24) >>> 0) + (parts[1]! << 16) + (parts[2]! << 8) + parts[3]!;
}

/** Whether a C resolver (`inet_aton`) would read `host` as an IPv4 address: 1 to 4 decimal, octal or hex parts. */
function inetAtonLike(host: string): boolean {
  const parts = host.split(".");
  return parts.length <= 4 && parts.every((p) => /^(0[xX][0-9a-fA-F]*|[0-9]+)$/.test(p));
}

function v4Kind(a: number): HostKind | undefined {
  const quad = [a >>> 24, (a >>> 16) & 255, (a >>> 8) & 255, a & 255].join(".");
  if (METADATA_V4.includes(quad)) return "metadata";
  if (a >>> 24 === 127) return "loopback";
  if (a >>> 24 === 0) return "unspecified";
  if (a >>> 16 === ((169 << 8) | 254)) return "link-local";
  return undefined;
}

/** The 8 groups of an IPv6 address (zone removed), or `undefined` when `text` is not one. */
function ipv6Groups(text: string): number[] | undefined {
  let s = text.split("%")[0]!;
  if (!/^[0-9a-fA-F:.]+$/.test(s)) return undefined;
  // A trailing dotted quad stands for the last two groups.
  if (s.includes(".")) {
    const at = s.lastIndexOf(":");
    const v4 = dottedQuad(s.slice(at + 1));
    if (v4 === undefined) return undefined;
    s = `${s.slice(0, at + 1)}${(v4 >>> 16).toString(16)}:${(v4 & 0xffff).toString(16)}`;
  }
  const halves = s.split("::");
  if (halves.length > 2) return undefined;
  const parse = (h: string) =>
    h === "" ? [] : h.split(":").map((g) => /^[0-9a-fA-F]{1,4}$/.test(g) ? parseInt(g, 16) : NaN);
  const head = parse(halves[0]!);
  const tail = halves.length === 2 ? parse(halves[1]!) : [];
  if ([...head, ...tail].some((g) => Number.isNaN(g))) return undefined;
  const given = head.length + tail.length;
  if (halves.length === 1 ? given !== 8 : given > 7) return undefined;
  return [...head, ...Array<number>(8 - given).fill(0), ...tail];
}

function v6Kind(g: number[]): HostKind | undefined {
  const text = g.map((x) => x.toString(16)).join(":");
  if (METADATA_V6.some((m) => ipv6Groups(m)!.map((x) => x.toString(16)).join(":") === text)) {
    return "metadata";
  }
  const v4 = (hi: number, lo: number) => ((hi << 16) >>> 0) + lo;
  const zeros = (from: number, to: number) => g.slice(from, to).every((x) => x === 0);
  if (zeros(0, 8)) return "unspecified";
  if (zeros(0, 7) && g[7] === 1) return "loopback";
  if ((g[0]! & 0xffc0) === 0xfe80) return "link-local";
  // IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible (::a.b.c.d).
  if (zeros(0, 5) && (g[5] === 0xffff || g[5] === 0)) return v4Kind(v4(g[6]!, g[7]!));
  // NAT64 (64:ff9b::/96, 64:ff9b:1::/48 with the address last) and 6to4 (2002:AABB:CCDD::).
  if (g[0] === 0x64 && g[1] === 0xff9b) return v4Kind(v4(g[6]!, g[7]!));
  if (g[0] === 0x2002) return v4Kind(v4(g[1]!, g[2]!));
  return undefined;
}

/**
 * What kind of place `host` is (a DNS name, a dotted quad, or an IPv6 address with or without brackets),
 * or `undefined` for an ordinary host.
 */
export function hostKind(host: string): HostKind | undefined {
  let h = host.toLowerCase();
  if (h.startsWith("[") && h.endsWith("]")) h = h.slice(1, -1);
  if (h.includes(":")) return ipv6Groups(h) ? v6Kind(ipv6Groups(h)!) : "ambiguous";
  h = h.replace(/\.+$/, "");
  if (h === "") return "unspecified";
  const quad = dottedQuad(h);
  if (quad !== undefined) return v4Kind(quad);
  if (inetAtonLike(h)) return "ambiguous";
  if (h === "localhost" || h.endsWith(".localhost")) return "loopback";
  if (METADATA_NAMES.has(h)) return "metadata";
  return undefined;
}

/** The host of an absolute URL as Go's `net/url` finds it (the authority's last `@` onwards, port removed). */
export function urlHost(url: string): string | undefined {
  const m = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\/([^/?#]*)/.exec(url);
  if (!m) return undefined;
  return authorityHost(m[1]!);
}

/** The host in `[user@]host[:port]`. */
function authorityHost(authority: string): string {
  const hostPort = authority.slice(authority.lastIndexOf("@") + 1);
  if (hostPort.startsWith("[")) {
    const end = hostPort.indexOf("]");
    return end < 0 ? hostPort : hostPort.slice(0, end + 1);
  }
  const colon = hostPort.indexOf(":");
  return colon < 0 ? hostPort : hostPort.slice(0, colon);
}

/** A place a repository names: which Secret key names it, and the host there. */
export interface NamedHost {
  /** The Secret key the host comes from (`RESTIC_REPOSITORY` or an env key). */
  key: string;
  /** The host, or `undefined` when the key holds no URL with a host where one is needed. */
  host: string | undefined;
}

/** Env keys whose value is a URL restic (or the SDK it uses) connects to. */
export const URL_ENV_KEYS: readonly string[] = [
  "ST_AUTH",
  "OS_AUTH_URL",
  "OS_STORAGE_URL",
  "RESTIC_AWS_ASSUME_ROLE_STS_ENDPOINT",
];

/**
 * The hosts a repository at `uri` (of restic's `backend`), with `env`, makes restic connect to, as far as
 * the tenant chooses them: the URI's host (rest, s3, sftp) and the URL-valued env keys.
 */
export function repositoryHosts(uri: string, backend: string, env: ReadonlyMap<string, string>): NamedHost[] {
  const out: NamedHost[] = [];
  const key = "RESTIC_REPOSITORY";
  const rest = uri.slice(uri.indexOf(":") + 1);
  if (backend === "rest") out.push({ key, host: urlHost(rest) });
  if (backend === "s3") {
    // restic: `s3:http(s)://host/bucket` is a URL; `s3://host/bucket` and `s3:host/bucket` put the
    // endpoint before the first slash (internal/backend/s3/config.go).
    const endpoint = rest.startsWith("http")
      ? urlHost(rest)
      : authorityHost(rest.replace(/^\/\//, "").split("/")[0]!);
    out.push({ key, host: endpoint });
  }
  if (backend === "sftp") {
    // `sftp://[user@]host[:port]/path` or `sftp:[user@]host:path`.
    out.push({ key, host: rest.startsWith("//") ? urlHost(uri) : authorityHost(rest.split(":")[0]!) });
  }
  for (const k of URL_ENV_KEYS) {
    const v = env.get(k);
    if (v !== undefined && v !== "") out.push({ key: k, host: urlHost(v) });
  }
  return out;
}

const WHAT: Record<HostKind, string> = {
  "loopback": "a loopback address (Backrest's own pod)",
  "unspecified": "an unspecified address (Backrest's own pod)",
  "link-local": "a link-local address (the node's network, where cloud metadata services answer)",
  "metadata": "a cloud metadata service",
  "ambiguous": "an address in a spelling resolvers read differently (write IPv4 as a plain dotted quad)",
};

/**
 * Why the places `hosts` name are not storage a tenant may use, or `undefined`. `allowLocal` admits
 * loopback, unspecified and link-local addresses (never metadata services, never ambiguous spellings).
 */
export function hostProblem(
  hosts: readonly NamedHost[],
  allowLocal: boolean,
): { key: string; message: string } | undefined {
  for (const { key, host } of hosts) {
    // Go's HTTP client maps other scripts' digits and dots to ASCII (IDNA) before it dials, so
    // `１２７.０.０.１` reaches 127.0.0.1: a host is ASCII letters, digits, dots, hyphens and underscores,
    // or a bracketed IPv6 address.
    if (host === undefined || !/^([A-Za-z0-9._-]+|\[[0-9A-Za-z:.%]+\])$/.test(host)) {
      return {
        key,
        message: `${key} must be a URL whose host is plain ASCII (letters, digits, dots, hyphens) or [IPv6]`,
      };
    }
    const kind = hostKind(host);
    if (kind === undefined) continue;
    if (allowLocal && (kind === "loopback" || kind === "unspecified" || kind === "link-local")) continue;
    const unless = kind === "metadata" || kind === "ambiguous"
      ? ""
      : "; the OperatorConfig's spec.repositoryPolicy.allowLocalAddresses admits such addresses";
    return { key, message: `${key} points at ${WHAT[kind]}, which is not storage${unless}` };
  }
  return undefined;
}
