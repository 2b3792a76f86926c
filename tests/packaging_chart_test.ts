/**
 * The Helm chart against the real tools: `helm lint --strict`, `helm template` for the value sets users
 * reach for, the values schema, the prototype's values keys, CRDs equal to manifests/crds/, the same RBAC
 * as manifests/, and `helm install` onto the harness apiserver (every object also validated strictly by
 * the server).
 */
import assert from "node:assert/strict";
import { controlPlane } from "./harness/control_plane.ts";
import { parseOptions } from "../lib/options.ts";
import { chartCrdProblems } from "./tools/sync_chart_crds.ts";
import {
  at,
  can,
  CHART,
  find,
  grants,
  helm,
  isObj,
  list,
  manifestCrdNames,
  type Obj,
  ok,
  one,
  parseObjects,
  ROOT,
  run,
  serverApply,
  serverApplyAll,
  str,
} from "./packaging_support.ts";

async function template(args: string[] = [], namespace = "backups"): Promise<Obj[]> {
  return parseObjects(ok("helm template", await helm(["template", "bvo", CHART, "-n", namespace, ...args])));
}

function args(objects: Obj[]): string[] {
  return list(one(objects, "Deployment"), "spec.template.spec.containers.0.args").map(String);
}

/** The Deployment's args as the operator itself parses them (with the downward-API variable filled in). */
function parsedArgs(objects: Obj[], namespace: string) {
  return parseOptions(args(objects).map((a) => a.replaceAll("$(POD_NAMESPACE)", namespace)));
}

/** Every value key the Go prototype's chart had, set to a non-default value. */
const PROTOTYPE_VALUES = `
nameOverride: my-name
fullnameOverride: my-operator
replicaCount: 1
image:
  repository: ghcr.io/example/backrest-volsync-operator
  tag: "v0.3.0"
  pullPolicy: Always
imagePullSecrets:
  - name: ghcr-pull
serviceAccount:
  create: true
  name: my-sa
rbac:
  create: true
leaderElection:
  enabled: true
metrics:
  port: 9090
  bindAddress: ""
healthProbe:
  port: 9091
  bindAddress: ":9091"
operatorConfig:
  create: true
  name: my-config
  paused: true
  defaultBackrest:
    url: http://backrest.backups.svc:9898
    authRef:
      name: backrest-auth
  bindingGeneration: All
  bindingGenerationKinds: [ReplicationSource]
  defaultRepo:
    idOverride: ignored
    autoUnlock: true
    autoInitialize: true
    triggerTasksOnSnapshot: true
    extraFlags: ["--no-lock"]
    envAllowlist: ["HTTPS_PROXY"]
podSecurityContext:
  runAsNonRoot: true
  seccompProfile:
    type: RuntimeDefault
securityContext:
  allowPrivilegeEscalation: false
  capabilities:
    drop: [ALL]
  runAsNonRoot: true
resources:
  requests:
    cpu: 10m
    memory: 64Mi
  limits:
    memory: 256Mi
`;

Deno.test("chart: helm lint --strict passes", async () => {
  const out = ok("helm lint", await helm(["lint", "--strict", CHART]));
  assert.match(out, /1 chart\(s\) linted, 0 chart\(s\) failed/);
  assert.doesNotMatch(out, /\[(WARNING|ERROR)\]/);
});

