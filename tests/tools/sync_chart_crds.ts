/**
 * Copies manifests/crds/*.yaml (the single source of the CRDs) byte for byte into the Helm chart's crds/,
 * and removes chart CRDs that no longer exist there. `--check` changes nothing and exits 1 when they differ.
 * Usage: deno run --allow-read --allow-write tests/tools/sync_chart_crds.ts [--check]
 */

const root = new URL("../../", import.meta.url).pathname;
export const MANIFEST_CRDS = `${root}manifests/crds`;
export const CHART_CRDS = `${root}charts/backrest-volsync-operator/crds`;

async function yamlFiles(dir: string): Promise<Map<string, Uint8Array>> {
  const files = new Map<string, Uint8Array>();
  try {
    for await (const entry of Deno.readDir(dir)) {
      if (entry.isFile && entry.name.endsWith(".yaml")) {
        files.set(entry.name, await Deno.readFile(`${dir}/${entry.name}`));
      }
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return files;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/** What differs between the chart's crds/ and manifests/crds/, one line per file; empty when in sync. */
export async function chartCrdProblems(): Promise<string[]> {
  const want = await yamlFiles(MANIFEST_CRDS);
  const have = await yamlFiles(CHART_CRDS);
  const problems: string[] = [];
  for (const [name, bytes] of want) {
    const got = have.get(name);
    if (!got) problems.push(`missing charts/backrest-volsync-operator/crds/${name}`);
    else if (!sameBytes(got, bytes)) problems.push(`stale charts/backrest-volsync-operator/crds/${name}`);
  }
  for (const name of have.keys()) {
    if (!want.has(name)) problems.push(`unexpected charts/backrest-volsync-operator/crds/${name}`);
  }
  return problems.sort();
}

/** Makes the chart's crds/ equal to manifests/crds/. */
export async function syncChartCrds(): Promise<void> {
  const want = await yamlFiles(MANIFEST_CRDS);
  await Deno.mkdir(CHART_CRDS, { recursive: true });
  for (const [name, bytes] of want) await Deno.writeFile(`${CHART_CRDS}/${name}`, bytes);
  for (const name of (await yamlFiles(CHART_CRDS)).keys()) {
    if (!want.has(name)) await Deno.remove(`${CHART_CRDS}/${name}`);
  }
}

async function main(): Promise<number> {
  if (!Deno.args.includes("--check")) {
    await syncChartCrds();
    return 0;
  }
  const problems = await chartCrdProblems();
  if (problems.length > 0) {
    // deno-lint-ignore no-console
    console.error(
      `the chart's CRDs differ from manifests/crds/ (run tests/tools/sync_chart_crds.ts):\n  ${
        problems.join("\n  ")
      }`,
    );
    return 1;
  }
  return 0;
}

if (import.meta.main) Deno.exit(await main());
