/**
 * The release's version in every place that carries it, and its CHANGELOG section.
 *
 *   deno run --allow-read --allow-write tools/release.ts bump X.Y.Z   # before tagging vX.Y.Z
 *   deno run --allow-read tools/release.ts check X.Y.Z                # CI, on the tag
 *   deno run --allow-read tools/release.ts notes X.Y.Z                # the GitHub release's text
 *   deno run --allow-read tools/release.ts versions                   # what each place says now
 *
 * Rules: one version everywhere (deno.json, lib/version.ts, the chart's version, appVersion and the image
 * its Artifact Hub annotation lists, the image tag of manifests/); `bump` rewrites exactly those values and turns the CHANGELOG's "Unreleased" section
 * into "X.Y.Z (date)" under a fresh, empty "Unreleased"; nothing else in any file changes.
 */

export interface VersionSite {
  /** Path from the repository root. */
  path: string;
  /** Matches the whole line; group 1 is the version. */
  pattern: RegExp;
  /** The line with another version. */
  line: (version: string) => string;
}

export const SITES: readonly VersionSite[] = [
  { path: "deno.json", pattern: /^ {2}"version": "([^"]*)",$/m, line: (v) => `  "version": "${v}",` },
  {
    path: "lib/version.ts",
    pattern: /^export const VERSION = "([^"]*)";(.*)$/m,
    line: (v) => `export const VERSION = "${v}";`,
  },
  {
    path: "charts/backrest-volsync-operator/Chart.yaml",
    pattern: /^version: (\S+)$/m,
    line: (v) => `version: ${v}`,
  },
  {
    path: "charts/backrest-volsync-operator/Chart.yaml",
    pattern: /^appVersion: "([^"]*)"$/m,
    line: (v) => `appVersion: "${v}"`,
  },
  {
    path: "charts/backrest-volsync-operator/Chart.yaml",
    pattern: /^ {6}image: ghcr\.io\/backrest-volsync\/backrest-volsync-operator:(\S+)$/m,
    line: (v) => `      image: ghcr.io/backrest-volsync/backrest-volsync-operator:${v}`,
  },
  {
    path: "manifests/operator/kustomization.yaml",
    pattern: /^ {4}newTag: "([^"]*)"$/m,
    line: (v) => `    newTag: "${v}"`,
  },
];

const SEMVER = /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?$/;

function rootUrl(root: string, path: string): string {
  return `${root.replace(/\/$/, "")}/${path}`;
}

/** What each site says now: `path: version` lines, in SITES order. */
export function versions(root: string): { path: string; version: string }[] {
  return SITES.map((site) => {
    const text = Deno.readTextFileSync(rootUrl(root, site.path));
    const m = site.pattern.exec(text);
    if (!m) throw new Error(`release: ${site.path} has no line like ${site.line("X.Y.Z")}`);
    return { path: site.path, version: m[1]! };
  });
}

/** The CHANGELOG section of `version` (its heading line excluded), or undefined. */
export function notes(changelog: string, version: string): string | undefined {
  const lines = changelog.split("\n");
  const start = lines.findIndex((l) => l.startsWith(`## ${version} `) || l === `## ${version}`);
  if (start < 0) return undefined;
  const end = lines.findIndex((l, i) => i > start && l.startsWith("## "));
  return lines.slice(start + 1, end < 0 ? undefined : end).join("\n").trim();
}

/** Problems that keep `version` from being released: empty when it can be tagged. */
export function check(root: string, version: string): string[] {
  const problems: string[] = [];
  if (!SEMVER.test(version)) problems.push(`${version} is not a semantic version X.Y.Z`);
  for (const site of versions(root)) {
    if (site.version !== version) problems.push(`${site.path} says ${site.version}, not ${version}`);
  }
  const section = notes(Deno.readTextFileSync(rootUrl(root, "CHANGELOG.md")), version);
  if (!section) problems.push(`CHANGELOG.md has no "## ${version}" section with text`);
  return problems;
}

/** Writes `version` into every site and dates the CHANGELOG's Unreleased section as it. */
export function bump(root: string, version: string, date: string): void {
  if (!SEMVER.test(version)) throw new Error(`release: ${version} is not a semantic version X.Y.Z`);
  for (const site of SITES) {
    const path = rootUrl(root, site.path);
    const text = Deno.readTextFileSync(path);
    const m = site.pattern.exec(text);
    if (!m) throw new Error(`release: ${site.path} has no line like ${site.line("X.Y.Z")}`);
    Deno.writeTextFileSync(path, text.replace(site.pattern, site.line(version) + (m[2] ?? "")));
  }
  const path = rootUrl(root, "CHANGELOG.md");
  const changelog = Deno.readTextFileSync(path);
  if (!/^## Unreleased$/m.test(changelog)) {
    throw new Error('release: CHANGELOG.md has no "## Unreleased" section');
  }
  if (notes(changelog, "Unreleased") === "") throw new Error("release: the Unreleased section is empty");
  Deno.writeTextFileSync(
    path,
    changelog.replace(/^## Unreleased$/m, `## Unreleased\n\n## ${version} (${date})`),
  );
}

if (import.meta.main) {
  const root = new URL("../", import.meta.url).pathname;
  const [command, version] = Deno.args;
  const out = (text: string) => Deno.stdout.writeSync(new TextEncoder().encode(`${text}\n`));
  if (command === "versions") {
    for (const s of versions(root)) out(`${s.path}: ${s.version}`);
  } else if (command === "check" && version) {
    const problems = check(root, version);
    for (const p of problems) out(`release: ${p}`);
    if (problems.length) Deno.exit(1);
  } else if (command === "notes" && version) {
    const text = notes(Deno.readTextFileSync(`${root}CHANGELOG.md`), version);
    if (!text) throw new Error(`release: CHANGELOG.md has no ${version} section`);
    out(text);
  } else if (command === "bump" && version) {
    bump(root, version, new Date().toISOString().slice(0, 10));
    out(`release: ${version} written; commit, then tag v${version} and push the tag`);
  } else {
    throw new Error("usage: release.ts bump|check|notes X.Y.Z, or release.ts versions");
  }
}