Deno.test("chart: helm package carries the CRDs, the schema and the examples", async () => {
  const dir = await Deno.makeTempDir({ prefix: "bvo-package-" });
  try {
    ok("helm package", await helm(["package", CHART, "--destination", dir]));
    const tgz = `${dir}/backrest-volsync-operator-0.1.0.tgz`;
    const files = ok("tar", await run("tar", ["-tzf", tgz])).split("\n").filter((f) => f !== "").sort();
    for (
      const want of [
        "backrest-volsync-operator/Chart.yaml",
        "backrest-volsync-operator/values.schema.json",
        "backrest-volsync-operator/templates/NOTES.txt",
        "backrest-volsync-operator/examples/backrestvolsyncbinding.yaml",
        "backrest-volsync-operator/examples/operatorconfig.yaml",
        ...manifestCrdFiles().map((f) => `backrest-volsync-operator/crds/${f}`),
      ]
    ) assert.ok(files.includes(want), `${want} in ${files.join(", ")}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

function manifestCrdFiles(): string[] {
  return [...Deno.readDirSync(`${ROOT}/manifests/crds`)].map((e) => e.name).filter((n) =>
    n.endsWith(".yaml")
  );
}

Deno.test("chart: crds/ is a byte-identical copy of manifests/crds/", async () => {
  const problems = await chartCrdProblems();
  assert.deepEqual(problems, [], "run: tools/deno run -A tests/tools/sync_chart_crds.ts");
  assert.ok((await manifestCrdNames()).length > 0, "manifests/crds/ holds no CRD");
});

Deno.test("chart: default values render the prototype's names and a hardened Deployment", async () => {
  const objects = await template();
  const kinds = objects.map((o) => str(o, "kind")).sort();
  assert.deepEqual(kinds, [
    "ClusterRole",
    "ClusterRoleBinding",
    "Deployment",
    "Role",
    "RoleBinding",
    "Service",
    "ServiceAccount",
  ]);
  for (const o of objects) {
    assert.ok(str(o, "metadata.name").startsWith("backrest-volsync-operator"), str(o, "metadata.name"));
    if (o.kind !== "ClusterRole" && o.kind !== "ClusterRoleBinding") {
      assert.equal(str(o, "metadata.namespace"), "backups", `${str(o, "kind")} namespace`);
    }
  }
  const deploy = one(objects, "Deployment");
  assert.deepEqual(at(deploy, "spec.selector.matchLabels"), { app: "backrest-volsync-operator" });
  const pod = at(deploy, "spec.template.spec");
  const c = at(pod, "containers.0");
  assert.equal(str(c, "image"), "ghcr.io/backrest-volsync/backrest-volsync-operator:0.1.0");
  assert.equal(at(pod, "securityContext.runAsNonRoot"), true);
  assert.equal(at(pod, "securityContext.runAsUser"), 65532);
  assert.equal(str(pod, "securityContext.seccompProfile.type"), "RuntimeDefault");
  assert.equal(at(c, "securityContext.readOnlyRootFilesystem"), true);
  assert.equal(at(c, "securityContext.allowPrivilegeEscalation"), false);
  assert.deepEqual(at(c, "securityContext.capabilities.drop"), ["ALL"]);
  assert.deepEqual(list(c, "volumeMounts"), [{ name: "tmp", mountPath: "/tmp" }]);
  assert.ok(isEmptyDir(list(pod, "volumes"), "tmp"));
  assert.equal(str(c, "livenessProbe.httpGet.path"), "/healthz");
  assert.equal(str(c, "readinessProbe.httpGet.path"), "/readyz");
  assert.equal(str(c, "livenessProbe.httpGet.port"), "probes");
  const ports = Object.fromEntries(list(c, "ports").map((p) => [str(p, "name"), at(p, "containerPort")]));
  assert.deepEqual(ports, { metrics: 8080, probes: 8081 });
  const env = list(c, "env").map((e) => `${str(e, "name")}=${str(e, "valueFrom.fieldRef.fieldPath")}`);
  assert.deepEqual(env, ["POD_NAMESPACE=metadata.namespace", "POD_NAME=metadata.name"]);

  const opts = parsedArgs(objects, "backups");
  assert.equal(opts.leaderElect, true);
  assert.equal(opts.metricsBindAddress, ":8080");
  assert.equal(opts.healthProbeBindAddress, ":8081");
  assert.equal(opts.operatorConfigName, "backrest-volsync-operator");
  assert.equal(opts.operatorConfigNamespace, "backups");
  assert.deepEqual(opts.namespaces, []);
  assert.equal(opts.logFormat, "json");

  const svc = one(objects, "Service");
  assert.deepEqual(at(svc, "spec.selector"), { app: "backrest-volsync-operator" });
  assert.equal(at(svc, "spec.ports.0.port"), 8080);
  assert.equal(find(objects, "BackrestVolSyncOperatorConfig").length, 0);
});

function labels(o: Obj): Record<string, string> {
  const l = at(o, "metadata.labels");
  return isObj(l) ? Object.fromEntries(Object.entries(l).map(([k, v]) => [k, String(v)])) : {};
}

Deno.test("chart: nameOverride names the app label, and the objects when fullnameOverride is empty", async () => {
  const named = await template(["--set", "nameOverride=bvo-x"]);
  for (const o of named) {
    assert.ok(str(o, "metadata.name").startsWith("backrest-volsync-operator"), str(o, "metadata.name"));
    assert.equal(labels(o)["app.kubernetes.io/name"], "bvo-x", `${str(o, "kind")} label`);
  }
  // The release is called "bvo", which contains the name "bvo": the release name alone, as helm create does.
  const short = await template(["--set", "nameOverride=bvo", "--set", "fullnameOverride="]);
  const deploy = one(short, "Deployment");
  assert.equal(str(deploy, "metadata.name"), "bvo");
  assert.deepEqual(at(deploy, "spec.selector.matchLabels"), { app: "bvo" });
  const other = await template(["--set", "nameOverride=ops", "--set", "fullnameOverride="]);
  assert.equal(str(one(other, "Deployment"), "metadata.name"), "bvo-ops");
  assert.equal(str(one(other, "ClusterRole"), "metadata.name"), "bvo-ops");
  const r = await helm(["template", "bvo", CHART, "--set", "nameOverride=Bad_Name"]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /nameOverride/);
});

Deno.test("chart: grants exactly what manifests/ grants", async () => {
  const chart = await template();
  const kustomize = parseObjects(await Deno.readTextFile(`${ROOT}/manifests/cluster_role.yaml`));
  assert.deepEqual(grants(list(one(chart, "ClusterRole"), "rules")), grants(list(kustomize[0], "rules")));
  const lease = parseObjects(await Deno.readTextFile(`${ROOT}/manifests/operator/leases_role.yaml`));
  assert.deepEqual(grants(list(one(chart, "Role"), "rules")), grants(list(lease[0], "rules")));
});

Deno.test("chart: more than one replica forces leader election on", async () => {
  const objects = await template(["--set", "replicaCount=2", "--set", "leaderElection.enabled=false"]);
  assert.equal(at(one(objects, "Deployment"), "spec.replicas"), 2);
  assert.equal(parsedArgs(objects, "backups").leaderElect, true);
  assert.equal(one(objects, "Role", "backrest-volsync-operator-leases").kind, "Role");

  const single = await template(["--set", "leaderElection.enabled=false"]);
  assert.equal(parsedArgs(single, "backups").leaderElect, false);
  // The repo id ledger needs Leases with or without leader election.
  assert.equal(one(single, "Role", "backrest-volsync-operator-leases").kind, "Role");
});

Deno.test("chart: watchNamespaces gives Roles in those namespaces and no ClusterRole", async () => {
  const objects = await template(["--set", "watchNamespaces={apps,media}"]);
  assert.equal(find(objects, "ClusterRole").length, 0);
  assert.equal(find(objects, "ClusterRoleBinding").length, 0);
  const clusterWide = grants(list(
    parseObjects(
      await Deno.readTextFile(`${ROOT}/manifests/cluster_role.yaml`),
    )[0],
    "rules",
  ));
  for (const ns of ["apps", "media"]) {
    const role = find(objects, "Role", "backrest-volsync-operator").find((r) =>
      str(r, "metadata.namespace") === ns
    );
    assert.ok(role, `Role in ${ns}`);
    const granted = grants(list(role, "rules"));
    assert.ok(
      granted.every((g) => clusterWide.includes(g)),
      "a watched Role grants nothing beyond the ClusterRole",
    );
    assert.ok(granted.includes("|secrets|get"));
    assert.ok(!granted.some((g) => g.includes("backrestvolsyncoperatorconfigs")));
    const binding = find(objects, "RoleBinding", "backrest-volsync-operator").find((r) =>
      str(r, "metadata.namespace") === ns
    );
    assert.equal(str(binding, "subjects.0.namespace"), "backups");
  }
  const config = one(objects, "Role", "backrest-volsync-operator-config");
  assert.equal(str(config, "metadata.namespace"), "backups");
  assert.ok(
    grants(list(config, "rules")).includes("backrest.garethgeorge.com|backrestvolsyncoperatorconfigs|watch"),
  );
  assert.deepEqual(parsedArgs(objects, "backups").namespaces, ["apps", "media"]);
});

Deno.test("chart: operatorConfig.create renders an OperatorConfig the way the prototype did", async () => {
  const objects = await template([
    "--set",
    "operatorConfig.create=true",
    "--set",
    "operatorConfig.defaultBackrest.url=http://backrest.backups.svc:9898",
    "--set",
    "operatorConfig.defaultRepo.autoUnlock=true",
  ]);
  const oc = one(objects, "BackrestVolSyncOperatorConfig");
  assert.deepEqual(oc.spec, {
    paused: false,
    defaultBackrest: { url: "http://backrest.backups.svc:9898" },
    bindingGeneration: { policy: "Annotated", defaultRepo: { autoUnlock: true } },
  });
  assert.equal(str(oc, "metadata.name"), "backrest-volsync-operator");
  assert.equal(str(oc, "metadata.namespace"), "backups");
});

Deno.test("chart: a values file with every key of the prototype's chart still renders", async () => {
  const dir = await Deno.makeTempDir({ prefix: "bvo-values-" });
  try {
    await Deno.writeTextFile(`${dir}/values.yaml`, PROTOTYPE_VALUES);
    const objects = await template(["-f", `${dir}/values.yaml`]);
    const deploy = one(objects, "Deployment", "my-operator");
    assert.equal(labels(deploy)["app.kubernetes.io/name"], "my-name");
    assert.equal(str(deploy, "spec.template.spec.serviceAccountName"), "my-sa");
    assert.equal(
      str(deploy, "spec.template.spec.containers.0.image"),
      "ghcr.io/example/backrest-volsync-operator:v0.3.0",
    );
    assert.deepEqual(list(deploy, "spec.template.spec.imagePullSecrets"), [{ name: "ghcr-pull" }]);
    const opts = parsedArgs(objects, "backups");
    assert.equal(opts.metricsBindAddress, ":9090");
    assert.equal(opts.healthProbeBindAddress, ":9091");
    assert.equal(opts.operatorConfigName, "my-config");
    const oc = one(objects, "BackrestVolSyncOperatorConfig", "my-config");
    assert.deepEqual(oc.spec, {
      paused: true,
      defaultBackrest: { url: "http://backrest.backups.svc:9898", authRef: { name: "backrest-auth" } },
      bindingGeneration: {
        policy: "All",
        kinds: ["ReplicationSource"],
        defaultRepo: {
          autoUnlock: true,
          autoInitialize: true,
          triggerTasksOnSnapshot: true,
          extraFlags: ["--no-lock"],
          envAllowlist: ["HTTPS_PROXY"],
        },
      },
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("chart: values.schema.json rejects bad values", async (t) => {
  const cases: [string, string[], RegExp][] = [
    ["a string replica count", ["--set", "replicaCount=two"], /replicaCount/],
    ["an unknown log level", ["--set", "logLevel=verbose"], /logLevel/],
    ["an unknown policy", ["--set", "operatorConfig.bindingGeneration=Sometimes"], /bindingGeneration/],
    ["a namespace that is not a DNS label", ["--set", "watchNamespaces={Bad_NS}"], /watchNamespaces/],
    ["a misspelled top-level key", ["--set", "replicas=2"], /replicas/],
    [
      "an unknown VolSync kind",
      ["--set", "operatorConfig.bindingGenerationKinds={Pod}"],
      /bindingGenerationKinds/,
    ],
    ["a bad bind address", ["--set", "metrics.bindAddress=8080"], /bindAddress/],
  ];
  for (const [name, args, pattern] of cases) {
    await t.step(name, async () => {
      const r = await helm(["template", "bvo", CHART, ...args]);
      assert.notEqual(r.code, 0, `helm template accepted ${args.join(" ")}`);
      assert.match(r.stderr, /values don't meet the specifications of the schema/);
      assert.match(r.stderr, pattern);
    });
  }
});

function isEmptyDir(volumes: unknown[], name: string): boolean {
  return volumes.some((v) => str(v, "name") === name && at(v, "emptyDir") !== undefined);
}

/** A name no other test uses, for cluster-scoped objects (ClusterRoles are shared by every test). */
function unique(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}${Math.floor(Math.random() * 1296).toString(36)}`;
}

Deno.test("chart: the real apiserver accepts every rendered object (strict field validation)", async (t) => {
  const cp = await controlPlane();
  const ns = await cp.namespace("chart-dry");
  const watched = await cp.namespace("chart-dry-w");
  const crds = parseObjects(
    (await Promise.all(
      [...Deno.readDirSync(`${CHART}/crds`)].map((e) => Deno.readTextFile(`${CHART}/crds/${e.name}`)),
    )).join("\n---\n"),
  );
  // The CRDs first, for real (tolerating other tests' copies), so OperatorConfigs can be validated.
  await cp.apply(crds.map((c) => JSON.stringify(c)).join("\n---\n"));
  const scenarios: [string, string[]][] = [
    ["default values", []],
    ["two replicas", ["--set", "replicaCount=2"]],
    ["watchNamespaces", ["--set", `watchNamespaces={${watched}}`]],
    ["operatorConfig.create", [
      "--set",
      "operatorConfig.create=true",
      "--set",
      "operatorConfig.defaultBackrest.url=http://backrest.backups.svc:9898",
      "--set",
      "operatorConfig.bindingGenerationKinds={ReplicationSource}",
      "--set",
      "operatorConfig.defaultRepo.autoUnlock=true",
      "--set",
      "operatorConfig.resyncPeriod=5m",
    ]],
  ];
  for (const [name, args] of scenarios) {
    await t.step(name, async () => {
      const objects = await template(["--set", `fullnameOverride=${unique("bvo-dry")}`, ...args], ns);
      await serverApplyAll(cp, objects, { dryRun: true });
    });
  }
  await t.step("the server does reject an OperatorConfig with an unknown field", async () => {
    const oc = one(
      await template(["--set", "operatorConfig.create=true"], ns),
      "BackrestVolSyncOperatorConfig",
    );
    const spec = oc.spec;
    assert.ok(isObj(spec));
    spec.bindingGenerationPolicy = "All";
    const r = await serverApply(cp, oc, { dryRun: true });
    assert.ok(r.status >= 400, `HTTP ${r.status}: ${r.body}`);
    assert.match(r.body, /bindingGenerationPolicy/);
  });
});

Deno.test("chart: helm install onto the real apiserver", async (t) => {
  const cp = await controlPlane();
  const kube = ["--kubeconfig", cp.kubeconfigPath];

  await t.step("cluster-wide, two replicas, with an OperatorConfig", async () => {
    const ns = unique("chart-install");
    const fullname = unique("bvo");
    const out = ok(
      "helm install",
      await helm([
        "install",
        "bvo",
        CHART,
        ...kube,
        "-n",
        ns,
        "--create-namespace",
        "--set",
        `fullnameOverride=${fullname}`,
        "--set",
        "replicaCount=2",
        "--set",
        "operatorConfig.create=true",
        "--set",
        "operatorConfig.defaultBackrest.url=http://backrest.backups.svc:9898",
        "--set",
        "operatorConfig.defaultRepo.autoUnlock=true",
      ]),
    );
    assert.match(out, /STATUS: deployed/);
    assert.match(out, /Leader election: true/);
    assert.match(
      out,
      /Auto-binding: OperatorConfig backrest-volsync-operator was created with policy Annotated/,
    );
    const deploy = await cp.json("GET", `/apis/apps/v1/namespaces/${ns}/deployments/${fullname}`);
    assert.equal(at(deploy, "spec.replicas"), 2);
    const oc = await cp.json(
      "GET",
      `/apis/backrest.garethgeorge.com/v1alpha1/namespaces/${ns}/backrestvolsyncoperatorconfigs/backrest-volsync-operator`,
    );
    assert.equal(str(oc, "spec.bindingGeneration.policy"), "Annotated");
    await cp.json("GET", `/apis/rbac.authorization.k8s.io/v1/clusterroles/${fullname}`);
    const sa = `system:serviceaccount:${ns}:${fullname}`;
    assert.ok(await can(cp, sa, { verb: "list", group: "", resource: "secrets" }));
    // Secrets are created only in the release namespace (the status hash key), nowhere else.
    assert.ok(await can(cp, sa, { verb: "create", group: "", resource: "secrets", namespace: ns }));
    assert.ok(!(await can(cp, sa, { verb: "create", group: "", resource: "secrets", namespace: "default" })));
    assert.ok(!(await can(cp, sa, { verb: "update", group: "", resource: "secrets", namespace: ns })));
    assert.ok(
      await can(cp, sa, { verb: "update", group: "coordination.k8s.io", resource: "leases", namespace: ns }),
    );
    assert.ok(
      !(await can(cp, sa, {
        verb: "update",
        group: "coordination.k8s.io",
        resource: "leases",
        namespace: "default",
      })),
    );
    ok("helm uninstall", await helm(["uninstall", "bvo", ...kube, "-n", ns, "--wait"]));
    const gone = await cp.api("GET", `/apis/rbac.authorization.k8s.io/v1/clusterroles/${fullname}`);
    await gone.body?.cancel();
    assert.equal(gone.status, 404);
  });

  await t.step("confined to watched namespaces", async () => {
    const ns = await cp.namespace("chart-confined");
    const watched = await cp.namespace("chart-watched");
    const other = await cp.namespace("chart-other");
    const fullname = unique("bvo");
    ok(
      "helm install",
      await helm([
        "install",
        "bvo",
        CHART,
        ...kube,
        "-n",
        ns,
        "--set",
        `fullnameOverride=${fullname}`,
        "--set",
        `watchNamespaces={${watched}}`,
      ]),
    );
    const sa = `system:serviceaccount:${ns}:${fullname}`;
    assert.ok(await can(cp, sa, { verb: "watch", group: "", resource: "secrets", namespace: watched }));
    assert.ok(!(await can(cp, sa, { verb: "get", group: "", resource: "secrets", namespace: other })));
    assert.ok(!(await can(cp, sa, { verb: "list", group: "", resource: "secrets" })), "no cluster-wide read");
    assert.ok(
      await can(cp, sa, {
        verb: "watch",
        group: "backrest.garethgeorge.com",
        resource: "backrestvolsyncoperatorconfigs",
        namespace: ns,
      }),
    );
    const deploy = await cp.json("GET", `/apis/apps/v1/namespaces/${ns}/deployments/${fullname}`);
    assert.ok(list(deploy, "spec.template.spec.containers.0.args").includes(`--namespace=${watched}`));
    ok("helm uninstall", await helm(["uninstall", "bvo", ...kube, "-n", ns, "--wait"]));
  });
});
