/**
 * manifests/ against the real tools: `kubectl kustomize` (the pinned kubectl peer) renders both variants, the Deployment is hardened
 * and its args are accepted by the operator's own flag parser, the ClusterRole grants exactly the reviewed
 * rules, and the real apiserver creates every object (CRDs as a dry run, since other tests share them),
 * after which SubjectAccessReviews show what the ServiceAccount may and may not do.
 */
import assert from "node:assert/strict";
import { assertAccess } from "./harness/access.ts";
import { controlPlane } from "./harness/control_plane.ts";
import { peer } from "./harness/peers.ts";
import {
  assertDefaultOperator,
  at,
  find,
  grants,
  isObj,
  list,
  manifestCrdNames,
  type Obj,
  ok,
  one,
  operatorArgsOf,
  parseObjects,
  run,
  serverApply,
  serverApplyAll,
  str,
} from "./packaging_support.ts";

async function kustomize(dir: string): Promise<Obj[]> {
  const kubectl = (await peer("kubectl")).path;
  return parseObjects(ok(`kubectl kustomize ${dir}`, await run(kubectl, ["kustomize", dir])));
}

/** The rules the operator needs, reviewed one by one (see manifests/cluster_role.yaml for the why). */
const CLUSTER_RULES = [
  ["backrest.garethgeorge.com", "backrestvolsyncbindings", "get,list,watch,create,update,patch,delete"],
  ["backrest.garethgeorge.com", "backrestvolsyncbindings/status", "get,update,patch"],
  ["backrest.garethgeorge.com", "backrestvolsyncoperatorconfigs", "get,list,watch"],
  ["backrest.garethgeorge.com", "backrestvolsyncoperatorconfigs/status", "get,update,patch"],
  ["volsync.backube", "replicationsources", "get,list,watch"],
  ["volsync.backube", "replicationdestinations", "get,list,watch"],
  ["volsync.backube", "replicationsources/finalizers", "update"],
  ["volsync.backube", "replicationdestinations/finalizers", "update"],
  ["", "secrets", "get,list,watch"],
  ["", "events", "create,patch"],
].map(([apiGroups, resources, verbs]) => ({
  apiGroups: [apiGroups],
  resources: [resources],
  verbs: verbs!.split(","),
}));

const LEASE_RULES = [{
  apiGroups: ["coordination.k8s.io"],
  resources: ["leases"],
  verbs: ["get", "list", "watch", "create", "update", "delete"],
}, {
  // The status hash key Secret, made once in the operator's namespace (lib/reconcile/hash_key.ts).
  apiGroups: [""],
  resources: ["secrets"],
  verbs: ["create"],
}];

/**
 * Moves rendered objects to fresh namespaces (`rename` maps old -> new) and gives cluster-scoped RBAC a
 * unique suffix, so the objects can be created for real next to other tests.
 */
function relocate(objects: Obj[], rename: Map<string, string>, suffix: string): Obj[] {
  const moved = structuredClone(objects);
  const ns = (n: string) => rename.get(n) ?? n;
  for (const o of moved) {
    const m = o.metadata;
    if (!isObj(m)) continue;
    if (o.kind === "Namespace") m.name = ns(String(m.name));
    if (typeof m.namespace === "string") m.namespace = ns(m.namespace);
    if (o.kind === "ClusterRole" || o.kind === "ClusterRoleBinding") m.name = `${String(m.name)}-${suffix}`;
    if (o.kind === "ClusterRoleBinding" && isObj(o.roleRef)) {
      o.roleRef.name = `${String(o.roleRef.name)}-${suffix}`;
    }
    for (const s of list(o, "subjects")) {
      if (isObj(s) && typeof s.namespace === "string") s.namespace = ns(s.namespace);
    }
    if (o.kind === "Deployment") {
      const c = at(o, "spec.template.spec.containers.0");
      if (isObj(c) && Array.isArray(c.args)) {
        c.args = c.args.map((a: unknown) =>
          String(a).startsWith("--namespace=")
            ? `--namespace=${String(a).slice(12).split(",").map(ns).join(",")}`
            : a
        );
      }
    }
  }
  return moved;
}

