/**
 * No Secret value leaks. Every value the operator reads from a Secret is a unique canary (the repository
 * Secret's RESTIC_PASSWORD, RESTIC_REPOSITORY (a real restic repository in a canary-named directory),
 * AWS keys, REST-server credentials, GOOGLE_APPLICATION_CREDENTIALS; the Backrest auth Secret's username
 * and password, against a Backrest started with authentication). The operator runs as a separate process
 * at `--log-level=debug` and is driven through success and every failure that makes servers echo things:
 * wrong repository password (restic's output), wrong Backrest credentials (401), an unreachable Backrest,
 * a repository not initialized, GOOGLE_APPLICATION_CREDENTIALS. Then no canary, nor its base64, may
 * appear in the process's output, any Binding or OperatorConfig status, any Event, or /metrics.
 * Backrest's own config legitimately holds the repository password: that is where it is meant to go.
 */
import assert from "node:assert/strict";
import { restLocation, startBackrest } from "./harness/backrest.ts";
import {
  binding,
  cluster,
  putOperatorConfig,
  readyCondition,
  replicationSource,
  secret,
} from "./harness/operator.ts";
import { startOperatorProcess, taskFlags } from "./harness/operator_process.ts";
import { peer } from "./harness/peers.ts";
import { freePort, tempDir, waitUntil } from "./harness/process.ts";
import { assertNoSecretLeak } from "./harness/scenario.ts";

const RUN = crypto.randomUUID();
let n = 0;
const canaries: string[] = [];
/** A fresh canary value, remembered for the final sweep. */
function canary(): string {
  const v = `canary-${RUN}-${n++}`;
  canaries.push(v);
  return v;
}

