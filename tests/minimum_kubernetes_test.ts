/**
 * The oldest Kubernetes the project supports (Chart.yaml's kubeVersion, the README's minimum), on the real
 * kube-apiserver of that release (KUBE_MIN_VERSION in tests/peers/build.sh): the CRDs are accepted (every
 * CEL rule compiles within that release's cost budget) and their rules hold, the chart installs (its
 * kubeVersion admits the server), and the operator the chart installed, run as its pod's container would
 * be, brings a Binding to Ready on the real Backrest.
 */
import assert from "node:assert/strict";
import { startBackrest } from "./harness/backrest.ts";
import { oldestControlPlane } from "./harness/control_plane.ts";
import { BINDINGS, operatorConfigSpec } from "./harness/operator.ts";
import { forbiddenLines, permissionErrors } from "./harness/operator_process.ts";
import { peer } from "./harness/peers.ts";
import { podTemplate, runPodAsProcess } from "./harness/pod.ts";
import { freePort } from "./harness/process.ts";
import { applySampleBinding } from "./harness/scenario.ts";
import { at, CHART, helmInstall, parseObjects, ROOT, str } from "./packaging_support.ts";

Deno.test("minimum Kubernetes: the CRDs, the chart and a Binding to Ready on the oldest supported apiserver", async (t) => {
  const minimum = await peer("kube-apiserver-min");
  const kubeVersion = str(parseObjects(await Deno.readTextFile(`${CHART}/Chart.yaml`))[0], "kubeVersion");
  await t.step("the peer is the release Chart.yaml's kubeVersion names", () => {
    const [, major, minor] = /^v(\d+)\.(\d+)\./.exec(minimum.version) ?? [];
    assert.equal(kubeVersion, `>=${major}.${minor}.0-0`);
  });
  const cp = await oldestControlPlane();
  const version = await cp.json("GET", "/version");
  assert.equal(str(version, "gitVersion"), minimum.version);

  await t.step("the CRDs are accepted and Established", async () => {
    for (const e of [...Deno.readDirSync(`${ROOT}/manifests/crds`)].filter((e) => e.name.endsWith(".yaml"))) {
      await cp.apply(await Deno.readTextFile(`${ROOT}/manifests/crds/${e.name}`));
    }
  });

  const ns = await cp.namespace("min");
  const [metricsPort, probePort] = [freePort(), freePort()];
  await t.step("the chart installs: its kubeVersion admits the server", async () => {
    const out = await helmInstall(cp.kubeconfigPath, ns, {
      "metrics.port": metricsPort,
      "healthProbe.port": probePort,
    });
    assert.match(out, /STATUS: deployed/);
  });

  await t.step(
    "the CRDs' CEL rules run: a URL with a query is refused, the sample Binding is not",
    async () => {
      const sample = parseObjects(await Deno.readTextFile(`${ROOT}/manifests/samples/binding.yaml`))[0]!;
      const collection = `${BINDINGS}/namespaces/${ns}/backrestvolsyncbindings`;
      const bad = structuredClone(sample);
      (at(bad, "spec.backrest") as Record<string, unknown>).url = "http://backrest.backups.svc:9898/?x=1";
      (bad.metadata as Record<string, unknown>).namespace = ns;
      const refused = await cp.api("POST", collection, bad);
      const body = await refused.text();
      assert.equal(refused.status, 422, body);
      assert.match(body, /spec\.backrest\.url/);
      (sample.metadata as Record<string, unknown>).namespace = ns;
      await cp.json("POST", `${collection}?dryRun=All`, sample);
    },
  );

  await t.step(
    "the operator the chart installed brings a Binding to Ready on the real Backrest",
    async () => {
      const backrest = await startBackrest();
      const app = await cp.namespace("min-app");
      await cp.json("POST", `${BINDINGS}/namespaces/${ns}/backrestvolsyncoperatorconfigs`, {
        apiVersion: "backrest.garethgeorge.com/v1alpha1",
        kind: "BackrestVolSyncOperatorConfig",
        metadata: { name: "backrest-volsync-operator" },
        spec: operatorConfigSpec(),
      });
      const deploy = await cp.json(
        "GET",
        `/apis/apps/v1/namespaces/${ns}/deployments/backrest-volsync-operator`,
      );
      const pod = await runPodAsProcess(cp, podTemplate(deploy), {
        name: "backrest-volsync-operator-min",
        namespace: ns,
        serviceAccount: "backrest-volsync-operator",
      });
      try {
        await applySampleBinding(backrest, app, { cp, timeoutMs: 90_000, proc: pod.process.proc });
        assert.deepEqual(forbiddenLines(pod.process.logs()), []);
        assert.deepEqual(permissionErrors(pod.process.logs()), []);
      } finally {
        const status = await pod.process.stop();
        assert.equal(status.code, 0, pod.process.proc.tail());
        await backrest.stop();
      }
    },
  );
});
