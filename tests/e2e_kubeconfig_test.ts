/**
 * The operator as a developer runs it: a separate process with the `start` task's flags and an explicit
 * `--kubeconfig` (the harness's admin kubeconfig). A Binding becomes Ready on the real Backrest and the
 * process stops cleanly; `--help` and a bad flag behave as a command-line tool should.
 */
import assert from "node:assert/strict";
import { applySampleBinding } from "./harness/scenario.ts";
import { startBackrest } from "./harness/backrest.ts";
import { cluster, ensureOperatorConfig } from "./harness/operator.ts";
import {
  forbiddenLines,
  permissionErrors,
  runOperatorOnce,
  startOperatorProcess,
  taskFlags,
} from "./harness/operator_process.ts";
import { FLAGS } from "../lib/options.ts";

Deno.test("e2e kubeconfig: the start task's flags with --kubeconfig run a Binding to Ready", async () => {
  const cp = await cluster();
  const backrest = await startBackrest();
  const opNs = await cp.namespace("op");
  const appNs = await cp.namespace("app");
  await ensureOperatorConfig(opNs);
  const op = await startOperatorProcess({
    name: "operator-kubeconfig",
    flags: taskFlags("start"),
    args: ["--kubeconfig", cp.kubeconfigPath, `--operator-config-namespace=${opNs}`],
  });
  try {
    await applySampleBinding(backrest, appNs);
    const lease = await cp.json(
      "GET",
      `/apis/coordination.k8s.io/v1/namespaces/${opNs}/leases/backrest-volsync-operator.backrest.garethgeorge.com`,
    ) as { spec?: { holderIdentity?: string } };
    assert.ok(lease.spec?.holderIdentity, "the Lease is held");
  } finally {
    const status = await op.stop();
    assert.equal(status.code, 0, op.proc.tail());
    await backrest.stop();
  }
  assert.deepEqual(forbiddenLines(op.logs()), []);
  assert.deepEqual(permissionErrors(op.logs()), []);
});

Deno.test("e2e kubeconfig: --help exits 0 and lists every flag", async () => {
  const r = await runOperatorOnce(taskFlags("start"), ["--help"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^Usage: backrest-volsync-operator/);
  for (const f of FLAGS) assert.match(r.stdout, new RegExp(`--${f.name}\\b`), f.name);
  assert.deepEqual(permissionErrors(r.stderr), []);
});

Deno.test("e2e kubeconfig: a bad flag exits 2 with one line on stderr", async () => {
  for (const bad of [["--no-such-flag"], ["--concurrency=0"], ["--log-level", "loud"], ["stray"]]) {
    const r = await runOperatorOnce(taskFlags("run"), bad);
    assert.equal(r.code, 2, `${bad.join(" ")}: ${r.stderr}`);
    assert.equal(r.stdout, "");
    const lines = r.stderr.split("\n").filter((l) =>
      l.trim() && !/^Warning|Permissions in the config/.test(l)
    );
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0] ?? "", /^backrest-volsync-operator: /);
  }
});
