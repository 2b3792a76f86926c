/**
 * The image, proven as a container (tests/harness/container.ts): an OCI image with the Dockerfile's
 * runtime contract, run by runc as the chart's pod (uid 65532, read-only root, no capabilities, the token
 * where the kubelet mounts it, the chart's memory limit and CPU share) against the test control plane. It
 * becomes Ready, reconciles a Binding on the real Backrest, cannot write its root filesystem, has no
 * shell, and exits cleanly on SIGTERM before the pod's grace period ends. Skipped, saying why, where runc
 * cannot run (it needs root); `.ci/run` installs runc.
 */
import assert from "node:assert/strict";
import { startBackrest } from "./harness/backrest.ts";
import {
  buildImage,
  bytes,
  containerSupport,
  dockerfileContract,
  runPod,
  waitReady,
} from "./harness/container.ts";
import { cluster, putOperatorConfig } from "./harness/operator.ts";
import { forbiddenLines, imageEnv, permissionErrors } from "./harness/operator_process.ts";
import { podTemplate } from "./harness/pod.ts";
import { freePort } from "./harness/process.ts";
import { applySampleBinding } from "./harness/scenario.ts";
import { at, CHART, helmInstall, parseObjects, str } from "./packaging_support.ts";

const LEASE = "backrest-volsync-operator.backrest.garethgeorge.com";
const unsupported = await containerSupport();

Deno.test({
  name: unsupported
    ? `container: the image as the chart's pod under runc (skipped: ${unsupported})`
    : "container: the image as the chart's pod under runc: Ready, a Binding applied, read-only root, no shell, a clean SIGTERM",
  ignore: unsupported !== null,
  fn: async (t) => {
    const chart = parseObjects(await Deno.readTextFile(`${CHART}/Chart.yaml`))[0];
    const repository = "backrest-volsync-operator-test";
    const tag = str(chart, "appVersion");
    const image = await buildImage(`${repository}:${tag}`);

    await t.step("the image carries the Dockerfile's runtime contract, and no shell", () => {
      const contract = dockerfileContract();
      assert.equal(image.config.User, contract.user);
      assert.deepEqual(Object.keys(image.config.ExposedPorts).sort(), contract.exposed.sort());
      for (const [k, v] of Object.entries(imageEnv())) assert.ok(image.config.Env.includes(`${k}=${v}`), k);
      for (const shell of ["/bin/sh", "/usr/bin/sh", "/bin/bash", "/usr/bin/bash", "/bin/busybox"]) {
        assert.ok(!image.files.includes(shell), `${shell} is in the image`);
      }
      assert.ok(image.files.includes("/usr/lib/x86_64-linux-gnu/libc.so.6") || Deno.build.arch !== "x86_64");
      assert.ok(image.files.some((f) => /\/libgcc_s\.so\.1$/.test(f)), "libgcc");
    });

    const cp = await cluster();
    const ns = await cp.namespace("container");
    await putOperatorConfig(ns);
    const [metricsPort, probePort] = [freePort(), freePort()];
    await helmInstall(cp.kubeconfigPath, ns, {
      fullnameOverride: `bvo-${ns}`,
      "image.repository": repository,
      "image.tag": tag,
      "metrics.port": metricsPort,
      "healthProbe.port": probePort,
    });
    const deploy = await cp.json("GET", `/apis/apps/v1/namespaces/${ns}/deployments/bvo-${ns}`);
    const template = podTemplate(deploy);
    const backrest = await startBackrest();
    const container = await runPod(cp, image, template, {
      name: "bvo-container-0",
      namespace: ns,
      serviceAccount: `bvo-${ns}`,
    });
    let terminated = false;
    try {
      await t.step(
        "it becomes Ready (the chart's readiness probe) as the chart's ServiceAccount",
        async () => {
          await waitReady(container, template);
          const res = await fetch(
            `http://127.0.0.1:${template.container.livenessPort}${template.container.livenessPath}`,
          );
          await res.body?.cancel();
          assert.equal(res.status, 200);
          assert.match(container.logs(), /"msg":"Starting backrest-volsync-operator"/);
          assert.match(
            container.logs(),
            new RegExp(`"server":"https://127\\.0\\.0\\.1:${new URL(cp.server).port}"`),
          );
        },
      );

      await t.step("it runs as uid and gid 65532 under the chart's memory limit", async () => {
        const pid = await container.pid();
        const status = await Deno.readTextFile(`/proc/${pid}/status`);
        assert.match(status, /^Uid:\s+65532\s+65532\s+65532\s+65532$/m);
        assert.match(status, /^Gid:\s+65532\s+65532\s+65532\s+65532$/m);
        assert.match(status, /^CapEff:\s+0+$/m);
        assert.match(status, /^NoNewPrivs:\s+1$/m);
        const limit = str(deploy, "spec.template.spec.containers.0.resources.limits.memory");
        const cgroup = await container.memoryCgroup();
        assert.equal(
          Number((await Deno.readTextFile(`${cgroup}/memory.limit_in_bytes`)).trim()),
          bytes(limit),
        );
      });

      await t.step("it reconciles a Binding on the real Backrest", async () => {
        const app = await cp.namespace("container-app");
        await applySampleBinding(backrest, app);
      });

      await t.step("it holds the leader Lease in its namespace", async () => {
        const lease = await cp.json("GET", `/apis/coordination.k8s.io/v1/namespaces/${ns}/leases/${LEASE}`);
        assert.match(str(lease, "spec.holderIdentity"), /^bvo-container-0_[0-9a-f-]{36}$/);
      });

      await t.step("its root filesystem cannot be written; /tmp can", async () => {
        const write = (path: string) =>
          container.exec(["/usr/bin/deno", "eval", `Deno.writeTextFileSync(${JSON.stringify(path)}, "x")`]);
        for (const path of ["/app/x", "/x", "/usr/bin/x", "/home/nonroot/x"]) {
          const r = await write(path);
          assert.notEqual(r.code, 0, `${path} was written`);
          assert.match(r.stderr, /Read-only file system|os error 30/, path);
        }
        const tmp = await write("/tmp/x");
        assert.equal(tmp.code, 0, tmp.stderr);
      });

      await t.step("it has no shell", async () => {
        for (const shell of ["/bin/sh", "/bin/bash"]) {
          const r = await container.exec([shell, "-c", "true"]);
          assert.notEqual(r.code, 0, `${shell} ran`);
          assert.match(r.stderr, /no such file or directory/, shell);
        }
      });

      await t.step(
        "SIGTERM: it exits 0 before the pod's grace period ends, and releases the Lease",
        async () => {
          const grace = at(deploy, "spec.template.spec.terminationGracePeriodSeconds");
          assert.equal(grace, 30);
          const status = await container.terminate();
          terminated = true;
          assert.equal(status.killed, false, "it needed the SIGKILL after the grace period");
          assert.equal(status.code, 0, container.proc.tail());
          assert.match(container.logs(), /"msg":"Shutting down"/);
          const lease = await cp.json("GET", `/apis/coordination.k8s.io/v1/namespaces/${ns}/leases/${LEASE}`);
          assert.ok(
            str(lease, "spec.holderIdentity") === "" || at(lease, "spec.leaseDurationSeconds") === 1,
            JSON.stringify(at(lease, "spec")),
          );
        },
      );

      await t.step("nothing was refused: no permission error, no 403", () => {
        assert.deepEqual(permissionErrors(container.logs()), []);
        assert.deepEqual(forbiddenLines(container.logs()), []);
      });
    } finally {
      if (!terminated) await container.terminate();
      await backrest.stop();
    }
  },
});