async function resticInit(uri: string, password: string): Promise<void> {
  const restic = await peer("restic");
  const out = await new Deno.Command(restic.path, {
    args: ["init", "--repo", uri],
    env: { RESTIC_PASSWORD: password, XDG_CACHE_HOME: await tempDir("canary-cache") },
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(`restic init: ${new TextDecoder().decode(out.stderr)}`);
}

Deno.test("e2e canary: no Secret value reaches logs, statuses, Events or metrics", async () => {
  const cp = await cluster();
  const user = { username: canary(), password: canary() };
  const backrest = await startBackrest({ auth: user });
  const opNs = await cp.namespace("op");
  const ns = await cp.namespace("app");

  // A real repository at a canary path, with a canary password.
  const repoPassword = canary();
  const repoUri = (await restLocation(canary())).uri;
  await resticInit(repoUri, repoPassword);
  const cloudish = () => ({
    AWS_ACCESS_KEY_ID: canary(),
    AWS_SECRET_ACCESS_KEY: canary(),
    RESTIC_REST_USERNAME: canary(),
    RESTIC_REST_PASSWORD: canary(),
  });

  const objects: Record<string, unknown>[] = [
    secret("auth", { username: user.username, password: user.password }),
    secret("auth-wrong", { username: canary(), password: canary() }),
    // Success.
    secret("s-ok", { RESTIC_REPOSITORY: repoUri, RESTIC_PASSWORD: repoPassword, ...cloudish() }),
    replicationSource("ok", "s-ok"),
    binding("ok", { url: backrest.url, source: "ok", authRef: "auth" }),
    // Wrong repository password: restic fails inside Backrest's AddRepo.
    secret("s-wrongpw", { RESTIC_REPOSITORY: repoUri, RESTIC_PASSWORD: canary(), ...cloudish() }),
    replicationSource("wrongpw", "s-wrongpw"),
    binding("wrongpw", { url: backrest.url, source: "wrongpw", authRef: "auth" }),
    // Wrong Backrest credentials: 401.
    secret("s-wrongauth", { RESTIC_REPOSITORY: repoUri, RESTIC_PASSWORD: repoPassword, ...cloudish() }),
    replicationSource("wrongauth", "s-wrongauth"),
    binding("wrongauth", { url: backrest.url, source: "wrongauth", authRef: "auth-wrong" }),
    // Nobody listens.
    secret("s-unreach", { RESTIC_REPOSITORY: repoUri, RESTIC_PASSWORD: repoPassword, ...cloudish() }),
    replicationSource("unreach", "s-unreach"),
    binding("unreach", { url: `http://127.0.0.1:${freePort()}`, source: "unreach", authRef: "auth" }),
    // A repository VolSync has not created yet.
    secret("s-noinit", { RESTIC_REPOSITORY: (await restLocation(canary())).uri, RESTIC_PASSWORD: canary() }),
    replicationSource("noinit", "s-noinit"),
    binding("noinit", { url: backrest.url, source: "noinit", authRef: "auth" }),
    // GOOGLE_APPLICATION_CREDENTIALS holds file contents.
    secret("s-gcs", {
      RESTIC_REPOSITORY: repoUri,
      RESTIC_PASSWORD: repoPassword,
      GOOGLE_APPLICATION_CREDENTIALS: `{"type":"service_account","private_key":"${canary()}"}`,
    }),
    replicationSource("gcs", "s-gcs"),
    binding("gcs", { url: backrest.url, source: "gcs", authRef: "auth" }),
  ];
  const op = await startOperatorProcess({
    name: "operator-canary",
    flags: taskFlags("start"),
    args: ["--kubeconfig", cp.kubeconfigPath, `--operator-config-namespace=${opNs}`, "--log-level=debug"],
  });
  let metrics = "";
  try {
    // The OperatorConfig's default auth Secret is read too.
    await cp.apply(JSON.stringify(secret("default-auth", { username: canary(), password: canary() })), opNs);
    await putOperatorConfig(opNs, {
      defaultBackrest: { url: backrest.url, authRef: { name: "default-auth" } },
    });
    for (const obj of objects) await cp.apply(JSON.stringify(obj), ns);

    const expected: Record<string, string[]> = {
      ok: ["Applied"],
      wrongpw: ["BackrestAddRepoFailed"],
      unreach: ["BackrestUnreachable"],
      noinit: ["RepositoryNotInitialized"],
      gcs: ["UnsupportedSecretKey"],
    };
    for (const [name, reasons] of Object.entries(expected)) {
      let last: unknown;
      await waitUntil(`Binding ${name} reaches ${reasons.join("|")}`, async () => {
        const c = await readyCondition(cp, ns, name);
        last = c;
        return c !== undefined && reasons.includes(c.reason);
      }, { timeoutMs: 90_000, intervalMs: 200 }).catch((e) => {
        throw new Error(`${(e as Error).message}; last ${JSON.stringify(last)}`);
      });
    }
    let wrongAuth: { status: string; reason: string } | undefined;
    await waitUntil("Binding wrongauth fails on Backrest's 401", async () => {
      wrongAuth = await readyCondition(cp, ns, "wrongauth");
      return wrongAuth !== undefined && wrongAuth.status === "False" && wrongAuth.reason !== "Pending";
    }, { timeoutMs: 60_000, intervalMs: 200 });
    assert.notEqual(wrongAuth?.reason, "Applied");
    // The canaries did travel: Backrest holds the repository password (where it belongs).
    const stored = (await backrest.getConfig()).repos.find((r) =>
      r.id === `volsync-${ns}-replicationsource-ok`
    );
    assert.equal(stored?.password, repoPassword);
    assert.ok(stored?.env.some((e) => e.startsWith("RESTIC_REST_PASSWORD=canary-")));
    // Let retries and Event aggregation run a little.
    await new Promise((r) => setTimeout(r, 3000));
    const res = await fetch(`${op.metricsUrl}/metrics`);
    metrics = await res.text();
    assert.equal(res.status, 200);
  } finally {
    const status = await op.stop();
    assert.equal(status.code, 0, op.proc.tail());
    await backrest.stop();
  }

  const logs = op.logs();
  assert.ok(logs.includes('"level":"debug"'), "debug lines were logged");
  const searched = await assertNoSecretLeak([...canaries, `${user.username}:${user.password}`], {
    logs,
    metrics,
  });
  assert.ok(searched.Events !== "[]", "Events were written");
  // The sweep looked at real material: the statuses name the failures.
  assert.match(searched["Binding status"] ?? "", /BackrestAddRepoFailed/);
});
