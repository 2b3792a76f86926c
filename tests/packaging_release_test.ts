/**
 * What a release is made of: the Apache License 2.0; one version in every place that carries it and a
 * CHANGELOG with an Unreleased section; tools/release.ts bumping a copy of the repository, checking it and
 * printing the notes; and install.yaml, built by tools/install_yaml.ts from manifests/ with the pinned
 * kubectl, installed on the real apiserver with the README's one line (`kubectl apply -f install.yaml`),
 * twice, as an upgrade does.
 */
import assert from "node:assert/strict";
import { bump, check, notes, SITES, versions } from "../tools/release.ts";
import { installYaml, OPERATOR_IMAGE, pinImage } from "../tools/install_yaml.ts";
import { controlPlane } from "./harness/control_plane.ts";
import { peer } from "./harness/peers.ts";
import { tempDir, waitUntil } from "./harness/process.ts";
import {
  at,
  can,
  find,
  isObj,
  manifestCrdNames,
  one,
  parseObjects,
  ROOT,
  run,
  str,
} from "./packaging_support.ts";

/** SHA-256 of the Apache License 2.0 as apache.org publishes it (LICENSE-2.0.txt). */
const APACHE_2_SHA256 = "cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30";

async function sha256(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

Deno.test("release: LICENSE is the Apache License 2.0, word for word", async () => {
  const license = await Deno.readTextFile(`${ROOT}/LICENSE`);
  assert.match(license, /^\s+Apache License\n\s+Version 2\.0, January 2004\n/);
  assert.equal(await sha256(license), APACHE_2_SHA256);
});

Deno.test("release: every place that carries the version agrees, and CHANGELOG.md has an Unreleased section", async () => {
  const found = versions(ROOT);
  assert.deepEqual(
    [...new Set(found.map((f) => f.path))].sort(),
    [
      "charts/backrest-volsync-operator/Chart.yaml",
      "deno.json",
      "lib/version.ts",
      "manifests/operator/kustomization.yaml",
    ],
  );
  assert.equal(new Set(found.map((f) => f.version)).size, 1, JSON.stringify(found));
  const changelog = await Deno.readTextFile(`${ROOT}/CHANGELOG.md`);
  assert.ok(notes(changelog, "Unreleased"), "the Unreleased section has text");
});

Deno.test("release: tools/release.ts bumps every version and dates the Unreleased section, nothing else", async () => {
  const dir = await tempDir("release");
  const files = [...new Set([...SITES.map((s) => s.path), "CHANGELOG.md"])];
  for (const f of files) {
    await Deno.mkdir(`${dir}/${f.slice(0, f.lastIndexOf("/") + 1)}`, { recursive: true });
    await Deno.copyFile(`${ROOT}/${f}`, `${dir}/${f}`);
  }
  const before = versions(dir)[0]!.version;
  const unreleased = notes(await Deno.readTextFile(`${dir}/CHANGELOG.md`), "Unreleased");
  assert.deepEqual(check(dir, "1.2.3").length, SITES.length + 1, "every site and the CHANGELOG are named");

  bump(dir, "1.2.3", "2030-01-02");
  assert.deepEqual(check(dir, "1.2.3"), []);
  const changelog = await Deno.readTextFile(`${dir}/CHANGELOG.md`);
  assert.match(changelog, /^## Unreleased\n\n## 1\.2\.3 \(2030-01-02\)\n/m);
  assert.equal(notes(changelog, "1.2.3"), unreleased);
  assert.equal(notes(changelog, "Unreleased"), "");
  for (const f of files.filter((f) => f !== "CHANGELOG.md")) {
    const was = (await Deno.readTextFile(`${ROOT}/${f}`)).split("\n");
    const now = (await Deno.readTextFile(`${dir}/${f}`)).split("\n");
    assert.equal(now.length, was.length, f);
    const changed = now.filter((line, i) => line !== was[i]);
    assert.ok(changed.length > 0 && changed.every((l) => l.includes("1.2.3") && !l.includes(before)), f);
  }
  assert.throws(() => bump(dir, "1.2.4", "2030-01-03"), /Unreleased section is empty/);
  assert.throws(() => bump(dir, "v1.2.4", "2030-01-03"), /not a semantic version/);
});

Deno.test("release: install.yaml is manifests/ with the image pinned, and kubectl apply -f installs and upgrades it", async (t) => {
  const kubectl = (await peer("kubectl")).path;
  const image = "ghcr.io/example/backrest-volsync-operator:1.2.3";
  const text = await installYaml({ kubectl, image, dir: `${ROOT}/manifests` });
  const objects = parseObjects(text);

  await t.step("everything kustomize renders from manifests/, and only the image differs", async () => {
    const rendered = parseObjects((await run(kubectl, ["kustomize", `${ROOT}/manifests`])).stdout);
    const deploy = one(rendered, "Deployment");
    const container = at(deploy, "spec.template.spec.containers.0");
    assert.ok(isObj(container) && String(container.image).startsWith(`${OPERATOR_IMAGE}:`));
    container.image = image;
    assert.deepEqual(objects, rendered);
    assert.deepEqual(
      find(objects, "CustomResourceDefinition").map((c) => str(c, "metadata.name")).sort(),
      await manifestCrdNames(),
    );
    const kinds = new Set(objects.map((o) => str(o, "kind")));
    for (
      const kind of [
        "Namespace",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "Deployment",
      ]
    ) {
      assert.ok(kinds.has(kind), kind);
    }
  });

  await t.step("an image without a tag or digest is refused", () => {
    assert.throws(
      () => pinImage(structuredClone(objects), "ghcr.io/example/backrest-volsync-operator"),
      /tag or digest/,
    );
  });

  const cp = await controlPlane();
  const dir = await tempDir("install");
  await Deno.writeTextFile(`${dir}/install.yaml`, text);
  const apply = () => run(kubectl, ["--kubeconfig", cp.kubeconfigPath, "apply", "-f", `${dir}/install.yaml`]);

  await t.step("kubectl apply -f install.yaml creates every object", async () => {
    const r = await apply();
    assert.equal(r.code, 0, r.stderr);
    for (const o of objects) {
      assert.match(
        r.stdout,
        new RegExp(`${str(o, "metadata.name").replaceAll(".", "\\.")} created`),
        str(o, "kind"),
      );
    }
    const deploy = await cp.json(
      "GET",
      "/apis/apps/v1/namespaces/backups/deployments/backrest-volsync-operator",
    );
    assert.equal(at(deploy, "spec.template.spec.containers.0.image"), image);
    for (const name of await manifestCrdNames()) {
      await waitUntil(`CRD ${name} Established`, async () => {
        const crd = await cp.json("GET", `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`);
        const conditions = at(crd, "status.conditions");
        return Array.isArray(conditions) &&
          conditions.some((c) => at(c, "type") === "Established" && at(c, "status") === "True");
      });
    }
    const sa = "system:serviceaccount:backups:backrest-volsync-operator";
    assert.ok(await can(cp, sa, { verb: "watch", group: "", resource: "secrets", namespace: "default" }));
    assert.ok(
      await can(cp, sa, {
        verb: "create",
        group: "coordination.k8s.io",
        resource: "leases",
        namespace: "backups",
      }),
    );
  });

  await t.step("applying it again (an upgrade) changes nothing and fails nothing", async () => {
    const r = await apply();
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stdout, / created$/m);
  });
});