Deno.test({
  name: "kustomize: manifests/ renders the CRDs, the operator and its RBAC in namespace backups",
  fn: async () => {
    const objects = await kustomize("manifests");
    assert.deepEqual(
      find(objects, "CustomResourceDefinition").map((c) => str(c, "metadata.name")).sort(),
      await manifestCrdNames(),
      "every CRD of manifests/crds/ is installed",
    );
    assert.equal(str(one(objects, "Namespace"), "metadata.name"), "backups");
    for (const o of objects) {
      const kind = str(o, "kind");
      if (["Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding"].includes(kind)) {
        continue;
      }
      assert.equal(str(o, "metadata.namespace"), "backups", `${kind} ${str(o, "metadata.name")}`);
    }
    for (const b of [...find(objects, "ClusterRoleBinding"), ...find(objects, "RoleBinding")]) {
      assert.deepEqual(list(b, "subjects"), [
        { kind: "ServiceAccount", name: "backrest-volsync-operator", namespace: "backups" },
      ]);
    }
    assert.deepEqual(
      grants(list(one(objects, "ClusterRole", "backrest-volsync-operator"), "rules")),
      grants(CLUSTER_RULES),
    );
    assert.deepEqual(
      grants(list(one(objects, "Role", "backrest-volsync-operator-leases"), "rules")),
      grants(LEASE_RULES),
    );
    assert.equal(find(objects, "Role").length, 1, "the only Role is the Lease's");
  },
});

Deno.test({
  name: "kustomize: the Deployment is hardened and its args parse with the operator's flag parser",
  fn: async () => {
    const objects = await kustomize("manifests");
    const { pod, container: c, opts, service } = assertDefaultOperator(objects);
    assert.equal(str(pod, "serviceAccountName"), "backrest-volsync-operator");
    assert.equal(str(c, "resources.requests.cpu"), "50m");
    assert.equal(str(c, "resources.requests.memory"), "64Mi");
    assert.equal(str(c, "resources.limits.memory"), "128Mi");
    assert.equal(opts.leaderElectionId, "backrest-volsync-operator.backrest.garethgeorge.com");
    assert.equal(str(service, "spec.ports.0.targetPort"), "metrics");
  },
});

Deno.test({
  name: "kustomize: manifests/namespaced/ confines the operator to Roles in the watched namespaces",
  fn: async () => {
    const objects = await kustomize("manifests/namespaced");
    assert.equal(find(objects, "ClusterRole").length, 0);
    assert.equal(find(objects, "ClusterRoleBinding").length, 0);
    assert.equal(find(objects, "CustomResourceDefinition").length, 0, "CRDs are applied separately");
    const opts = operatorArgsOf(objects, "backups");
    assert.deepEqual(opts.namespaces, ["apps"]);
    const watched = one(objects, "Role", "backrest-volsync-operator");
    assert.equal(str(watched, "metadata.namespace"), "apps");
    const clusterWide = grants(CLUSTER_RULES);
    const granted = grants(list(watched, "rules"));
    assert.ok(granted.every((g) => clusterWide.includes(g)));
    assert.ok(!granted.some((g) => g.includes("operatorconfigs")));
    const config = one(objects, "Role", "backrest-volsync-operator-config");
    assert.equal(str(config, "metadata.namespace"), "backups");
    assert.ok(grants(list(config, "rules")).every((g) => clusterWide.includes(g)));
    for (const b of find(objects, "RoleBinding")) {
      assert.equal(str(b, "subjects.0.namespace"), "backups", str(b, "metadata.name"));
    }
  },
});

