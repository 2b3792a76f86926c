/**
 * Scenario helpers shared by the fault suites: populate a namespace with Bindings over real restic
 * repositories, and check that the operator converged: every Binding Ready and Backrest holding exactly the
 * desired repos, field by field, each once.
 */
import assert from "node:assert/strict";
import { type BackrestInstance, createResticRepo } from "./backrest.ts";
import { binding, cluster, replicationSource, secret, waitForReason } from "./operator.ts";

/** What Backrest must hold for one Binding. */
export interface Desired {
  id: string;
  uri: string;
  password: string;
  env: string[];
}

/** Creates `n` Bindings with real restic repos in a fresh namespace; returns what Backrest must hold. */
export async function populate(
  url: string,
  n: number,
  prefix: string,
): Promise<{ ns: string; desired: Desired[] }> {
  const cp = await cluster();
  const ns = await cp.namespace(prefix);
  const desired: Desired[] = [];
  for (let i = 0; i < n; i++) {
    const repo = await createResticRepo();
    const env = [`AWS_ACCESS_KEY_ID=key-${i}`];
    await cp.apply(
      JSON.stringify(secret(`s${i}`, {
        RESTIC_REPOSITORY: repo.uri,
        RESTIC_PASSWORD: repo.password,
        AWS_ACCESS_KEY_ID: `key-${i}`,
      })),
      ns,
    );
    await cp.apply(JSON.stringify(replicationSource(`src${i}`, `s${i}`)), ns);
    await cp.apply(JSON.stringify(binding(`b${i}`, { url, source: `src${i}` })), ns);
    desired.push({
      id: `volsync-${ns}-replicationsource-src${i}`,
      uri: repo.uri,
      password: repo.password,
      env,
    });
  }
  return { ns, desired };
}

/** Every Binding Ready, and Backrest holds exactly `desired` among the ids of `ns`, once each. */
export async function assertConverged(
  backrest: BackrestInstance,
  ns: string,
  desired: Desired[],
  timeoutMs = 60_000,
): Promise<void> {
  const cp = await cluster();
  for (let i = 0; i < desired.length; i++) await waitForReason(cp, ns, `b${i}`, "Applied", timeoutMs);
  const config = await backrest.getConfig();
  const ours = config.repos.filter((r) => r.id.startsWith(`volsync-${ns}-`));
  assert.equal(ours.length, desired.length, "no repo missing, none duplicated");
  for (const d of desired) {
    const held = ours.filter((r) => r.id === d.id);
    assert.equal(held.length, 1, `${d.id} once`);
    assert.equal(held[0]!.uri, d.uri);
    assert.equal(held[0]!.password, d.password);
    assert.deepEqual(held[0]!.env, d.env);
  }
}

/**
 * The sample flow the end-to-end suites drive: a restic Secret over a real repository, a
 * ReplicationSource `data` and a Binding `app` in `ns`; waits until the Binding is Applied and checks that
 * Backrest holds the repo under the prototype's id. Returns that id and the repository.
 */
export async function applySampleBinding(
  backrest: BackrestInstance,
  ns: string,
): Promise<{ id: string; repo: { uri: string; password: string } }> {
  const cp = await cluster();
  const repo = await createResticRepo();
  for (
    const obj of [
      secret("restic", { RESTIC_REPOSITORY: repo.uri, RESTIC_PASSWORD: repo.password }),
      replicationSource("data", "restic"),
      binding("app", { url: backrest.url, source: "data" }),
    ]
  ) await cp.apply(JSON.stringify(obj), ns);
  const ready = await waitForReason(cp, ns, "app", "Applied", 60_000);
  assert.equal(ready.status, "True");
  const id = `volsync-${ns}-replicationsource-data`;
  assert.equal((await backrest.getConfig()).repos.find((r) => r.id === id)?.uri, repo.uri);
  return { id, repo };
}
