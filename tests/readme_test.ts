/**
 * The README's YAML examples are real: each applies to the real apiserver with our CRDs, and the example
 * Binding's repo settings map to a Backrest Repo without error.
 */
import assert from "node:assert/strict";
import { parseAllDocuments } from "yaml";
import { parseBinding } from "../lib/api/mod.ts";
import { ALLOWED_FLAGS, ALLOWED_OPTIONS } from "../lib/api/mod.ts";
import { BACKREST_FILE_KEYS, desiredRepo, PASSED_ENV_KEYS } from "../lib/backrest/mod.ts";
import { cluster } from "./harness/operator.ts";

const readme = await Deno.readTextFile(new URL("../README.md", import.meta.url));
const blocks = [...readme.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1] ?? "");

Deno.test("README: every YAML example applies to the real apiserver", async () => {
  assert.ok(blocks.length >= 1, "the README has YAML examples");
  const cp = await cluster();
  const ns = await cp.namespace("readme");
  for (const block of blocks) {
    await cp.apply(block.replaceAll("namespace: backups", `namespace: ${ns}`), ns);
  }
  const list = await cp.json(
    "GET",
    `/apis/backrest.garethgeorge.com/v1alpha1/namespaces/${ns}/backrestvolsyncbindings`,
  ) as {
    items: unknown[];
  };
  assert.ok(list.items.length >= 1);
});

Deno.test("README: the example Binding's repo settings map to a Backrest Repo", async () => {
  const docs = blocks.flatMap((b) => parseAllDocuments(b).map((d) => d.toJS() as Record<string, unknown>));
  const bindings = docs.filter((d) => d.kind === "BackrestVolSyncBinding");
  assert.ok(bindings.length >= 1);
  for (const doc of bindings) {
    const parsed = parseBinding(doc);
    assert.ok(parsed.ok, JSON.stringify(!parsed.ok && parsed.errors));
    const repo = await desiredRepo({
      namespace: "backups",
      kind: parsed.value.spec.source.kind,
      name: parsed.value.spec.source.name,
      secretData: {
        RESTIC_REPOSITORY: new TextEncoder().encode("rest:https://rest.example/repo"),
        RESTIC_PASSWORD: new TextEncoder().encode("pw-123456"),
      },
      settings: parsed.value.spec.repo,
    });
    assert.equal(repo.id, parsed.value.spec.repo.idOverride);
  }
});

Deno.test("README: the threat model names every env key passed and every restic flag allowed", () => {
  const start = readme.indexOf("### Threat model");
  const section = readme.slice(start, readme.indexOf("\n## ", start));
  for (const key of [...PASSED_ENV_KEYS, ...BACKREST_FILE_KEYS]) {
    assert.ok(section.includes(`\`${key}\``), `${key} is listed`);
  }
  for (const flag of Object.keys(ALLOWED_FLAGS)) {
    assert.ok(section.includes(`\`${flag}\``), `${flag} is listed`);
  }
  for (const option of Object.keys(ALLOWED_OPTIONS)) {
    const named = option.endsWith(".connections") ? "`<backend>.connections`" : `\`${option}\``;
    assert.ok(section.includes(named), `${option} is listed`);
  }
});
