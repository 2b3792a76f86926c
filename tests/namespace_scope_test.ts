/**
 * The operator confined to listed namespaces, authenticated as a ServiceAccount that holds only the Roles of
 * manifests/namespaced/ (no ClusterRole at all), on the real apiserver with RBAC, a real Backrest with
 * authentication and restic: Bindings in the watched namespace are applied (their own and generated ones,
 * the latter with the operator's default credentials), other namespaces are ignored, and nothing is
 * refused by RBAC on the way.
 */
import assert from "node:assert/strict";
import { parseAllDocuments } from "yaml";
import { createResticRepo, startBackrest } from "./harness/backrest.ts";
import {
  binding,
  BINDINGS,
  cluster,
  putOperatorConfig,
  replaceSecret,
  replicationSource,
  secret,
  startOperator,
  waitForReason,
} from "./harness/operator.ts";
import { waitUntil } from "./harness/process.ts";
import { assertAccess } from "./harness/access.ts";

const SA = "backrest-volsync-operator";
const USER = { username: "operator", password: `pw-${crypto.randomUUID()}` };
const OPT_IN = "backrest.garethgeorge.com/binding";

type Obj = Record<string, unknown> & {
  metadata: Record<string, unknown>;
  subjects?: Record<string, unknown>[];
};

/**
 * manifests/namespaced/'s Roles and RoleBindings, and the Leases Role it takes from manifests/operator/,
 * with `apps` and `backups` replaced.
 */
async function namespacedRbac(watched: string, operatorNs: string): Promise<Obj[]> {
  const out: Obj[] = [];
  for (
    const file of [
      "namespaced/watched_namespace_rbac.yaml",
      "namespaced/operator_namespace_rbac.yaml",
      "operator/leases_role.yaml",
    ]
  ) {
    const text = await Deno.readTextFile(new URL(`../manifests/${file}`, import.meta.url));
    for (const doc of parseAllDocuments(text)) {
      const obj = doc.toJS() as Obj | null;
      if (!obj) continue;
      assert.ok(obj.kind === "Role" || obj.kind === "RoleBinding", `${file} holds only Roles: ${obj.kind}`);
      const swap = (ns: unknown) => ns === "apps" ? watched : ns === "backups" ? operatorNs : ns;
      obj.metadata.namespace = swap(obj.metadata.namespace ?? "backups"); // manifests/operator/ leaves it to kustomize
      for (const s of obj.subjects ?? []) s.namespace = swap(s.namespace);
      out.push(obj);
    }
  }
  return out;
}

async function getBinding(ns: string, name: string): Promise<{ status?: unknown } | undefined> {
  const cp = await cluster();
  const res = await cp.api("GET", `${BINDINGS}/namespaces/${ns}/backrestvolsyncbindings/${name}`);
  if (res.status === 404) {
    await res.body?.cancel();
    return undefined;
  }
  return await res.json() as { status?: unknown };
}

Deno.test("namespace scope: Roles only, one watched namespace: applied there, others ignored, no 403", async () => {
  const cp = await cluster();
  const [configNs, watched, other] = await Promise.all([
    cp.namespace("opns"),
    cp.namespace("watched"),
    cp.namespace("other"),
  ]);
  for (const obj of await namespacedRbac(watched, configNs)) await cp.apply(JSON.stringify(obj));
  const kubeconfigPath = await cp.kubeconfigForToken(await cp.serviceAccountToken(configNs, SA));
  // The token really has no cluster-wide rights.
  await assertAccess(cp, `system:serviceaccount:${configNs}:${SA}`, ["may not list secrets"]);

  const backrest = await startBackrest({ auth: USER });
  await cp.apply(JSON.stringify(secret("backrest-auth", USER)), configNs);
  await putOperatorConfig(configNs, {
    defaultBackrest: { url: backrest.url, authRef: { name: "backrest-auth" } },
    bindingGeneration: { policy: "Annotated" },
  });
  const op = await startOperator({
    namespaces: [watched],
    configNamespace: configNs,
    kubeconfigPath,
    backrestTimeoutMs: 20_000,
  });
  try {
    for (const ns of [watched, other]) {
      const repo = await createResticRepo();
      await cp.apply(
        JSON.stringify(secret("s", { RESTIC_REPOSITORY: repo.uri, RESTIC_PASSWORD: repo.password })),
        ns,
      );
      await cp.apply(JSON.stringify(secret("auth", USER)), ns);
      await cp.apply(
        JSON.stringify(replicationSource("src", "s", { annotations: { [OPT_IN]: "true" } })),
        ns,
      );
      await cp.apply(
        JSON.stringify(
          binding("own", {
            url: backrest.url,
            source: "src",
            authRef: "auth",
            repo: { idOverride: `own-${ns}` },
          }),
        ),
        ns,
      );
    }
    // The OperatorConfig was read and its status written with the Role in the operator's namespace.
    await waitUntil("OperatorConfig accepted", async () => {
      const c = await cp.json(
        "GET",
        `${BINDINGS}/namespaces/${configNs}/backrestvolsyncoperatorconfigs/backrest-volsync-operator`,
      ) as { status?: { conditions?: { reason: string }[] } };
      return c.status?.conditions?.[0]?.reason === "Accepted";
    });
    await waitForReason(cp, watched, "own", "Applied", 60_000);
    // The generated Binding authenticates with the default auth Secret from the operator's namespace.
    await waitForReason(cp, watched, "bvsb-rs-src", "Applied", 60_000);
    const ids = (await backrest.getConfig()).repos.map((r) => r.id);
    assert.ok(ids.includes(`own-${watched}`));
    assert.ok(ids.includes(`volsync-${watched}-replicationsource-src`));

    // The other namespace is invisible to the operator.
    await waitUntil("watched namespace settled", () => {
      const { autoBinding, binding } = op.operator.controllers;
      return Promise.resolve(
        [autoBinding, binding].every((c) => c.queue.length === 0 && c.queue.inFlight === 0),
      );
    });
    assert.equal((await getBinding(other, "own"))?.status, undefined, "no status in an unwatched namespace");
    assert.equal(await getBinding(other, "bvsb-rs-src"), undefined, "no generated Binding there");
    assert.ok(!ids.some((id) => id.includes(other)), "nothing from the other namespace in Backrest");

    // Rotating the default auth Secret (in the operator's namespace) still reaches the generated Binding.
    await replaceSecret(configNs, "backrest-auth", { ...USER, password: "wrong-password" });
    await waitForReason(cp, watched, "bvsb-rs-src", "BackrestAuthInvalid", 30_000);
    await replaceSecret(configNs, "backrest-auth", USER);
    await waitForReason(cp, watched, "bvsb-rs-src", "Applied", 30_000);

    const refused = op.logs.filter((l) => /forbidden|[\s:]403[\s:]/i.test(l));
    assert.deepEqual(refused, [], "RBAC refused nothing");
  } catch (e) {
    const errors = op.logs.filter((l) => l.includes('"level":"error"') || /403|forbidden/i.test(l));
    throw new Error(`${(e as Error).message}\noperator errors:\n${errors.slice(-8).join("\n")}`);
  } finally {
    await op.stop();
    await backrest.stop();
  }
});
