/**
 * `tools/deno task dev`: the user's story with no cluster of your own. Starts the real peers (etcd,
 * kube-apiserver, kube-controller-manager, Backrest with its web UI and restic, restic's rest-server),
 * installs VolSync's and our CRDs and a sample (a REST repository, its Secret, a ReplicationSource and a
 * Binding with `triggerTasksOnSnapshot`), runs the operator as its own process with the `start` task's
 * flags, runs one VolSync sync (the restic mover's backup of a small PVC, then the status VolSync writes),
 * waits until Backrest lists the snapshot, prints where to click, and keeps everything running until
 * Ctrl-C, which stops and removes it all. `tests/browser_test.ts` clicks the same path in Chromium.
 */
import { startStory } from "../harness/story.ts";

// deno-lint-ignore no-console
const say = (line: string) => console.log(line);

const started = performance.now();
say("dev: starting the control plane and Backrest");
const story = await startStory({ namespace: "backups", log: (line) => say(`dev: ${line}`) });
const { backrest, cp, operator, repoId, snapshot, sync } = story;

say(`dev: ready in ${((performance.now() - started) / 1000).toFixed(1)} s`);
say(`  Binding backups/${story.bindingName} is Ready; Backrest holds repo ${repoId}`);
say(
  `  VolSync synced ReplicationSource backups/${story.sourceName} at ${sync.lastSyncTime}: snapshot ` +
    `${sync.snapshotId} (host ${snapshot.hostname}, path ${snapshot.paths?.join(",")}), indexed by Backrest`,
);
say("");
say(`  Open Backrest's UI:  ${backrest.url}/`);
say(`    1. in the menu under Repositories, click ${repoId}`);
say(`    2. in the tree, click the snapshot "ID: ${sync.snapshotId}"`);
say('    3. on the right, open "Snapshot Browser": README.txt, config/, uploads/ are the PVC\'s files');
say("");
say(`  kubeconfig:    export KUBECONFIG=${cp.kubeconfigPath}   (try: kubectl get bvb,replicationsource -A)`);
say(`  operator log:  ${operator.proc.logPath}`);
say(`  metrics:       ${operator.metricsUrl}/metrics`);
say("Press Ctrl-C to stop and clean up.");
await operator.proc.exited;
say("dev: the operator exited; see its log above");
