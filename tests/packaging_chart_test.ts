/**
 * The Helm chart against the real tools: `helm lint --strict`, `helm template` for the value sets users
 * reach for, the values schema, the prototype's values keys, CRDs equal to manifests/crds/, the same RBAC
 * as manifests/, and `helm install` onto the harness apiserver (every object also validated strictly by
 * the server).
 */
import assert from "node:assert/strict";
import { assertAccess } from "./harness/access.ts";
import { controlPlane } from "./harness/control_plane.ts";
import { authFromSecret } from "../lib/backrest/auth.ts";
import { chartCrdProblems } from "./tools/sync_chart_crds.ts";
import { peer } from "./harness/peers.ts";
import { cluster } from "./harness/operator.ts";
import { forbiddenLines, permissionErrors } from "./harness/operator_process.ts";
import { podTemplate, runPodAsProcess } from "./harness/pod.ts";
import { freePort } from "./harness/process.ts";
import {
  assertDefaultOperator,
  at,
  CHART,
  find,
  grants,
  helm,
  helmInstall,
  helmTemplate,
  helmUninstall,
  isObj,
  list,
  manifestCrdNames,
  type Obj,
  ok,
  one,
  operatorArgsOf,
  parseObjects,
  readmeShell,
  ROOT,
  run,
  serverApply,
  serverApplyAll,
  shell,
  str,
} from "./packaging_support.ts";

function template(args: string[] = [], namespace = "backups"): Promise<Obj[]> {
  return helmTemplate(["-n", namespace, ...args]);
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
  const { container: c, opts, service } = assertDefaultOperator(objects);
  assert.equal(str(c, "livenessProbe.httpGet.port"), "probes");
  assert.equal(opts.logFormat, "json");
  assert.equal(at(service, "spec.ports.0.port"), 8080);
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
  assert.equal(operatorArgsOf(objects, "backups").leaderElect, true);
  assert.equal(one(objects, "Role", "backrest-volsync-operator-leases").kind, "Role");

  const single = await template(["--set", "leaderElection.enabled=false"]);
  assert.equal(operatorArgsOf(single, "backups").leaderElect, false);
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
  assert.deepEqual(operatorArgsOf(objects, "backups").namespaces, ["apps", "media"]);
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
    const opts = operatorArgsOf(objects, "backups");
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
    ["every knob", [
      "--set",
      "replicaCount=2",
      "--set",
      "networkPolicy.enabled=true",
      "--set",
      "commonLabels.team=storage",
      "--set",
      "serviceAccount.annotations.example\\.com/role=backups",
      "--set",
      "priorityClassName=system-cluster-critical",
      "--set",
      `image.digest=sha256:${"ab".repeat(32)}`,
      "--set",
      "extraEnv[0].name=MALLOC_ARENA_MAX",
      "--set-string",
      "extraEnv[0].value=4",
      "--set",
      "extraArgs={--leader-election-namespace=ops}",
      "--set",
      "topologySpreadConstraints[0].maxSkew=1",
      "--set",
      "topologySpreadConstraints[0].topologyKey=kubernetes.io/hostname",
      "--set",
      "topologySpreadConstraints[0].whenUnsatisfiable=ScheduleAnyway",
    ]],
    ["metrics off", ["--set-string", "metrics.bindAddress=0", "--set", "networkPolicy.enabled=true"]],
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

  await t.step("cluster-wide, two replicas, with an OperatorConfig", async () => {
    const ns = unique("chart-install");
    const fullname = unique("bvo");
    const out = await helmInstall(cp.kubeconfigPath, ns, {
      fullnameOverride: fullname,
      replicaCount: 2,
      "operatorConfig.create": "true",
      "operatorConfig.defaultBackrest.url": "http://backrest.backups.svc:9898",
      "operatorConfig.defaultRepo.autoUnlock": "true",
    }, ["--create-namespace"]);
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
    await assertAccess(cp, `system:serviceaccount:${ns}:${fullname}`, [
      "may list secrets",
      // Secrets are created only in the release namespace (the status hash key), nowhere else.
      `may create secrets in ${ns}`,
      "may not create secrets in default",
      `may not update secrets in ${ns}`,
      `may update leases.coordination.k8s.io in ${ns}`,
      "may not update leases.coordination.k8s.io in default",
    ]);
    await helmUninstall(cp.kubeconfigPath, ns);
    const gone = await cp.api("GET", `/apis/rbac.authorization.k8s.io/v1/clusterroles/${fullname}`);
    await gone.body?.cancel();
    assert.equal(gone.status, 404);
  });

  await t.step("confined to watched namespaces", async () => {
    const ns = await cp.namespace("chart-confined");
    const watched = await cp.namespace("chart-watched");
    const other = await cp.namespace("chart-other");
    const fullname = unique("bvo");
    await helmInstall(cp.kubeconfigPath, ns, { fullnameOverride: fullname, watchNamespaces: `{${watched}}` });
    await assertAccess(cp, `system:serviceaccount:${ns}:${fullname}`, [
      `may watch secrets in ${watched}`,
      `may not get secrets in ${other}`,
      // No cluster-wide read.
      "may not list secrets",
      `may watch backrestvolsyncoperatorconfigs.backrest.garethgeorge.com in ${ns}`,
    ]);
    const deploy = await cp.json("GET", `/apis/apps/v1/namespaces/${ns}/deployments/${fullname}`);
    assert.ok(list(deploy, "spec.template.spec.containers.0.args").includes(`--namespace=${watched}`));
    await helmUninstall(cp.kubeconfigPath, ns);
  });
});

