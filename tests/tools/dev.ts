/**
 * `tools/deno task dev`: the operator's main job with no cluster of your own. Starts the real peers (etcd,
 * kube-apiserver, kube-controller-manager, Backrest with restic), installs VolSync's and our CRDs, creates a
 * sample (a local restic repository, its Secret, a ReplicationSource and a Binding), runs the operator as
 * its own process with the `start` task's flags, prints what Backrest holds, then keeps everything running
 * until Ctrl-C, which stops and removes it all.
 */
import { createResticRepo, startBackrest } from "../harness/backrest.ts";
import { binding, cluster, replicationSource, secret, waitForReason } from "../harness/operator.ts";
import { freePort, spawn, tempDir, waitUntil } from "../harness/process.ts";
import { imageEnv, taskFlags } from "../harness/operator_process.ts";

// deno-lint-ignore no-console
const say = (line: string) => console.log(line);

const started = performance.now();
say("dev: starting the control plane and Backrest (the first run builds the peers: several minutes)");
const [cp, backrest] = await Promise.all([cluster(), startBackrest()]);
const ns = "backups";
await cp.apply(JSON.stringify({ apiVersion: "v1", kind: "Namespace", metadata: { name: ns } }));
const repo = await createResticRepo();
await cp.apply(
  [
    secret("restic-my-app", { RESTIC_REPOSITORY: repo.uri, RESTIC_PASSWORD: repo.password }),
    replicationSource("my-app-data", "restic-my-app"),
    binding("my-app", { url: backrest.url, source: "my-app-data", repo: { autoUnlock: true } }),
  ].map((o) => JSON.stringify(o)).join("\n---\n"),
  ns,
);

const logs = await tempDir("dev");
const metricsPort = freePort();
const probePort = freePort();
const root = new URL("../../", import.meta.url).pathname;
const operator = await spawn("operator", Deno.execPath(), {
  logDir: logs,
  cwd: root,
  env: imageEnv(),
  args: [
    "run",
    ...taskFlags("start"),
    "main.ts",
    `--kubeconfig=${cp.kubeconfigPath}`,
    `--operator-config-namespace=${ns}`,
    `--metrics-bind-address=127.0.0.1:${metricsPort}`,
    `--health-probe-bind-address=127.0.0.1:${probePort}`,
    "--leader-elect=false",
    "--log-format=console",
  ],
});
await waitUntil("operator /readyz", async () => {
  const res = await fetch(`http://127.0.0.1:${probePort}/readyz`);
  await res.body?.cancel();
  return res.ok;
}, { proc: operator, timeoutMs: 60_000 });
const ready = await waitForReason(cp, ns, "my-app", "Applied", 60_000);
const config = await backrest.getConfig();

say(`dev: ready in ${((performance.now() - started) / 1000).toFixed(1)} s`);
say(`  Binding ${ns}/my-app: Ready=${ready.status} (${ready.reason}): ${ready.message}`);
say(`  Backrest holds ${config.repos.length} repo(s):`);
for (const r of config.repos) say(`    - ${r.id}  ${r.uri}  (guid ${r.guid.slice(0, 12)}…)`);
say(`  Backrest UI/API:  ${backrest.url}   (a test build: the API works; the web UI is a placeholder page)`);
say(`  kubeconfig:       export KUBECONFIG=${cp.kubeconfigPath}   (try: kubectl get bvb -A)`);
say(`  operator log:     ${operator.logPath}`);
say(`  metrics:          http://127.0.0.1:${metricsPort}/metrics`);
say("Press Ctrl-C to stop and clean up.");
await operator.exited;
say("dev: the operator exited; see its log above");