Deno.test({
  name: "kustomize: the real apiserver creates every object of manifests/ and enforces its RBAC",
  fn: async (t) => {
    const cp = await controlPlane();
    const objects = await kustomize("manifests");

    await t.step("the server does reject an unknown field (so the checks below mean something)", async () => {
      const sa = structuredClone(one(objects, "ServiceAccount"));
      sa.bogusField = true;
      const r = await serverApply(cp, sa, { dryRun: true });
      assert.ok(r.status >= 400, `HTTP ${r.status}: ${r.body}`);
      assert.match(r.body, /bogusField/);
    });

    await t.step("CRDs (dry run: other tests share them)", async () => {
      await serverApplyAll(cp, find(objects, "CustomResourceDefinition"), { dryRun: true });
    });

    const suffix = Date.now().toString(36);
    const ns = `kust-${suffix}`;
    const moved = relocate(
      objects.filter((o) => o.kind !== "CustomResourceDefinition"),
      new Map([["backups", ns]]),
      suffix,
    );
    await t.step("everything else, created for real in a fresh namespace", async () => {
      await serverApplyAll(cp, moved, { dryRun: false });
      const deploy = await cp.json(
        "GET",
        `/apis/apps/v1/namespaces/${ns}/deployments/backrest-volsync-operator`,
      );
      assert.equal(
        at(deploy, "spec.template.spec.containers.0.securityContext.readOnlyRootFilesystem"),
        true,
      );
    });

    await t.step("the ServiceAccount may do what the ClusterRole says, and no more", async () => {
      const elsewhere = await cp.namespace("kust-other");
      await assertAccess(cp, `system:serviceaccount:${ns}:backrest-volsync-operator`, [
        `may watch secrets in ${elsewhere}`,
        `may not create secrets in ${elsewhere}`,
        `may patch backrestvolsyncbindings.backrest.garethgeorge.com/status in ${elsewhere}`,
        `may not update replicationsources.volsync.backube in ${elsewhere}`,
        `may update leases.coordination.k8s.io in ${ns}`,
        `may not update leases.coordination.k8s.io in ${elsewhere}`,
        // Repo claims are given up by deleting their Lease.
        `may delete leases.coordination.k8s.io in ${ns}`,
        `may not delete leases.coordination.k8s.io in ${elsewhere}`,
      ]);
    });

    await t.step("clean up the cluster-scoped objects", async () => {
      for (const o of moved.filter((o) => o.kind === "ClusterRole" || o.kind === "ClusterRoleBinding")) {
        const kind = o.kind === "ClusterRole" ? "clusterroles" : "clusterrolebindings";
        await cp.json("DELETE", `/apis/rbac.authorization.k8s.io/v1/${kind}/${str(o, "metadata.name")}`);
      }
      await cp.json("DELETE", `/api/v1/namespaces/${ns}`);
    });
  },
});

Deno.test({
  name: "kustomize: the real apiserver creates manifests/namespaced/ and it confines the operator",
  fn: async () => {
    const cp = await controlPlane();
    const suffix = Date.now().toString(36);
    const ns = `kustns-${suffix}`;
    const watched = await cp.namespace("kustns-apps");
    const other = await cp.namespace("kustns-other");
    const moved = relocate(
      await kustomize("manifests/namespaced"),
      new Map([["backups", ns], ["apps", watched]]),
      suffix,
    );
    await serverApplyAll(cp, moved, { dryRun: false });
    await assertAccess(cp, `system:serviceaccount:${ns}:backrest-volsync-operator`, [
      `may list secrets in ${watched}`,
      `may not list secrets in ${other}`,
      "may not list secrets",
      `may update backrestvolsyncoperatorconfigs.backrest.garethgeorge.com/status in ${ns}`,
      `may not list backrestvolsyncoperatorconfigs.backrest.garethgeorge.com in ${watched}`,
    ]);
    const deploy = await cp.json(
      "GET",
      `/apis/apps/v1/namespaces/${ns}/deployments/backrest-volsync-operator`,
    );
    assert.ok(list(deploy, "spec.template.spec.containers.0.args").includes(`--namespace=${watched}`));
    await cp.json("DELETE", `/api/v1/namespaces/${ns}`);
  },
});