Deno.test("chart: the Go prototype's own values file runs this chart's image, not the prototype's", async () => {
  const objects = await template(["-f", `${ROOT}/tests/fixtures/prototype_chart_values.yaml`]);
  const deploy = one(objects, "Deployment", "backrest-volsync-operator");
  const chart = parseObjects(await Deno.readTextFile(`${CHART}/Chart.yaml`))[0];
  assert.equal(
    str(deploy, "spec.template.spec.containers.0.image"),
    `ghcr.io/backrest-volsync/backrest-volsync-operator:${str(chart, "appVersion")}`,
  );
  assert.deepEqual(at(deploy, "spec.selector.matchLabels"), { app: "backrest-volsync-operator" });
  const opts = operatorArgsOf(objects, "backups");
  assert.equal(opts.metricsBindAddress, ":8080");
  assert.equal(opts.leaderElect, true);
  // Only the prototype's own image is replaced; a pin of anyone else's stays.
  const mirror = await template([
    "--set",
    "image.repository=registry.example/jogotcha-mirror/backrest-volsync-operator",
    "--set",
    "image.tag=0.1.0",
  ]);
  assert.equal(
    str(one(mirror, "Deployment"), "spec.template.spec.containers.0.image"),
    "registry.example/jogotcha-mirror/backrest-volsync-operator:0.1.0",
  );
});

Deno.test("chart: Chart.yaml names its image, the minimum Kubernetes, an icon and Artifact Hub's annotations", async () => {
  const chart = parseObjects(await Deno.readTextFile(`${CHART}/Chart.yaml`))[0];
  assert.equal(str(chart, "kubeVersion"), ">=1.30.0-0");
  assert.match(str(chart, "icon"), /^https:\/\/.+\/docs\/icon\.svg$/);
  await Deno.stat(`${ROOT}/docs/icon.svg`);
  const annotations = at(chart, "annotations");
  assert.ok(isObj(annotations));
  assert.equal(annotations["artifacthub.io/license"], "Apache-2.0");
  const images =
    parseObjects(`list:\n${String(annotations["artifacthub.io/images"]).replace(/^/gm, "  ")}`)[0];
  const values = parseObjects(await Deno.readTextFile(`${CHART}/values.yaml`))[0];
  assert.deepEqual(list(images, "list"), [{
    name: "backrest-volsync-operator",
    image: `${str(values, "image.repository")}:${str(chart, "appVersion")}`,
  }]);
  // What helm assumes without a cluster must satisfy kubeVersion, as with helm's own release builds.
  await helmTemplate();
  const old = await helm(["template", "bvo", CHART, "--kube-version", "1.29.9"]);
  assert.notEqual(old.code, 0);
  assert.match(old.stderr, /kubeVersion: >=1\.30\.0-0 which is incompatible with Kubernetes v1\.29\.9/);
});

