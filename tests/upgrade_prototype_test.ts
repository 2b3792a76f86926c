/**
 * Upgrading a cluster that ran the Go prototype, on the real apiserver: objects the prototype's CRDs let in
 * but ours refuse (a restic flag outside the allowlist, a URL with a query, an id that starts and ends with
 * `_`, and the same flag in the OperatorConfig's defaultRepo) are stored first under a stand-in for the
 * prototype's CRDs (the same names, an open schema: the prototype's own had no CEL rules). Then the README's
 * upgrade step (`kubectl apply -f manifests/crds/` with the pinned kubectl) replaces the CRDs. The stored
 * objects still read, and updates that leave the refused value as it is go through (CRD validation
 * ratcheting, on by default since Kubernetes 1.30), while new objects like them and edits to the refused
 * value itself are refused. The operator then says what the upgrade guide says: each refused Binding
 * names its problem (InvalidSpec; the status write goes through despite the refused value), and every
 * other Binding halts on the OperatorConfig (OperatorConfigInvalid) until it is fixed.
 */
import assert from "node:assert/strict";
import { stringify } from "yaml";
import {
  binding,
  BINDINGS,
  cluster,
  readyCondition,
  startOperator,
  waitForReason,
} from "./harness/operator.ts";
import { controlPlane } from "./harness/control_plane.ts";
import { peer } from "./harness/peers.ts";
import { tempDir, waitUntil } from "./harness/process.ts";
import { at, ROOT, run } from "./packaging_support.ts";

const GROUP = "backrest.garethgeorge.com";

/** A CRD with our names and an open schema: what the prototype stored, nothing refused. */
function prototypeCrd(kind: string, plural: string, shortName: string): Record<string, unknown> {
  const open = { type: "object", "x-kubernetes-preserve-unknown-fields": true };
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: `${plural}.${GROUP}` },
    spec: {
      group: GROUP,
      names: { kind, listKind: `${kind}List`, plural, singular: kind.toLowerCase(), shortNames: [shortName] },
      scope: "Namespaced",
      versions: [{
        name: "v1alpha1",
        served: true,
        storage: true,
        subresources: { status: {} },
        schema: { openAPIV3Schema: { type: "object", properties: { spec: open, status: open } } },
      }],
    },
  };
}

