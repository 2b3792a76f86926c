/**
 * What a release is made of: the Apache License 2.0; one version in every place that carries it and a
 * CHANGELOG with an Unreleased section; tools/release.ts bumping a copy of the repository, checking it and
 * printing the notes; and install.yaml, built by tools/install_yaml.ts from manifests/ with the pinned
 * kubectl, installed on the real apiserver with the README's one line (`kubectl apply -f install.yaml`),
 * twice, as an upgrade does; then the README's debug-log patch and its uninstall commands, which leave the
 * namespace and what else runs there.
 */
import assert from "node:assert/strict";
import { bump, check, notes, SITES, versions } from "../tools/release.ts";
import { installYaml, OPERATOR_IMAGE, pinImage } from "../tools/install_yaml.ts";
import { assertAccess } from "./harness/access.ts";
import { controlPlane } from "./harness/control_plane.ts";
import { peer } from "./harness/peers.ts";
import { tempDir, waitUntil } from "./harness/process.ts";
import { parseOptions } from "../lib/options.ts";
import {
  at,
  find,
  isObj,
  manifestCrdNames,
  ok,
  one,
  parseObjects,
  readmeShell,
  ROOT,
  run,
  shell,
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
    await assertAccess(cp, "system:serviceaccount:backups:backrest-volsync-operator", [
      "may watch secrets in default",
      "may create leases.coordination.k8s.io in backups",
    ]);
  });

  await t.step("applying it again (an upgrade) changes nothing and fails nothing", async () => {
    const r = await apply();
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stdout, / created$/m);
  });

  const release = "https://github.com/backrest-volsync/backrest-volsync-operator/releases";
  const env = { KUBECONFIG: cp.kubeconfigPath };
  await t.step("the README's install and upgrade lines are this kubectl apply of install.yaml", async () => {
    const [install] = await readmeShell("One line, from a release");
    assert.ok(install?.includes(`kubectl apply -f ${release}/latest/download/install.yaml\n`));
    const upgrade = (await readmeShell("Upgrade"))[0]!;
    assert.equal(upgrade, `kubectl apply -f ${release}/download/vX.Y.Z/install.yaml\n`);
    ok(
      "README upgrade",
      await shell(upgrade.replace(`${release}/download/vX.Y.Z/install.yaml`, `${dir}/install.yaml`), env),
    );
  });

  await t.step(
    "the README's debug-log patch turns debug logs on, and refuses to patch another argument",
    async () => {
      const blocks = await readmeShell("Debug logs");
      const patch = blocks.find((b) => b.startsWith("kubectl -n backups patch deployment"));
      assert.ok(patch);
      ok("README patch", await shell(patch, env));
      const deploy = await cp.json(
        "GET",
        "/apis/apps/v1/namespaces/backups/deployments/backrest-volsync-operator",
      );
      const args = (at(deploy, "spec.template.spec.containers.0.args") as string[]).map((a) =>
        a.replaceAll("$(POD_NAMESPACE)", "backups")
      );
      assert.equal(parseOptions(args).logLevel, "debug");
      const again = await shell(patch, env);
      assert.notEqual(again.code, 0, "the test operation stops a second patch");
      const read = blocks.find((b) => b.includes("kubectl get backrestvolsyncbindings -A"));
      ok("README get", await shell(read!.split("\n").filter((l) => !l.includes(" logs ")).join("\n"), env));
    },
  );

  await t.step(
    "the README's uninstall removes the operator and what it made, never the namespace",
    async () => {
      // What a running operator leaves: a Binding with deletionPolicy Remove (its finalizer), a claim Lease,
      // the leader Lease and the hash key Secret; beside them, Backrest's own Deployment in the namespace.
      const app = await cp.namespace("uninstall-app");
      await cp.json(
        "POST",
        `/apis/backrest.garethgeorge.com/v1alpha1/namespaces/${app}/backrestvolsyncbindings`,
        {
          apiVersion: "backrest.garethgeorge.com/v1alpha1",
          kind: "BackrestVolSyncBinding",
          metadata: { name: "kept", finalizers: ["backrest.garethgeorge.com/remove-repo"] },
          spec: {
            backrest: { url: "http://backrest.backups.svc:9898" },
            source: { kind: "ReplicationSource", name: "data" },
            deletionPolicy: "Remove",
          },
        },
      );
      const leases = "/apis/coordination.k8s.io/v1/namespaces/backups/leases";
      await cp.json("POST", leases, {
        metadata: { name: "repo-claim-x", labels: { "backrest.garethgeorge.com/repo-claim": "true" } },
        spec: {},
      });
      await cp.json("POST", leases, {
        metadata: { name: "backrest-volsync-operator.backrest.garethgeorge.com" },
      });
      await cp.json("POST", "/api/v1/namespaces/backups/secrets", {
        metadata: { name: "backrest-volsync-operator-hash-key" },
        data: { key: btoa("k".repeat(32)) },
      });
      await cp.json("POST", "/apis/apps/v1/namespaces/backups/deployments", {
        metadata: { name: "backrest" },
        spec: {
          selector: { matchLabels: { app: "backrest" } },
          template: {
            metadata: { labels: { app: "backrest" } },
            spec: { containers: [{ name: "backrest", image: "garethgeorge/backrest:v1.14.1" }] },
          },
        },
      });
      const blocks = await readmeShell("Uninstall");
      assert.equal(blocks.length, 4, "helm, install.yaml, leftovers, CRDs");
      for (const block of blocks.slice(1)) {
        ok(
          `README uninstall: ${block.split("\n")[0]}`,
          await shell(block, env),
        );
      }
      const gone = async (path: string) => {
        const res = await cp.api("GET", path);
        await res.body?.cancel();
        return res.status === 404;
      };
      for (
        const path of [
          "/apis/apps/v1/namespaces/backups/deployments/backrest-volsync-operator",
          "/api/v1/namespaces/backups/serviceaccounts/backrest-volsync-operator",
          "/apis/rbac.authorization.k8s.io/v1/clusterroles/backrest-volsync-operator",
          "/apis/rbac.authorization.k8s.io/v1/namespaces/backups/roles/backrest-volsync-operator-leases",
          "/api/v1/namespaces/backups/secrets/backrest-volsync-operator-hash-key",
          `${leases}/repo-claim-x`,
          `${leases}/backrest-volsync-operator.backrest.garethgeorge.com`,
        ]
      ) assert.ok(await gone(path), `${path} is gone`);
      for (const name of await manifestCrdNames()) {
        await waitUntil(
          `CRD ${name} deleted`,
          () => gone(`/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`),
        );
      }
      assert.ok(!(await gone("/api/v1/namespaces/backups")), "the namespace stays");
      assert.ok(!(await gone("/apis/apps/v1/namespaces/backups/deployments/backrest")), "Backrest stays");
    },
  );
});