Deno.test("chart: the knobs operators expect, under cert-manager's names", async (t) => {
  await t.step("image.digest pins the image instead of the tag", async () => {
    const digest = `sha256:${"0123456789abcdef".repeat(4)}`;
    const objects = await template(["--set", `image.digest=${digest}`, "--set", "image.tag=9.9.9"]);
    assert.equal(
      str(one(objects, "Deployment"), "spec.template.spec.containers.0.image"),
      `ghcr.io/backrest-volsync/backrest-volsync-operator@${digest}`,
    );
  });

  await t.step("commonLabels on every object, podLabels on the pods, neither in a selector", async () => {
    const objects = await template([
      "--set",
      "commonLabels.team=storage",
      "--set",
      "podLabels.tier=ops",
      "--set",
      "replicaCount=2",
      "--set",
      "networkPolicy.enabled=true",
    ]);
    for (const o of objects) {
      assert.equal(labels(o).team, "storage", `${str(o, "kind")} ${str(o, "metadata.name")}`);
    }
    const deploy = one(objects, "Deployment");
    assert.equal(str(deploy, "spec.template.metadata.labels.tier"), "ops");
    assert.equal(str(deploy, "spec.template.metadata.labels.team"), "storage");
    assert.deepEqual(at(deploy, "spec.selector.matchLabels"), { app: "backrest-volsync-operator" });
  });

  await t.step(
    "serviceAccount.annotations and labels, priorityClassName, topologySpreadConstraints",
    async () => {
      const dir = await Deno.makeTempDir({ prefix: "bvo-values-" });
      await Deno.writeTextFile(
        `${dir}/values.yaml`,
        `serviceAccount:
  annotations: {example.com/role: backups}
  labels: {example.com/owner: ops}
priorityClassName: system-cluster-critical
topologySpreadConstraints:
  - maxSkew: 1
    topologyKey: topology.kubernetes.io/zone
    whenUnsatisfiable: ScheduleAnyway
    labelSelector: {matchLabels: {app: backrest-volsync-operator}}
`,
      );
      const objects = await template(["-f", `${dir}/values.yaml`]);
      await Deno.remove(dir, { recursive: true });
      const sa = one(objects, "ServiceAccount");
      assert.deepEqual(at(sa, "metadata.annotations"), { "example.com/role": "backups" });
      assert.equal(labels(sa)["example.com/owner"], "ops");
      const pod = at(one(objects, "Deployment"), "spec.template.spec");
      assert.equal(str(pod, "priorityClassName"), "system-cluster-critical");
      assert.equal(str(pod, "topologySpreadConstraints.0.topologyKey"), "topology.kubernetes.io/zone");
    },
  );

  await t.step("extraArgs reach the operator's flag parser, extraEnv the container", async () => {
    const objects = await template([
      "--set",
      "extraArgs={--leader-election-namespace=ops}",
      "--set",
      "extraEnv[0].name=MALLOC_ARENA_MAX",
      "--set-string",
      "extraEnv[0].value=4",
    ]);
    assert.equal(operatorArgsOf(objects, "backups").leaderElectionNamespace, "ops");
    const env = list(one(objects, "Deployment"), "spec.template.spec.containers.0.env");
    assert.deepEqual(env.at(-1), { name: "MALLOC_ARENA_MAX", value: "4" });
  });

  await t.step("a PodDisruptionBudget with more than one replica, none with one", async () => {
    assert.equal(find(await template(), "PodDisruptionBudget").length, 0);
    const two = await template(["--set", "replicaCount=2"]);
    const pdb = one(two, "PodDisruptionBudget");
    assert.equal(at(pdb, "spec.minAvailable"), 1);
    assert.deepEqual(
      at(pdb, "spec.selector.matchLabels"),
      at(one(two, "Deployment"), "spec.selector.matchLabels"),
    );
    const max = one(
      await template(["--set", "replicaCount=3", "--set", "podDisruptionBudget.maxUnavailable=1"]),
      "PodDisruptionBudget",
    );
    assert.equal(at(max, "spec.maxUnavailable"), 1);
    assert.equal(at(max, "spec.minAvailable"), undefined);
    const off = await template(["--set", "replicaCount=2", "--set", "podDisruptionBudget.enabled=false"]);
    assert.equal(find(off, "PodDisruptionBudget").length, 0);
  });

  await t.step(
    "networkPolicy: off by default; on, it selects the pods and admits the metrics and probe ports",
    async () => {
      assert.equal(find(await template(), "NetworkPolicy").length, 0);
      const objects = await template(["--set", "networkPolicy.enabled=true"]);
      const np = one(objects, "NetworkPolicy");
      assert.deepEqual(
        at(np, "spec.podSelector.matchLabels"),
        at(one(objects, "Deployment"), "spec.selector.matchLabels"),
      );
      assert.deepEqual(list(np, "spec.ingress.0.ports").map((p) => at(p, "port")), [8080, 8081]);
      assert.ok(
        list(np, "spec.egress.0.ports").some((p) => at(p, "port") === 53 && at(p, "protocol") === "UDP"),
      );
    },
  );
});

