/**
 * Scenario helpers shared by the fault and end-to-end suites: populate a namespace with Bindings over real
 * restic repositories, check that the operator converged (every Binding Ready and Backrest holding exactly
 * the desired repos, field by field, each once), and sweep everything the operator writes or prints for
 * Secret values.
 */
import assert from "node:assert/strict";
import { type BackrestInstance, backrestRepo, createResticRepo, restEnv } from "./backrest.ts";
import { binding, BINDINGS, cluster, replicationSource, secret, waitForReason } from "./operator.ts";
import type { ControlPlane } from "./control_plane.ts";
import type { Proc } from "./process.ts";

/** What Backrest must hold for one Binding. */
export interface Desired {
  id: string;
  uri: string;
  password: string;
  env: string[];
}

/** Every value the Secrets behind `desired` hold (repository URI, password, each env value but the masks). */
export function secretValues(desired: readonly Desired[]): string[] {
  return desired.flatMap((d) => [d.uri, d.password, ...d.env.map((e) => e.slice(e.indexOf("=") + 1))])
    .filter((v) => v !== "");
}

/** Where a needle was found, as `place: ...context...`. */
function findings(haystacks: Record<string, string>, needles: readonly string[]): string[] {
  const found: string[] = [];
  for (const [place, text] of Object.entries(haystacks)) {
    for (const needle of needles) {
      const i = text.indexOf(needle);
      if (i >= 0) found.push(`${place}: ...${text.slice(Math.max(0, i - 120), i + needle.length + 40)}...`);
    }
  }
  return found;
}

/**
 * No value of `values` (nor its base64) in the operator's output, its /metrics, any Binding or
 * OperatorConfig status, or any Event, cluster-wide. Returns what was searched, for further checks.
 */
export async function assertNoSecretLeak(
  values: readonly string[],
  operator: { logs: string; metrics: string },
): Promise<Record<string, string>> {
  assert.ok(values.length > 0 && values.every((v) => v.length >= 6), "needles long enough to mean something");
  const cp = await cluster();
  const items = async (path: string) =>
    (await cp.json("GET", path) as { items: Record<string, unknown>[] }).items;
  const haystacks: Record<string, string> = {
    "operator output": operator.logs,
    "/metrics": operator.metrics,
    "Binding status": JSON.stringify(
      (await items(`${BINDINGS}/backrestvolsyncbindings`)).map((b) => b.status),
    ),
    "OperatorConfig status": JSON.stringify(
      (await items(`${BINDINGS}/backrestvolsyncoperatorconfigs`)).map((c) => c.status),
    ),
    "Events": JSON.stringify(await items("/api/v1/events")),
  };
  assert.deepEqual(findings(haystacks, [...values, ...values.map((v) => btoa(v))]), []);
  return haystacks;
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
    // A unique value, so a leak sweep can look for it.
    const keyId = `akid-${crypto.randomUUID()}`;
    const env = restEnv(`AWS_ACCESS_KEY_ID=${keyId}`);
    await cp.apply(
      JSON.stringify(secret(`s${i}`, {
        RESTIC_REPOSITORY: repo.uri,
        RESTIC_PASSWORD: repo.password,
        AWS_ACCESS_KEY_ID: keyId,
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
 * Backrest holds the repo under the prototype's id. Returns that id and the repository. `cp` is the
 * cluster with our CRDs (default: the shared one), `timeoutMs` the wait, and `proc` the operator's process
 * when it runs as one (its exit fails the wait at once).
 */
export async function applySampleBinding(
  backrest: BackrestInstance,
  ns: string,
  opts: { cp?: ControlPlane; timeoutMs?: number; proc?: Proc } = {},
): Promise<{ id: string; repo: { uri: string; password: string } }> {
  const cp = opts.cp ?? await cluster();
  const repo = await createResticRepo();
  for (
    const obj of [
      secret("restic", { RESTIC_REPOSITORY: repo.uri, RESTIC_PASSWORD: repo.password }),
      replicationSource("data", "restic"),
      binding("app", { url: backrest.url, source: "data" }),
    ]
  ) await cp.apply(JSON.stringify(obj), ns);
  const ready = await waitForReason(cp, ns, "app", "Applied", opts.timeoutMs ?? 60_000, opts.proc);
  assert.equal(ready.status, "True");
  const id = `volsync-${ns}-replicationsource-data`;
  assert.equal((await backrestRepo(backrest, id))?.uri, repo.uri);
  return { id, repo };
}
