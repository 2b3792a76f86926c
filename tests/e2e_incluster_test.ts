/**
 * The operator as a pod runs it: a separate `deno run` process with exactly the compile task's permission
 * set and no other flag, in in-cluster mode (service-account files at the standard path, the
 * `KUBERNETES_SERVICE_*` variables), authenticated as a ServiceAccount bound only to the shipped
 * ClusterRole and Leases Role. A Binding becomes Ready on the real Backrest, the probes and
 * metrics answer, the Lease is taken and released on SIGTERM, and nothing outside the permission set is
 * touched. The only test file that writes /var/run/secrets/kubernetes.io/serviceaccount.
 */
import assert from "node:assert/strict";
import { applySampleBinding } from "./harness/scenario.ts";
import { startBackrest } from "./harness/backrest.ts";
import { BINDINGS, cluster, ensureOperatorConfig } from "./harness/operator.ts";
import {
  auditViolations,
  forbiddenLines,
  installServiceAccount,
  operatorServiceAccount,
  permissionErrors,
  startOperatorProcess,
  taskFlags,
} from "./harness/operator_process.ts";

const LEASE = "backrest-volsync-operator.backrest.garethgeorge.com";

interface Lease {
  spec?: { holderIdentity?: string; leaseDurationSeconds?: number };
}

Deno.test("e2e in-cluster: the compile task's permission set and the shipped RBAC run a Binding to Ready", async (t) => {
  const run = taskFlags("run");
  await t.step("the run task carries exactly the compile task's permission and V8 flags", () => {
    const runtime = /^(-P|--permission-set|--allow-|--deny-|--ignore-env|-A$|--v8-flags)/;
    const compile = taskFlags("compile").filter((f) => runtime.test(f));
    assert.deepEqual(run, ["-P=operator", "--v8-flags=--max-semi-space-size=1,--memory-saver-mode"]);
    assert.deepEqual(compile, run);
    const local = ["--allow-read", "--allow-env", "--allow-run"];
    assert.deepEqual(taskFlags("start").filter((f) => !local.includes(f)), run, "start = run + local access");
  });

  const cp = await cluster();
  const backrest = await startBackrest();
  const opNs = await cp.namespace("op");
  const appNs = await cp.namespace("app");
  const sa = await operatorServiceAccount(cp, { namespace: opNs, leaseNamespace: opNs });
  const restore = await installServiceAccount({ token: sa.token, ca: cp.ca, namespace: opNs });
  try {
    const port = new URL(cp.server).port;
    await ensureOperatorConfig(opNs);
    const op = await startOperatorProcess({
      name: "operator-incluster",
      flags: run,
      args: ["--log-level=debug"],
      env: {
        KUBERNETES_SERVICE_HOST: "127.0.0.1",
        KUBERNETES_SERVICE_PORT: port,
        POD_NAME: "bvo-e2e-pod",
        POD_NAMESPACE: opNs,
      },
    });
    // deno-lint-ignore no-console -- the measured startup belongs in the test output
    console.error(`operator process ready (/readyz 200) in ${Math.round(op.startupMs)} ms`);
    let stopped = false;
    try {
      await t.step("it says it runs in-cluster against the configured apiserver", () => {
        assert.match(op.logs(), new RegExp(`"server":"https://127\\.0\\.0\\.1:${port}"`));
      });

      await t.step(
        "a Binding with a VolSync ReplicationSource and its restic Secret becomes Ready",
        async () => {
          await applySampleBinding(backrest, appNs);
          const b = await cp.json("GET", `${BINDINGS}/namespaces/${appNs}/backrestvolsyncbindings/app`) as {
            status: { conditions: { type: string; status: string }[] };
          };
          assert.equal(b.status.conditions.find((c) => c.type === "Applied")?.status, "True");
        },
      );

      await t.step("/healthz, /readyz and /metrics answer on the configured addresses", async () => {
        for (const url of [`${op.probeUrl}/healthz`, `${op.probeUrl}/readyz`]) {
          const res = await fetch(url);
          await res.body?.cancel();
          assert.equal(res.status, 200, url);
        }
        const res = await fetch(`${op.metricsUrl}/metrics`);
        const text = await res.text();
        assert.equal(res.status, 200);
        assert.match(text, /^# (HELP|TYPE) /m);
        assert.match(text, /backrestvolsyncbinding/, "controller metrics carry the controller name");
      });

      await t.step("leader election holds the Lease in the operator's namespace", async () => {
        const lease = await cp.json(
          "GET",
          `/apis/coordination.k8s.io/v1/namespaces/${opNs}/leases/${LEASE}`,
        ) as Lease;
        assert.match(lease.spec?.holderIdentity ?? "", /^bvo-e2e-pod_[0-9a-f-]{36}$/);
      });

      await t.step("SIGTERM: exit 0 and the Lease is released", async () => {
        const status = await op.stop();
        stopped = true;
        assert.equal(status.code, 0, op.proc.tail());
        assert.equal(status.signal, null);
        const lease = await cp.json(
          "GET",
          `/apis/coordination.k8s.io/v1/namespaces/${opNs}/leases/${LEASE}`,
        ) as Lease;
        assert.ok(
          (lease.spec?.holderIdentity ?? "") === "" || lease.spec?.leaseDurationSeconds === 1,
          JSON.stringify(lease.spec),
        );
      });

      await t.step("no 403 and no refused permission anywhere; nothing outside the permission set", () => {
        const logs = op.logs();
        assert.deepEqual(forbiddenLines(logs), []);
        assert.deepEqual(permissionErrors(logs), []);
        const audit = op.audit();
        assert.ok(audit.some((e) => e.permission === "read"), "the audit log records the token read");
        assert.deepEqual(auditViolations(audit), []);
      });
    } finally {
      if (!stopped) await op.stop();
    }
  } finally {
    await restore();
  }
  await backrest.stop();
});