Deno.test("chart: switching metrics off removes what depends on them; probes cannot be switched off", async (t) => {
  await t.step('metrics.bindAddress "0": no metrics port, Service or NetworkPolicy port', async () => {
    const objects = await template([
      "--set-string",
      "metrics.bindAddress=0",
      "--set",
      "networkPolicy.enabled=true",
    ]);
    assert.equal(find(objects, "Service").length, 0);
    const c = at(one(objects, "Deployment"), "spec.template.spec.containers.0");
    assert.deepEqual(list(c, "ports").map((p) => str(p, "name")), ["probes"]);
    assert.equal(operatorArgsOf(objects, "backups").metricsBindAddress, "0");
    assert.deepEqual(list(one(objects, "NetworkPolicy"), "spec.ingress.0.ports").map((p) => at(p, "port")), [
      8081,
    ]);
  });
  const refused: [string, string[], RegExp][] = [
    ["a ServiceMonitor without metrics", ["--set", "metrics.serviceMonitor.enabled=true"], /serviceMonitor/],
    ["alerts without metrics", ["--set", "metrics.prometheusRule.enabled=true"], /prometheusRule/],
    ["a dashboard without metrics", ["--set", "metrics.grafanaDashboard.enabled=true"], /grafanaDashboard/],
  ];
  for (const [name, args, pattern] of refused) {
    await t.step(`the schema refuses ${name}`, async () => {
      const r = await helm(["template", "bvo", CHART, "--set-string", "metrics.bindAddress=0", ...args]);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, pattern);
      await helmTemplate(args);
    });
  }
  await t.step('the schema refuses healthProbe.bindAddress "0" (the Deployment always probes)', async () => {
    const r = await helm(["template", "bvo", CHART, "--set-string", "healthProbe.bindAddress=0"]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /healthProbe\/bindAddress/);
  });
  await t.step(
    "the schema refuses a PodDisruptionBudget with both minAvailable and maxUnavailable",
    async () => {
      const r = await helm([
        "template",
        "bvo",
        CHART,
        "--set",
        "podDisruptionBudget.minAvailable=1",
        "--set",
        "podDisruptionBudget.maxUnavailable=1",
      ]);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /podDisruptionBudget/);
    },
  );
  await t.step("the schema refuses a digest that is not sha256", async () => {
    const r = await helm(["template", "bvo", CHART, "--set", "image.digest=latest"]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /image\/digest/);
  });
});

