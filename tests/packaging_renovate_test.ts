/**
 * Dependency updates: Renovate's config (.github/renovate.json) covers every version the repository pins.
 * Its regex managers are run here, as Renovate runs them, over the files they name: each pinned peer in
 * tests/peers/build.sh and the Deno of tools/deno must be matched once, with the pinned value and the Go
 * module (or, for the web UI's build tools, the npm package) build.sh really fetches. Renovate's own managers
 * cover deno.json (npm imports, with deno.lock), the Dockerfile and the workflows' actions, so those files
 * must be in the forms they read.
 */
import assert from "node:assert/strict";
import { parse } from "yaml";
import { isObj, list, ROOT, str } from "./packaging_support.ts";

const config: unknown = JSON.parse(await Deno.readTextFile(`${ROOT}/.github/renovate.json`));
assert.ok(isObj(config));

interface RegexManager {
  files: RegExp[];
  matches: RegExp[];
  datasource: string;
  depName: string;
  /** What Renovate looks up: packageNameTemplate, else the depName. */
  packageName: string;
}

/** A Renovate pattern written as `/regex/` (its form for managerFilePatterns). */
function slashed(pattern: string): RegExp {
  const m = /^\/(.*)\/([a-z]*)$/.exec(pattern);
  assert.ok(m, `managerFilePatterns entry ${pattern} is a /regex/`);
  return new RegExp(m[1]!, m[2]);
}

function regexManagers(): RegexManager[] {
  return list(config, "customManagers").filter(isObj).map((m) => {
    assert.equal(m.customType, "regex");
    return {
      files: list(m, "managerFilePatterns").map(String).map(slashed),
      matches: list(m, "matchStrings").map((s) => new RegExp(String(s), "g")),
      datasource: str(m, "datasourceTemplate"),
      depName: str(m, "depNameTemplate"),
      packageName: str(m, "packageNameTemplate") || str(m, "depNameTemplate"),
    };
  });
}

/** What the regex managers find in one file: depName -> the currentValues found. */
function extracted(path: string, text: string): Map<string, string[]> {
  const found = new Map<string, string[]>();
  for (const m of regexManagers()) {
    if (!m.files.some((f) => f.test(path))) continue;
    for (const re of m.matches) {
      for (const hit of text.matchAll(re)) {
        const value = hit.groups?.currentValue;
        assert.ok(value, `${m.depName}: the match has a currentValue`);
        found.set(m.depName, [...(found.get(m.depName) ?? []), value]);
      }
    }
  }
  return found;
}

Deno.test("renovate: the managers are Deno's, the Dockerfile's, the workflows' and the regex ones", () => {
  assert.deepEqual(list(config, "enabledManagers"), ["deno", "dockerfile", "github-actions", "custom.regex"]);
});

Deno.test("renovate: every peer version pinned in tests/peers/build.sh is updated, from the module build.sh builds", async () => {
  const path = "tests/peers/build.sh";
  const text = await Deno.readTextFile(`${ROOT}/${path}`);
  const pins = [...text.matchAll(/^([A-Z_]+_VERSION)=(\S+)$/gm)].map((m) => ({ name: m[1]!, value: m[2]! }));
  assert.ok(pins.length >= 8, "build.sh pins its peers");
  const found = extracted(path, text);
  const managers = regexManagers().filter((m) => m.files.some((f) => f.test(path)));
  for (const pin of pins) {
    const covering = managers.filter((m) =>
      m.matches.some((re) => [...text.matchAll(re)].some((h) => h[0].startsWith(`${pin.name}=`)))
    );
    assert.equal(covering.length, 1, `${pin.name} is covered by exactly one manager`);
    const m = covering[0]!;
    assert.deepEqual(found.get(m.depName), [pin.value], `${pin.name}: ${m.depName} at ${pin.value}`);
    if (m.datasource === "npm") {
      // The UI build's tools come from npm, fetched as `<package>@$<PIN>` (npx, npm pack).
      assert.ok(
        text.includes(`${m.depName}@$${pin.name}`),
        `build.sh fetches ${m.depName}@$${pin.name} from npm`,
      );
    } else {
      assert.equal(m.datasource, "go", `${pin.name} comes from the Go module proxy or npm`);
      assert.ok(
        text.includes(m.packageName),
        `build.sh builds ${m.packageName} (the module Renovate looks up)`,
      );
    }
  }
});

Deno.test("renovate: one Deno, in tools/deno and the Dockerfile's build stage, updated together", async () => {
  const shim = await Deno.readTextFile(`${ROOT}/tools/deno`);
  const pinned = /^DENO_VERSION=(\S+)$/m.exec(shim)?.[1];
  assert.ok(pinned);
  assert.deepEqual(extracted("tools/deno", shim).get("deno"), [pinned]);
  const npm = regexManagers().find((m) => m.depName === "deno");
  assert.equal(npm?.datasource, "npm", "the shim installs Deno from npm");
  const dockerfile = await Deno.readTextFile(`${ROOT}/Dockerfile`);
  assert.match(
    dockerfile,
    new RegExp(`^FROM \\S+ denoland/deno:${pinned.replaceAll(".", "\\.")} AS build$`, "m"),
  );
  const group = list(config, "packageRules").filter(isObj).find((r) => r.groupName === "deno");
  assert.deepEqual(list(group, "matchPackageNames").sort(), ["deno", "denoland/deno"]);
});

Deno.test("renovate: deno.json's imports are exact npm versions the deno manager reads", async () => {
  const deno: unknown = JSON.parse(await Deno.readTextFile(`${ROOT}/deno.json`));
  const imports = isObj(deno) && isObj(deno.imports) ? Object.entries(deno.imports) : [];
  assert.ok(imports.length > 0);
  for (const [name, spec] of imports) {
    assert.match(String(spec), /^npm:(@[a-z0-9-]+\/)?[a-z0-9.-]+@\d+\.\d+\.\d+$/, `${name}: ${String(spec)}`);
  }
});

Deno.test("renovate: every action a workflow uses is pinned by commit digest with its release tag, which the github-actions manager keeps current", async () => {
  const rule = list(config, "packageRules").filter(isObj).find((r) =>
    list(r, "matchManagers").includes("github-actions")
  );
  assert.equal(rule?.pinDigests, true, "Renovate pins digests (and any action added by tag)");
  const dir = `${ROOT}/.github/workflows`;
  let count = 0;
  for (const entry of Deno.readDirSync(dir)) {
    const text = await Deno.readTextFile(`${dir}/${entry.name}`);
    const wf: unknown = parse(text);
    const jobs = isObj(wf) && isObj(wf.jobs) ? Object.values(wf.jobs) : [];
    for (const job of jobs) {
      const local = str(job, "uses");
      if (local) {
        assert.match(local, /^\.\/\.github\/workflows\/[\w-]+\.yaml$/, `${entry.name}: ${local}`);
        continue;
      }
      for (const step of list(job, "steps").filter(isObj)) {
        const uses = str(step, "uses");
        if (!uses) continue;
        count++;
        assert.match(uses, /^[\w.-]+\/[\w.-]+(\/[\w./-]+)?@[0-9a-f]{40}$/, `${entry.name}: ${uses}`);
        // The comment is what the manager reads as the version, and what a reader checks the digest by.
        const line = text.split("\n").find((l) => l.includes(`uses: ${uses}`));
        assert.match(line ?? "", / # v\d+\.\d+\.\d+$/, `${entry.name}: ${uses} carries its tag`);
      }
    }
  }
  assert.ok(count > 10);
});
