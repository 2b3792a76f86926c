/**
 * Generates `gen/` from `proto/` with buf and the local protoc-gen-es plugin (both pinned npm packages in
 * deno.json, run through this Deno), offline. `--check` generates into a temp dir and fails when `gen/`
 * differs in any file, so `gen/` is never edited by hand and never stale.
 *
 * Usage: deno run -A tests/tools/gen.ts [--check]
 */

const root = new URL("../../", import.meta.url).pathname;
const protoDir = `${root}proto`;
const genDir = `${root}gen`;

/**
 * The command that runs an npm package's default binary through this Deno, at the version pinned in
 * deno.json's imports (`import.meta.resolve` would give the package's main module, not its binary).
 */
export function npmBin(name: string): string[] {
  const config: unknown = JSON.parse(Deno.readTextFileSync(`${root}deno.json`));
  const imports = typeof config === "object" && config !== null && "imports" in config
    ? config.imports
    : null;
  const specifier = typeof imports === "object" && imports !== null && name in imports
    ? Object.entries(imports).find(([k]) => k === name)?.[1]
    : undefined;
  if (typeof specifier !== "string" || !specifier.startsWith("npm:")) {
    throw new Error(`deno.json imports pin no npm package ${name}`);
  }
  return [Deno.execPath(), "run", "-A", "--quiet", specifier];
}

/** Runs buf with `args` from the repo root; throws with its stderr on failure. */
export async function buf(args: string[], cwd = root): Promise<Uint8Array> {
  const [cmd, ...pre] = npmBin("@bufbuild/buf");
  const out = await new Deno.Command(cmd!, { args: [...pre, ...args], cwd, stdout: "piped", stderr: "piped" })
    .output();
  if (!out.success) {
    throw new Error(`buf ${args[0]} failed: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
  return out.stdout;
}

/** Generates the TypeScript for `proto/` into `outDir` (which buf empties first). */
export async function generate(outDir: string): Promise<void> {
  const template = {
    version: "v2",
    clean: true,
    plugins: [{
      local: npmBin("@bufbuild/protoc-gen-es"),
      out: outDir,
      opt: ["target=ts", "import_extension=ts"],
    }],
  };
  await buf(["generate", protoDir, "--template", JSON.stringify(template)]);
}

async function listFiles(dir: string, prefix = ""): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  let entries: Deno.DirEntry[];
  try {
    entries = await Array.fromAsync(Deno.readDir(dir));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return files;
    throw e;
  }
  for (const entry of entries) {
    const rel = prefix + entry.name;
    if (entry.isDirectory) {
      for (const [k, v] of await listFiles(`${dir}/${entry.name}`, `${rel}/`)) files.set(k, v);
    } else {
      files.set(rel, await Deno.readTextFile(`${dir}/${entry.name}`));
    }
  }
  return files;
}

async function main(): Promise<number> {
  if (!Deno.args.includes("--check")) {
    await generate(genDir);
    return 0;
  }
  const tmp = await Deno.makeTempDir({ prefix: "bvo-gen-" });
  try {
    await generate(tmp);
    const want = await listFiles(tmp);
    const have = await listFiles(genDir);
    const problems: string[] = [];
    for (const [name, text] of want) {
      if (!have.has(name)) problems.push(`missing gen/${name}`);
      else if (have.get(name) !== text) problems.push(`stale gen/${name}`);
    }
    for (const name of have.keys()) if (!want.has(name)) problems.push(`unexpected gen/${name}`);
    if (problems.length > 0) {
      // deno-lint-ignore no-console
      console.error(`gen/ is out of date (run \`deno task gen\`):\n  ${problems.join("\n  ")}`);
      return 1;
    }
    return 0;
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
}

if (import.meta.main) Deno.exit(await main());