Deno.test("chart: kube-score's critical findings on the default render are fixed or answered in values.yaml", async () => {
  const bin = (await peer("kube-score")).path;
  const dir = await Deno.makeTempDir({ prefix: "bvo-kube-score-" });
  try {
    await Deno.writeTextFile(
      `${dir}/render.yaml`,
      ok("helm template", await helm(["template", "bvo", CHART, "-n", "backups"])),
    );
    const r = await run(bin, ["score", "--output-format", "json", `${dir}/render.yaml`]);
    const report: unknown = JSON.parse(r.stdout);
    assert.ok(Array.isArray(report) && report.length > 0, r.stderr);
    const critical = new Set<string>();
    let scored = 0;
    for (const obj of report) {
      for (const c of list(obj, "checks")) {
        scored++;
        if (at(c, "grade") === 1 && at(c, "skipped") !== true) critical.add(str(c, "check.id"));
      }
    }
    assert.ok(scored > 10, "kube-score scored the Deployment and the Service");
    const values = await Deno.readTextFile(`${CHART}/values.yaml`);
    const answered = [...values.matchAll(/kube-score: ([a-z-]+)\./g)].map((m) => m[1]!);
    // What is left is exactly what values.yaml answers, each with its reason; ephemeral storage is fixed.
    assert.deepEqual([...critical].sort(), answered.sort());
    assert.ok(!critical.has("container-ephemeral-storage-request-and-limit"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** A stand-in for the Go prototype's chart as a release of it left the cluster: its names and its image. */
async function prototypeChart(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "bvo-prototype-chart-" });
  await Deno.mkdir(`${dir}/templates`);
  await Deno.writeTextFile(
    `${dir}/Chart.yaml`,
    'apiVersion: v2\nname: backrest-volsync-operator\nversion: 0.2.1\nappVersion: "0.2.1"\n',
  );
  await Deno.writeTextFile(
    `${dir}/templates/objects.yaml`,
    `apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ .Values.fullnameOverride }}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Values.fullnameOverride }}
spec:
  replicas: {{ .Values.replicaCount }}
  selector:
    matchLabels:
      app: {{ .Values.fullnameOverride }}
  template:
    metadata:
      labels:
        app: {{ .Values.fullnameOverride }}
    spec:
      serviceAccountName: {{ .Values.fullnameOverride }}
      containers:
        - name: manager
          image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"
          args: ["--leader-elect=true", "--operator-config-name={{ .Values.operatorConfig.name }}"]
`,
  );
  return dir;
}

Deno.test("chart: helm upgrade of a Go prototype release with the prototype chart's values gives a Ready operator", async (t) => {
  const cp = await cluster();
  const ns = await cp.namespace("chart-upgrade");
  const kube = ["--kubeconfig", cp.kubeconfigPath, "-n", ns];
  const values = `${ROOT}/tests/fixtures/prototype_chart_values.yaml`;
  const standin = await prototypeChart();
  ok("helm install (prototype)", await helm(["install", "bvo", standin, ...kube, "-f", values]));
  await Deno.remove(standin, { recursive: true });
  const name = "backrest-volsync-operator";
  const deploymentPath = `/apis/apps/v1/namespaces/${ns}/deployments/${name}`;
  assert.equal(
    str(await cp.json("GET", deploymentPath), "spec.template.spec.containers.0.image"),
    "ghcr.io/jogotcha/backrest-volsync-operator:v0.1.1",
  );

  // The pod shares this machine's network with other tests: its two ports are free ones, not 8080/8081.
  const [metricsPort, probePort] = [freePort(), freePort()];
  const out = ok(
    "helm upgrade",
    await helm([
      "upgrade",
      "bvo",
      CHART,
      ...kube,
      "-f",
      values,
      "--set",
      `metrics.port=${metricsPort}`,
      "--set",
      `healthProbe.port=${probePort}`,
    ]),
  );
  await t.step("NOTES say the prototype's image was replaced, and by which", () => {
    assert.match(out, /STATUS: deployed/);
    assert.match(
      out,
      /Image: your values name the Go prototype's image \(ghcr\.io\/jogotcha\/backrest-volsync-operator:v0\.1\.1\),\nwhich cannot run this chart; ghcr\.io\/backrest-volsync\/backrest-volsync-operator:\d+\.\d+\.\d+ runs instead\./,
    );
  });

  const deploy = await cp.json("GET", deploymentPath);
  const pod = podTemplate(deploy);
  await t.step("the upgraded Deployment runs this chart's image with its flags, in place", () => {
    assert.match(
      pod.container.image,
      /^ghcr\.io\/backrest-volsync\/backrest-volsync-operator:\d+\.\d+\.\d+$/,
    );
    assert.deepEqual(at(deploy, "spec.selector.matchLabels"), { app: name });
    assert.equal(pod.container.readinessPort, probePort);
  });

  await t.step(
    "its container, run as the kubelet would, becomes Ready as the chart's ServiceAccount",
    async () => {
      const running = await runPodAsProcess(cp, pod, {
        name: `${name}-7d9f-x1`,
        namespace: ns,
        serviceAccount: name,
      });
      try {
        assert.equal(await running.ready(), true);
        const logs = running.process.logs();
        assert.deepEqual(forbiddenLines(logs), []);
        assert.deepEqual(permissionErrors(logs), []);
        assert.match(logs, /"msg":"Starting backrest-volsync-operator"/);
      } finally {
        const status = await running.process.stop();
        assert.equal(status.code, 0, running.process.proc.tail());
      }
    },
  );
  await helmUninstall(cp.kubeconfigPath, ns);
});

Deno.test("chart: the README's Helm commands, from install to uninstall, on the real apiserver", async (t) => {
  const cp = await cluster();
  const env = { KUBECONFIG: cp.kubeconfigPath };
  const oci = "oci://ghcr.io/backrest-volsync/charts/backrest-volsync-operator";
  const version = str(parseObjects(await Deno.readTextFile(`${CHART}/Chart.yaml`))[0], "version");
  // The registry is out of reach here: the chart it would serve is this one.
  const local = (block: string) => block.replaceAll(oci, CHART).replaceAll("X.Y.Z", version);
  const deployment = "/apis/apps/v1/namespaces/backups/deployments/backrest-volsync-operator";

  await t.step("install: the one line from a release", async () => {
    const block = (await readmeShell("One line, from a release")).find((b) => b.startsWith("helm install"));
    assert.ok(block?.includes(oci));
    assert.match(ok("README helm install", await shell(local(block!), env)), /STATUS: deployed/);
  });

  await t.step("configure: the auth Secret is one the operator reads as Backrest credentials", async () => {
    const [block] = await readmeShell("Backrest's address and credentials");
    ok("README create secret", await shell(block!, env));
    const secret = await cp.json("GET", "/api/v1/namespaces/backups/secrets/backrest-auth");
    const data = at(secret, "data");
    assert.ok(isObj(data));
    const auth = authFromSecret(
      Object.fromEntries(
        Object.entries(data).map(([k, v]) => [k, Uint8Array.from(atob(String(v)), (c) => c.charCodeAt(0))]),
      ),
    );
    assert.equal(auth.kind, "basic");
  });

  await t.step("upgrade: the chart's CRDs first, then the release with its values kept", async () => {
    const [, block] = await readmeShell("Upgrade");
    assert.ok(block?.startsWith("helm show crds"));
    const out = ok("README upgrade", await shell(local(block!), env));
    // Both CRDs: helm show crds joins the files as they are, so each file starts its own YAML document.
    for (const name of await manifestCrdNames()) {
      assert.ok(out.includes(`customresourcedefinition.apiextensions.k8s.io/${name} `), `${name} applied`);
    }
    assert.match(out, /STATUS: deployed\nREVISION: 2/);
  });

  await t.step("troubleshoot: debug logs with Helm", async () => {
    const block = (await readmeShell("Debug logs")).find((b) => b.startsWith("helm upgrade"));
    ok("README debug logs", await shell(local(block!), env));
    const live = await cp.json("GET", deployment) as Obj;
    assert.equal(operatorArgsOf([{ ...live, kind: "Deployment" }], "backups").logLevel, "debug");
  });

  await t.step("uninstall with Helm: the operator goes, the namespace and the CRDs stay", async () => {
    const [block] = await readmeShell("Uninstall");
    assert.equal(block, "helm uninstall backrest-volsync-operator --namespace backups\n");
    ok("README helm uninstall", await shell(block, env));
    const status = async (path: string) => {
      const res = await cp.api("GET", path);
      await res.body?.cancel();
      return res.status;
    };
    assert.equal(await status(deployment), 404);
    assert.equal(
      await status("/apis/rbac.authorization.k8s.io/v1/clusterroles/backrest-volsync-operator"),
      404,
    );
    assert.equal(await status("/api/v1/namespaces/backups"), 200);
    assert.equal(
      await status(
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/backrestvolsyncbindings.backrest.garethgeorge.com",
      ),
      200,
    );
  });
});