async function kubectl(kubeconfig: string, args: string[]): Promise<string> {
  const r = await run((await peer("kubectl")).path, ["--kubeconfig", kubeconfig, ...args]);
  assert.equal(r.code, 0, `kubectl ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

/** The prototype-era Bindings: each holds one value our CRDs refuse. */
function legacyBindings(url: string): Record<string, Record<string, unknown>> {
  return {
    flags: binding("flags", {
      url,
      source: "data",
      repo: { autoUnlock: true, extraFlags: ["--cache-dir=/var/cache/restic"] },
    }),
    url: binding("url", { url: `${url}/?instance=a`, source: "data" }),
    id: binding("id", { url, source: "data", repo: { idOverride: "_legacy_" } }),
  };
}

Deno.test("upgrade: objects the prototype stored that our CRDs refuse still read, update and report after the CRD upgrade", async (t) => {
  const cp = await controlPlane();
  const ns = await cp.namespace("upgrade");
  const configNs = await cp.namespace("upgrade-config");
  const url = "http://backrest.backups.svc:9898";
  const dir = await tempDir("upgrade");
  const bindingsPath = (name = "") =>
    `${BINDINGS}/namespaces/${ns}/backrestvolsyncbindings${name ? `/${name}` : ""}`;
  const configPath =
    `${BINDINGS}/namespaces/${configNs}/backrestvolsyncoperatorconfigs/backrest-volsync-operator`;
  const legacy = legacyBindings(url);
  const legacyConfig = {
    apiVersion: `${GROUP}/v1alpha1`,
    kind: "BackrestVolSyncOperatorConfig",
    metadata: { name: "backrest-volsync-operator", namespace: configNs },
    spec: {
      defaultBackrest: { url, authRef: { name: "backrest-auth" } },
      bindingGeneration: {
        policy: "Annotated",
        defaultRepo: { autoUnlock: true, extraFlags: ["--cache-dir=/cache"] },
      },
    },
  };

  await t.step("the prototype's CRDs store them", async () => {
    await Deno.writeTextFile(
      `${dir}/prototype-crds.yaml`,
      [
        prototypeCrd("BackrestVolSyncBinding", "backrestvolsyncbindings", "bvb"),
        prototypeCrd("BackrestVolSyncOperatorConfig", "backrestvolsyncoperatorconfigs", "bvoc"),
      ].map((o) => stringify(o)).join("---\n"),
    );
    await kubectl(cp.kubeconfigPath, ["apply", "-f", `${dir}/prototype-crds.yaml`]);
    await kubectl(cp.kubeconfigPath, [
      "wait",
      "--for=condition=Established",
      "crd",
      "--all",
      "--timeout=60s",
    ]);
    await waitUntil("prototype CRDs served", async () => (await cp.api("GET", bindingsPath())).ok);
    for (const obj of Object.values(legacy)) await cp.json("POST", bindingsPath(), obj);
    await cp.json("POST", bindingsPath(), binding("valid", { url, source: "data" }));
    // What the prototype wrote into status after it applied the repo.
    const flags = await cp.json("GET", bindingsPath("flags"));
    await cp.json("PUT", `${bindingsPath("flags")}/status`, {
      ...(typeof flags === "object" ? flags : {}),
      status: {
        observedGeneration: 1,
        conditions: [{
          type: "Ready",
          status: "True",
          reason: "Applied",
          message: "Backrest repo applied",
          lastTransitionTime: "2025-01-01T00:00:00Z",
        }],
        lastAppliedInputHash: "0".repeat(64),
        lastApplyTime: "2025-01-01T00:00:00Z",
        lastSnapshotMarker: "2025-01-01T00:00:00Z",
      },
    });
    await cp.json("POST", `${BINDINGS}/namespaces/${configNs}/backrestvolsyncoperatorconfigs`, legacyConfig);
  });

  await t.step("kubectl apply -f manifests/crds/ upgrades the CRDs in place", async () => {
    const out = await kubectl(cp.kubeconfigPath, ["apply", "-f", `${ROOT}/manifests/crds/`]);
    assert.match(out, /backrestvolsyncbindings\.backrest\.garethgeorge\.com configured/);
    assert.match(out, /backrestvolsyncoperatorconfigs\.backrest\.garethgeorge\.com configured/);
    // The new schema is in force once a new object like the stored ones is refused.
    await waitUntil("the new schema in force", async () => {
      const r = await cp.api("POST", `${bindingsPath()}?dryRun=All`, {
        ...legacy.flags,
        metadata: { name: "probe" },
      });
      await r.body?.cancel();
      return r.status === 422;
    }, { timeoutMs: 30_000 });
  });

  await t.step("new objects like them are refused (so the rest of this test means something)", async () => {
    for (const [name, obj] of Object.entries(legacy)) {
      const r = await cp.api("POST", `${bindingsPath()}?dryRun=All`, {
        ...obj,
        metadata: { name: `new-${name}` },
      });
      const text = await r.text();
      assert.equal(r.status, 422, `${name}: ${text}`);
    }
    const r = await cp.api(
      "POST",
      `${BINDINGS}/namespaces/${configNs}/backrestvolsyncoperatorconfigs?dryRun=All`,
      {
        ...legacyConfig,
        metadata: { name: "new-config" },
      },
    );
    await r.body?.cancel();
    assert.equal(r.status, 422);
  });

  await t.step("the stored objects read unchanged", async () => {
    for (const [name, obj] of Object.entries(legacy)) {
      const got = await cp.json("GET", bindingsPath(name));
      assert.deepEqual(at(got, "spec.repo.extraFlags"), at(obj, "spec.repo.extraFlags"), name);
      assert.equal(at(got, "spec.backrest.url"), at(obj, "spec.backrest.url"), name);
      assert.equal(at(got, "spec.repo.idOverride"), at(obj, "spec.repo.idOverride"), name);
    }
    assert.equal(
      at(await cp.json("GET", bindingsPath("flags")), "status.lastSnapshotMarker"),
      "2025-01-01T00:00:00Z",
    );
    const config = await cp.json("GET", configPath);
    assert.deepEqual(at(config, "spec.bindingGeneration.defaultRepo.extraFlags"), ["--cache-dir=/cache"]);
  });

  await t.step(
    "updates that leave the refused value alone go through; changing it to another refused value does not",
    async () => {
      const merge = { "content-type": "application/merge-patch+json" };
      for (const name of Object.keys(legacy)) {
        const r = await cp.api(
          "PATCH",
          bindingsPath(name),
          { metadata: { labels: { upgraded: "yes" } } },
          merge,
        );
        assert.equal(r.status, 200, `${name}: ${await r.text()}`);
      }
      const spec = await cp.api(
        "PATCH",
        bindingsPath("flags"),
        { spec: { repo: { autoUnlock: false } } },
        merge,
      );
      assert.equal(spec.status, 200, await spec.text());
      const worse = await cp.api(
        "PATCH",
        bindingsPath("flags"),
        { spec: { repo: { extraFlags: ["--cache-dir=/elsewhere"] } } },
        merge,
      );
      assert.equal(worse.status, 422, await worse.text());
    },
  );

  // The operator in this process now uses our (upgraded) CRDs: cluster() finds them in place.
  await cluster();
  const op = await startOperator({ configNamespace: configNs });
  try {
    await t.step("each refused Binding names its problem; the rest halt on the OperatorConfig", async () => {
      for (const name of Object.keys(legacy)) {
        const ready = await waitForReason(cp, ns, name, "InvalidSpec");
        assert.equal(ready.status, "False");
      }
      assert.match((await readyCondition(cp, ns, "flags"))?.message ?? "", /--cache-dir/);
      await waitForReason(cp, ns, "valid", "OperatorConfigInvalid");
      const config = await cp.json("GET", configPath);
      const conditions = at(config, "status.conditions");
      assert.ok(Array.isArray(conditions));
      const ready = conditions.find((c) => at(c, "type") === "Ready");
      assert.equal(at(ready, "status"), "False");
      assert.equal(at(ready, "reason"), "InvalidSpec");
      assert.match(String(at(ready, "message")), /extraFlags/);
    });

    await t.step("fixing the OperatorConfig resumes the operator", async () => {
      const r = await cp.api(
        "PATCH",
        configPath,
        { spec: { bindingGeneration: { defaultRepo: { extraFlags: ["--no-lock"] } } } },
        { "content-type": "application/merge-patch+json" },
      );
      assert.equal(r.status, 200, await r.text());
      // Past the halt: the next thing it finds is that this test created no VolSync object.
      await waitForReason(cp, ns, "valid", "VolSyncNotFound");
      for (const name of Object.keys(legacy)) {
        assert.equal((await readyCondition(cp, ns, name))?.reason, "InvalidSpec");
      }
    });
  } finally {
    await op.stop();
  }
});
