/**
 * The Binding controller end to end on real peers: kube-apiserver (with VolSync's CRDs and ours),
 * Backrest v1.14.1 and restic repositories on disk. One operator (in-process, wired as main.ts wires it)
 * and one Backrest serve the whole file; each test works in its own namespace.
 */
import assert from "node:assert/strict";
import {
  type BackrestInstance,
  backrestRepo,
  createResticRepo,
  createS3Repo,
  restEnv,
  restLocation,
  startBackrest,
  waitForRepo,
} from "./harness/backrest.ts";
import {
  binding,
  BINDINGS,
  cluster,
  create,
  deleteBinding,
  patchBinding,
  putOperatorConfig,
  readyCondition,
  type RecordedWrite,
  replaceSecret,
  replicationSource,
  secret,
  sharedOperator,
  waitForBindingGone,
  waitForReason,
} from "./harness/operator.ts";
import { freePort, waitUntil } from "./harness/process.ts";
import { httpProxy } from "./harness/http_proxy.ts";
import { servingCertificate } from "./harness/tls.ts";

const env = sharedOperator({ operator: { backrestTimeoutMs: 20_000 } });

async function bindingObject(
  ns: string,
  name: string,
): Promise<Record<string, unknown> & { status: Record<string, string> }> {
  const cp = await cluster();
  return await cp.json("GET", `${BINDINGS}/namespaces/${ns}/backrestvolsyncbindings/${name}`) as
    & Record<string, unknown>
    & { status: Record<string, string> };
}

/** The hash the prototype's status holds in these tests (never one of ours). */
const PROTOTYPE_HASH = "0f".repeat(32);

/** Writes the status the Go prototype leaves on a Binding it applied (generation 1, Ready, its hash). */
async function writePrototypeStatus(ns: string, name: string, secretName?: string): Promise<void> {
  await patchBinding(ns, name, {
    status: {
      observedGeneration: 1,
      ...(secretName ? { resolvedRepositorySecret: secretName } : {}),
      lastAppliedInputHash: PROTOTYPE_HASH,
      conditions: [{
        type: "Ready",
        status: "True",
        reason: "Applied",
        message: "Applied",
        lastTransitionTime: "2026-01-01T00:00:00Z",
      }],
    },
  }, "status");
}

Deno.test("binding: a VolSync restic repository is registered in Backrest with the prototype's id and mapping", async () => {
  const { op, backrest } = await env();
  const cp = await cluster();
  const ns = await cp.namespace("bind");
  const repo = await createResticRepo();
  await create(
    ns,
    secret("restic-app", {
      RESTIC_REPOSITORY: repo.uri,
      RESTIC_PASSWORD: repo.password,
      RESTIC_COMPRESSION: "max",
      RESTIC_PASSWORD_COMMAND: "cat /etc/shadow",
      AWS_ACCESS_KEY_ID: "AKIAEXAMPLE",
      AWS_SECRET_ACCESS_KEY: "secret-example",
    }),
    replicationSource("app-data", "restic-app"),
  );
  // Let the Secret and ReplicationSource events reach the operator first, so the only keys queued for the
  // Binding are its own creation and our status write; a key queued while a status write is in flight runs
  // once more (it reads the Secret, then finds our Applied write and applies nothing), which is not what
  // this test counts.
  await new Promise((r) => setTimeout(r, 1000));
  await create(ns, binding("app", { url: backrest.url, source: "app-data" }));
  await waitForReason(cp, ns, "app", "Applied");
  const id = `volsync-${ns}-replicationsource-app-data`;
  const stored = await backrestRepo(backrest, id);
  assert.ok(stored, `Backrest holds ${id}`);
  assert.equal(stored.uri, repo.uri);
  assert.equal(stored.password, repo.password);
  assert.deepEqual(
    stored.env,
    restEnv(
      "AWS_ACCESS_KEY_ID=AKIAEXAMPLE",
      "AWS_SECRET_ACCESS_KEY=secret-example",
      "RESTIC_COMPRESSION=max",
    ),
    "the Secret's keys, and rest's credential variables sent empty",
  );
  assert.match(stored.guid, /^[0-9a-f]{64}$/);
  const b = await bindingObject(ns, "app");
  assert.equal(b.status.repoId, id);
  assert.equal(b.status.backrestURL, backrest.url);
  assert.equal(b.status.resolvedRepositorySecret, "restic-app");
  assert.match(
    b.status.lastAppliedInputHash ?? "",
    /^hmac:[0-9a-f]{64}$/,
    "keyed under the installation's key",
  );
  assert.ok(b.status.lastApplyTime);
  assert.ok(op.logs.some((l) => l.includes('"msg":"Backrest repo applied"') && l.includes(id)));
  // One status write says Applied, and its own watch event wakes nothing: no reconcile reads the Secret
  // again after it (own_writes.ts).
  await new Promise((r) => setTimeout(r, 1500));
  const isApplied = (w: RecordedWrite) =>
    w.verb === "patchStatus" && w.args[1] === "app" &&
    JSON.stringify(w.args[2]).includes('"reason":"Applied"');
  assert.equal(op.writes.filter(isApplied).length, 1, "exactly one status write carries Applied");
  const after = op.calls.slice(op.calls.findIndex(isApplied) + 1);
  assert.equal(
    after.filter((c) => c.verb === "get" && c.args[1] === "restic-app").length,
    0,
    `the echo of the Applied write reconciled again; calls after it: ${
      JSON.stringify(after.map((c) => [c.verb, typeof c.args[1] === "string" ? c.args[1] : ""]))
    }`,
  );
});

Deno.test("binding: a rotated Secret reaches Backrest with nobody touching the Binding", async () => {
  const { backrest } = await env();
  const cp = await cluster();
  const ns = await cp.namespace("rotate");
  const first = await createResticRepo();
  const second = await createResticRepo();
  await create(
    ns,
    secret("restic", {
      RESTIC_REPOSITORY: first.uri,
      RESTIC_PASSWORD: first.password,
      B2_ACCOUNT_KEY: "one",
    }),
    replicationSource("src", "restic"),
    binding("b", { url: backrest.url, source: "src", repo: { idOverride: `rotate-${ns}` } }),
  );
  await waitForReason(cp, ns, "b", "Applied");
  const before = (await bindingObject(ns, "b")).status.lastAppliedInputHash;
  await replaceSecret(ns, "restic", {
    RESTIC_REPOSITORY: second.uri,
    RESTIC_PASSWORD: second.password,
    B2_ACCOUNT_KEY: "two",
  });
  await waitForRepo(backrest, `rotate-${ns}`, {
    what: "Backrest holds the new Secret",
    until: (r) =>
      r.uri === second.uri && r.password === second.password && r.env.includes("B2_ACCOUNT_KEY=two"),
  });
  await waitUntil("status shows the new hash", async () => {
    const s = (await bindingObject(ns, "b")).status;
    return s.lastAppliedInputHash !== before;
  }, { timeoutMs: 10_000 });
  const config = await backrest.getConfig();
  assert.equal(config.repos.filter((r) => r.id === `rotate-${ns}`).length, 1, "no duplicate repo");
});

Deno.test("binding: a repository VolSync has not created yet is not created by Backrest unless autoInitialize", async () => {
  const { backrest } = await env();
  const cp = await cluster();
  const ns = await cp.namespace("init");
  const { uri, dir } = await restLocation();
  await create(
    ns,
    secret("restic", { RESTIC_REPOSITORY: uri, RESTIC_PASSWORD: "pw-init-123456" }),
    replicationSource("src", "restic"),
    binding("b", { url: backrest.url, source: "src" }),
  );
  const c = await waitForReason(cp, ns, "b", "RepositoryNotInitialized");
  assert.equal(c.status, "False");
  assert.match(c.message, /autoInitialize/);
  assert.equal(await backrestRepo(backrest, `volsync-${ns}-replicationsource-src`), undefined);
  await assert.rejects(Deno.stat(`${dir}/config`), "nothing was created at the location");

  await patchBinding(ns, "b", { spec: { repo: { autoInitialize: true } } });
  await waitForReason(cp, ns, "b", "Applied", 60_000);
  assert.ok(await backrestRepo(backrest, `volsync-${ns}-replicationsource-src`));
  assert.ok((await Deno.stat(`${dir}/config`)).isFile, "Backrest initialized the repository");
});

Deno.test("binding: each bad input ends in a precise reason, and fixing it recovers", async (t) => {
  const { backrest } = await env();
  const cp = await cluster();
  const ns = await cp.namespace("bad");
  const repo = await createResticRepo();
  const good = { RESTIC_REPOSITORY: repo.uri, RESTIC_PASSWORD: repo.password };

  await t.step("missing VolSync object, then created", async () => {
    await create(ns, binding("no-src", { url: backrest.url, source: "later" }));
    await waitForReason(cp, ns, "no-src", "VolSyncNotFound");
    await create(ns, secret("s-later", good), replicationSource("later", "s-later"));
    await waitForReason(cp, ns, "no-src", "Applied");
  });
  await t.step("object without spec.restic", async () => {
    await create(
      ns,
      replicationSource("rsync", undefined, { rsync: true }),
      binding("rsync", { url: backrest.url, source: "rsync" }),
    );
    const c = await waitForReason(cp, ns, "rsync", "UnsupportedMover");
    assert.match(c.message, /no spec\.restic/);
  });
  await t.step("restic without a repository name", async () => {
    await create(
      ns,
      replicationSource("norepo", undefined),
      binding("norepo", { url: backrest.url, source: "norepo" }),
    );
    await waitForReason(cp, ns, "norepo", "VolSyncMissingRepository");
  });
  await t.step("missing Secret, then created", async () => {
    await create(
      ns,
      replicationSource("nosecret", "s-missing"),
      binding("nosecret", { url: backrest.url, source: "nosecret" }),
    );
    await waitForReason(cp, ns, "nosecret", "RepositorySecretNotFound");
    await create(ns, secret("s-missing", good));
    await waitForReason(cp, ns, "nosecret", "Applied");
  });
  await t.step("Secret without RESTIC_PASSWORD, empty values, bad keys", async () => {
    const cases: [string, Record<string, string>, RegExp][] = [
      ["nopw", { RESTIC_REPOSITORY: repo.uri }, /RESTIC_PASSWORD/],
      ["emptyrepo", { RESTIC_REPOSITORY: "", RESTIC_PASSWORD: "x-123456" }, /RESTIC_REPOSITORY/],
      ["newline", { ...good, "AWS_DEFAULT_REGION": "eu\nwest" }, /AWS_DEFAULT_REGION/],
    ];
    for (const [name, data, pattern] of cases) {
      await create(
        ns,
        secret(`s-${name}`, data),
        replicationSource(name, `s-${name}`),
        binding(name, { url: backrest.url, source: name }),
      );
      const c = await waitForReason(cp, ns, name, "RepositorySecretInvalid");
      assert.match(c.message, pattern);
    }
  });
  await t.step("non-UTF-8 value", async () => {
    await cp.json("POST", `/api/v1/namespaces/${ns}/secrets`, {
      metadata: { name: "s-binary" },
      data: {
        RESTIC_REPOSITORY: btoa(repo.uri),
        RESTIC_PASSWORD: btoa(repo.password),
        AWS_DEFAULT_REGION: btoa("\xff\xfe"),
      },
    });
    await create(
      ns,
      replicationSource("binary", "s-binary"),
      binding("binary", { url: backrest.url, source: "binary" }),
    );
    await waitForReason(cp, ns, "binary", "RepositorySecretInvalid");
  });
  await t.step("GOOGLE_APPLICATION_CREDENTIALS holds file contents", async () => {
    await create(
      ns,
      secret("s-gcs", { ...good, GOOGLE_APPLICATION_CREDENTIALS: '{"type":"service_account"}' }),
      replicationSource("gcs", "s-gcs"),
      binding("gcs", { url: backrest.url, source: "gcs" }),
    );
    const c = await waitForReason(cp, ns, "gcs", "UnsupportedSecretKey");
    assert.match(c.message, /GOOGLE_APPLICATION_CREDENTIALS/);
    const events = await cp.json("GET", `/api/v1/namespaces/${ns}/events`) as { items: { reason: string }[] };
    await waitUntil("an Event says so", async () => {
      const ev = await cp.json("GET", `/api/v1/namespaces/${ns}/events`) as { items: { reason: string }[] };
      return ev.items.some((e) => e.reason === "UnsupportedSecretKey");
    }, { timeoutMs: 10_000 }).catch(() => assert.fail(JSON.stringify(events.items.map((e) => e.reason))));
  });
  await t.step("spec.restic.customCA", async () => {
    await create(
      ns,
      secret("s-ca", good),
      replicationSource("ca", "s-ca", { customCA: true }),
      binding("ca", { url: backrest.url, source: "ca" }),
    );
    const c = await waitForReason(cp, ns, "ca", "CustomCAUnsupported");
    assert.match(c.message, /customCA/);
  });
  await t.step("wrong repository password: Backrest's AddRepo fails", async () => {
    await create(
      ns,
      secret("s-wrong", { RESTIC_REPOSITORY: repo.uri, RESTIC_PASSWORD: "not-the-password" }),
      replicationSource("wrong", "s-wrong"),
      binding("wrong", { url: backrest.url, source: "wrong" }),
    );
    const c = await waitForReason(cp, ns, "wrong", "BackrestAddRepoFailed", 60_000);
    assert.equal(c.status, "False");
    const b = await bindingObject(ns, "wrong");
    assert.match(b.status.lastErrorHash ?? "", /^[0-9a-f]{64}$/);
    assert.ok(!JSON.stringify(b.status).includes("not-the-password"));
  });
  await t.step("unreachable Backrest URL", async () => {
    await create(
      ns,
      secret("s-unreach", good),
      replicationSource("unreach", "s-unreach"),
      binding("unreach", { url: `http://127.0.0.1:${freePort()}`, source: "unreach" }),
    );
    await waitForReason(cp, ns, "unreach", "BackrestUnreachable");
  });
  await t.step("a very large Secret", async () => {
    const big: Record<string, string> = { ...good };
    for (let i = 0; i < 200; i++) big[`EXTRA_${i}`] = "v".repeat(2000);
    big.AWS_SESSION_TOKEN = "t".repeat(2000);
    await create(
      ns,
      secret("s-big", big),
      replicationSource("big", "s-big"),
      binding("big", { url: backrest.url, source: "big" }),
    );
    const c = await waitForReason(cp, ns, "big", "Applied", 60_000);
    assert.match(
      c.message,
      /EXTRA_0, EXTRA_1, EXTRA_10, .* and 190 more/,
      "keys left out are named, briefly",
    );
    const r = await backrestRepo(backrest, `volsync-${ns}-replicationsource-big`);
    assert.deepEqual(r?.env, restEnv(`AWS_SESSION_TOKEN=${"t".repeat(2000)}`));
  });
  await t.step("other Bindings were unaffected", async () => {
    assert.equal((await readyCondition(cp, ns, "no-src"))?.reason, "Applied");
    assert.equal((await readyCondition(cp, ns, "nosecret"))?.reason, "Applied");
  });
});

Deno.test("binding: an https Backrest with a private CA is reached once the auth Secret holds its ca.crt", async () => {
  const { backrest } = await env();
  const cp = await cluster();
  const ns = await cp.namespace("tls");
  const tls = await servingCertificate();
  // The shared Backrest behind TLS with a private CA, as an ingress or a sidecar would serve it.
  const front = httpProxy({ target: backrest.url, tls });
  try {
    const url = front.url;
    const repo = await createResticRepo();
    await create(
      ns,
      secret("restic-tls", { RESTIC_REPOSITORY: repo.uri, RESTIC_PASSWORD: repo.password }),
      replicationSource("tls-data", "restic-tls"),
      binding("tls", { url, source: "tls-data" }),
    );
    // The system's roots do not vouch for it.
    await waitForReason(cp, ns, "tls", "BackrestUnreachable");
    // A ca.crt that is not a certificate is named as such.
    await create(ns, secret("backrest-ca", { "ca.crt": "not a certificate" }));
    await patchBinding(ns, "tls", { spec: { backrest: { authRef: { name: "backrest-ca" } } } });
    const bad = await waitForReason(cp, ns, "tls", "BackrestAuthInvalid");
    assert.match(
      bad.message,
      /auth Secret .*\/backrest-ca: auth Secret key ca\.crt holds no PEM certificate/,
    );
    // The CA itself, written to the Secret (nobody touches the Binding): applied through the TLS front.
    await replaceSecret(ns, "backrest-ca", { "ca.crt": tls.ca });
    await waitForReason(cp, ns, "tls", "Applied");
    const id = `volsync-${ns}-replicationsource-tls-data`;
    assert.equal((await backrestRepo(backrest, id))?.uri, repo.uri);
    const b = await bindingObject(ns, "tls");
    assert.equal(b.status.backrestURL, url);
  } finally {
    await front.close();
  }
});

Deno.test("binding: two Bindings claiming one repo id: the later gets RepoIdConflict and nothing is overwritten", async () => {
  const { backrest } = await env();
  const cp = await cluster();
  const ns = await cp.namespace("conflict");
  const a = await createResticRepo();
  const b = await createResticRepo();
  const id = `shared-${ns}`;
  await create(
    ns,
    secret("sa", { RESTIC_REPOSITORY: a.uri, RESTIC_PASSWORD: a.password }),
    replicationSource("a", "sa"),
    binding("first", { url: backrest.url, source: "a", repo: { idOverride: id } }),
  );
  await waitForReason(cp, ns, "first", "Applied");
  await new Promise((r) => setTimeout(r, 1100)); // creationTimestamp has one-second resolution
  await create(
    ns,
    secret("sb", { RESTIC_REPOSITORY: b.uri, RESTIC_PASSWORD: b.password }),
    replicationSource("b", "sb"),
    binding("second", { url: backrest.url, source: "b", repo: { idOverride: id } }),
  );
  const c = await waitForReason(cp, ns, "second", "RepoIdConflict");
  assert.match(c.message, /^Binding first holds repo id/, "named within its own namespace");
  assert.equal((await backrestRepo(backrest, id))?.uri, a.uri);
  // The first lets go: the second takes the id.
  await deleteBinding(ns, "first");
  await waitForReason(cp, ns, "second", "Applied");
  assert.equal((await backrestRepo(backrest, id))?.uri, b.uri);
});

Deno.test("binding: deletionPolicy Remove removes the repo from Backrest; Retain keeps it", async () => {
  const { backrest } = await env();
  const cp = await cluster();
  const ns = await cp.namespace("delete");
  const repo = await createResticRepo();
  await create(
    ns,
    secret("s", { RESTIC_REPOSITORY: repo.uri, RESTIC_PASSWORD: repo.password }),
    replicationSource("src", "s"),
    binding("remove", {
      url: backrest.url,
      source: "src",
      deletionPolicy: "Remove",
      repo: { idOverride: `rm-${ns}` },
    }),
    binding("retain", { url: backrest.url, source: "src", repo: { idOverride: `keep-${ns}` } }),
  );
  await waitForReason(cp, ns, "remove", "Applied");
  await waitForReason(cp, ns, "retain", "Applied");
  const obj = await bindingObject(ns, "remove") as { metadata?: { finalizers?: string[] } };
  assert.deepEqual(obj.metadata?.finalizers, ["backrest.garethgeorge.com/remove-repo"]);
  for (const name of ["remove", "retain"]) await deleteBinding(ns, name);
  assert.equal(await backrestRepo(backrest, `rm-${ns}`), undefined, "removed from Backrest");
  assert.ok(await backrestRepo(backrest, `keep-${ns}`), "retained in Backrest");
  assert.ok((await Deno.stat(`${repo.dir}/config`)).isFile, "storage untouched");
});

Deno.test("binding: drift repair re-applies a repo deleted in Backrest, with one listing call", async () => {
  const { op, backrest } = await env();
  const cp = await cluster();
  const ns = await cp.namespace("drift");
  const repo = await createResticRepo();
  await create(
    ns,
    secret("s", { RESTIC_REPOSITORY: repo.uri, RESTIC_PASSWORD: repo.password }),
    replicationSource("src", "s"),
    binding("b", { url: backrest.url, source: "src", repo: { idOverride: `drift-${ns}` } }),
  );
  await waitForReason(cp, ns, "b", "Applied");
  // Someone deletes it in the Backrest UI.
  await backrest.rpc("RemoveRepo", { repoId: `drift-${ns}` });
  assert.equal(await backrestRepo(backrest, `drift-${ns}`), undefined);
  const round = await op.operator.drift.check();
  assert.ok(round.missing >= 1);
  await waitForRepo(backrest, `drift-${ns}`, { what: "re-applied" });
  const again = await op.operator.drift.check();
  assert.equal(again.missing, 0, "nothing missing after repair");
});

Deno.test("binding: a shorter resyncPeriod applies at once, not after the wait already running", async () => {
  const { backrest, configNs } = await env();
  const cp = await cluster();
  const ns = await cp.namespace("period");
  const repo = await createResticRepo();
  const id = `period-${ns}`;
  await putOperatorConfig(configNs, { resyncPeriod: "10m" });
  try {
    await create(
      ns,
      secret("s", { RESTIC_REPOSITORY: repo.uri, RESTIC_PASSWORD: repo.password }),
      replicationSource("src", "s"),
      binding("b", { url: backrest.url, source: "src", repo: { idOverride: id } }),
    );
    await waitForReason(cp, ns, "b", "Applied");
    // A 10-minute wait is running. The admin shortens the period, then the repo vanishes from Backrest.
    await putOperatorConfig(configNs, { resyncPeriod: "2s" });
    await backrest.rpc("RemoveRepo", { repoId: id });
    await waitForRepo(backrest, id, {
      what: "repaired within a few short periods",
      timeoutMs: 20_000,
      intervalMs: 250,
    });
  } finally {
    await putOperatorConfig(configNs);
  }
});

Deno.test("binding: triggerTasksOnSnapshot indexes once per completed sync", async () => {
  const { backrest } = await env();
  const cp = await cluster();
  const ns = await cp.namespace("tasks");
  const repo = await createResticRepo();
  await create(
    ns,
    secret("s", { RESTIC_REPOSITORY: repo.uri, RESTIC_PASSWORD: repo.password }),
    replicationSource("src", "s"),
    binding("b", { url: backrest.url, source: "src", repo: { triggerTasksOnSnapshot: true } }),
  );
  await waitForReason(cp, ns, "b", "Applied");
  assert.equal((await bindingObject(ns, "b")).status.lastIndexedSnapshotMarker, undefined, "no sync yet");
  const syncTime = "2026-11-25T10:00:00Z";
  await cp.json("PATCH", `/apis/volsync.backube/v1alpha1/namespaces/${ns}/replicationsources/src/status`, {
    status: { lastSyncTime: syncTime },
  }, { "content-type": "application/merge-patch+json" });
  await waitUntil("indexed", async () => {
    const s = (await bindingObject(ns, "b")).status;
    return s.lastIndexedSnapshotMarker === `lastSyncTime=${syncTime}`;
  }, { timeoutMs: 30_000 });
  const s = (await bindingObject(ns, "b")).status;
  assert.equal(s.lastSnapshotSyncTime, syncTime);
  assert.ok(s.lastRepoTaskTriggerTime);
  assert.equal(s.lastRepoTaskErrorHash, undefined);
});

Deno.test("binding: while paused no Backrest call is made and Bindings say Paused", async () => {
  const { backrest, configNs } = await env();
  const cp = await cluster();
  const ns = await cp.namespace("paused");
  const repo = await createResticRepo();
  await putOperatorConfig(configNs, { paused: true });
  try {
    await create(
      ns,
      secret("s", { RESTIC_REPOSITORY: repo.uri, RESTIC_PASSWORD: repo.password }),
      replicationSource("src", "s"),
      binding("b", { url: backrest.url, source: "src" }),
    );
    await waitForReason(cp, ns, "b", "Paused");
    assert.equal(await backrestRepo(backrest, `volsync-${ns}-replicationsource-src`), undefined);
  } finally {
    await putOperatorConfig(configNs);
  }
  await waitForReason(cp, ns, "b", "Applied");
  assert.ok(await backrestRepo(backrest, `volsync-${ns}-replicationsource-src`));
});

/**
 * Gives Backrest a backup plan for repo `id` (while it refuses RemoveRepo for it), or none with `undefined`:
 * its config file, written while it is stopped.
 */
async function setPlanFor(backrest: BackrestInstance, id: string | undefined): Promise<void> {
  await backrest.stop();
  const configPath = `${backrest.dir}/config.json`;
  const config = JSON.parse(await Deno.readTextFile(configPath));
  config.plans = id === undefined
    ? []
    : [{ id: "nightly", repo: id, paths: ["/tmp"], schedule: { disabled: true } }];
  await Deno.writeTextFile(configPath, JSON.stringify(config));
  await backrest.restart();
}

/**
 * A Binding "b" with `deletionPolicy: Remove` in a new namespace, applied to `backrest`, then deleted while
 * a plan uses its repo: it waits with RemoveFailed.
 */
async function removalRefused(backrest: BackrestInstance, prefix: string) {
  const cp = await cluster();
  const ns = await cp.namespace(prefix);
  const repo = await createResticRepo();
  const id = `${prefix}-${ns}`;
  await create(
    ns,
    secret("s", { RESTIC_REPOSITORY: repo.uri, RESTIC_PASSWORD: repo.password }),
    replicationSource("src", "s"),
    binding("b", { url: backrest.url, source: "src", deletionPolicy: "Remove", repo: { idOverride: id } }),
  );
  await waitForReason(cp, ns, "b", "Applied");
  await setPlanFor(backrest, id);
  await cp.api("DELETE", `${BINDINGS}/namespaces/${ns}/backrestvolsyncbindings/b`).then((r) =>
    r.body?.cancel()
  );
  return { ns, id, condition: await waitForReason(cp, ns, "b", "RemoveFailed") };
}

Deno.test("binding: Backrest refusing RemoveRepo (a plan uses the repo) keeps the finalizer; Retain lets go", async () => {
  await env(); // the operator
  const backrest = await startBackrest();
  try {
    const { ns, id, condition: c } = await removalRefused(backrest, "planned");
    assert.match(c.message, /deletionPolicy to Retain/);
    const held = await bindingObject(ns, "b") as {
      metadata?: { finalizers?: string[]; deletionTimestamp?: string };
    };
    assert.ok(held.metadata?.deletionTimestamp, "deletion is pending");
    assert.deepEqual(held.metadata?.finalizers, ["backrest.garethgeorge.com/remove-repo"]);
    assert.ok(await backrestRepo(backrest, id), "the repo stays in Backrest");

    await patchBinding(ns, "b", { spec: { deletionPolicy: "Retain" } });
    await waitForBindingGone(ns, "b");
    assert.ok(await backrestRepo(backrest, id), "Retain leaves the repo in Backrest");
  } finally {
    await backrest.stop();
  }
});

Deno.test("binding: a Binding its namespace outlived (Kubernetes left it in storage) has its repo removed, then is not retried", async () => {
  const { op } = await env();
  const cp = await cluster();
  const backrest = await startBackrest();
  try {
    const { ns, id } = await removalRefused(backrest, "orphan");
    // The namespace goes while the Binding still holds its finalizer, as when the namespace controller
    // finalizes a namespace whose custom resources it could not discover (right after an apiserver restart):
    // here by its finalize subresource.
    await cp.api("DELETE", `/api/v1/namespaces/${ns}`).then((r) => r.body?.cancel());
    const nsObj = await cp.json("GET", `/api/v1/namespaces/${ns}`) as { spec?: Record<string, unknown> };
    await cp.json("PUT", `/api/v1/namespaces/${ns}/finalize`, {
      ...nsObj,
      spec: { ...nsObj.spec, finalizers: [] },
    });
    await waitUntil(
      "namespace gone",
      () => cp.api("GET", `/api/v1/namespaces/${ns}`).then((r) => (r.body?.cancel(), r.status === 404)),
    );
    assert.ok(await bindingObject(ns, "b"), "the Binding is left in storage");

    const drops = () =>
      op.writes.filter((w) =>
        w.verb === "patch" && w.args[1] === "b" && (w.args[3] as { namespace?: string })?.namespace === ns
      ).length;
    await setPlanFor(backrest, undefined); // Backrest removes it at the next try
    await waitUntil("repo removed", async () => (await backrestRepo(backrest, id)) === undefined, {
      timeoutMs: 60_000,
    });
    const gone = () =>
      op.logs.some((l) => l.includes("its namespace is gone") && l.includes(`"namespace":"${ns}"`));
    await waitUntil("one clear log line says why", () => Promise.resolve(gone()));
    await new Promise((r) => setTimeout(r, 1000)); // the watch events of its released claim
    const tried = drops();
    assert.ok(tried >= 1, "the finalizer's removal was tried");
    // A failing key is retried with backoff; this one is not, since nothing can be written into a namespace
    // that is gone (a change to the object, or a resync, brings it back).
    await new Promise((r) => setTimeout(r, 10_000));
    assert.equal(drops(), tried, "not retried");

    // The README's way out: the namespace made again gives the Binding back to it; touched, it is let go.
    await cp.json("POST", "/api/v1/namespaces", { metadata: { name: ns } });
    await patchBinding(ns, "b", { metadata: { annotations: { "example.com/touch": "1" } } });
    await waitForBindingGone(ns, "b");
  } finally {
    await backrest.stop();
  }
});

Deno.test("binding: a server answering 500 or garbage instead of Connect gets a clear reason and a retry", async () => {
  const { op, backrest } = await env();
  const cp = await cluster();
  const ns = await cp.namespace("garbage");
  const repo = await createResticRepo();
  const abort = new AbortController();
  const answers: Record<string, () => Response> = {
    "500": () =>
      new Response("upstream exploded", { status: 500, headers: { "content-type": "text/plain" } }),
    "garbage": () =>
      new Response(new Uint8Array([0xde, 0xad, 0xbe, 0xef, 0x00, 0xff]), {
        status: 200,
        headers: { "content-type": "application/proto" },
      }),
  };
  // Once `healed`, a server passes every request to the real Backrest (whatever was in the way has gone).
  let healed = false;
  const servers = Object.entries(answers).map(([name, answer]) => {
    const hits: string[] = [];
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, signal: abort.signal, onListen: () => {} },
      (req) => {
        const path = new URL(req.url).pathname;
        hits.push(path);
        return healed ? fetch(new Request(`${backrest.url}${path}`, req)) : answer();
      },
    );
    return { name, hits, url: `http://127.0.0.1:${(server.addr as Deno.NetAddr).port}`, server };
  });
  try {
    await create(
      ns,
      secret("s", { RESTIC_REPOSITORY: repo.uri, RESTIC_PASSWORD: repo.password }),
      replicationSource("src", "s"),
    );
    for (const s of servers) {
      await create(
        ns,
        binding(s.name, { url: s.url, source: "src", repo: { idOverride: `${s.name}-${ns}` } }),
      );
    }
    // A 500 (a proxy in the way, Backrest crashing) may pass: retried as unreachable. Garbage in a 200 is
    // not a Backrest we can talk to.
    const expected: Record<string, string> = {
      "500": "BackrestUnreachable",
      "garbage": "BackrestUnsupported",
    };
    for (const s of servers) {
      const c = await waitForReason(cp, ns, s.name, expected[s.name]!);
      assert.equal(c.status, "False");
      assert.ok(c.message.length > 0 && !c.message.includes(repo.password));
      assert.ok(s.hits.length >= 1, `${s.name}: the server was asked`);
    }
    assert.ok(!op.logs.some((l) => l.includes(repo.password)), "no password in the logs");

    // Both are retried: once the servers answer as Backrest, each Binding applies with no edit (the
    // "unsupported" verdict is kept a minute, then checked again).
    healed = true;
    for (const s of servers) await waitForReason(cp, ns, s.name, "Applied", 150_000);
  } finally {
    abort.abort();
    await Promise.all(servers.map((s) => s.server.finished));
  }
});

Deno.test("binding: switching from the Go prototype: its Binding and Backrest entry are taken over, no duplicate", async () => {
  const { backrest } = await env();
  const cp = await cluster();
  const ns = await cp.namespace("migrate");
  const repo = await createResticRepo();
  const id = `volsync-${ns}-replicationsource-app-data`;
  // What the prototype left behind: the repo registered under its default id...
  await backrest.rpc("AddRepo", { repo: { id, uri: repo.uri, password: repo.password, autoUnlock: true } });
  // ...and a Binding (the seed README's sample) with the prototype's status.
  await create(
    ns,
    secret("restic", { RESTIC_REPOSITORY: repo.uri, RESTIC_PASSWORD: repo.password }),
    replicationSource("app-data", "restic"),
    binding("my-app", { url: backrest.url, source: "app-data", repo: { autoUnlock: true } }),
  );
  // The operator may already be at it; the prototype's status is written as it would have been.
  await writePrototypeStatus(ns, "my-app", "restic");
  await waitUntil("taken over", async () => {
    const s = (await bindingObject(ns, "my-app")).status;
    return s.repoId === id && s.lastAppliedInputHash !== PROTOTYPE_HASH;
  }, { timeoutMs: 30_000 });
  const config = await backrest.getConfig();
  assert.equal(config.repos.filter((r) => r.uri === repo.uri).length, 1, "one Backrest entry for the repo");
  assert.equal(config.repos.find((r) => r.id === id)?.autoUnlock, true);
});

Deno.test("binding: switching from the Go prototype: an s3 repository with its own credentials applies once, no duplicate, Backrest's own variables masked", async () => {
  await env(); // the file's operator takes it over; this Backrest, whose restic runs are counted, is the repo's alone
  const cp = await cluster();
  const ns = await cp.namespace("migrate-s3");
  const backrest = await startBackrest({ recordResticRuns: true });
  const repo = await createS3Repo();
  const id = `volsync-${ns}-replicationsource-app-data`;
  const keys = { AWS_ACCESS_KEY_ID: repo.keyId, AWS_SECRET_ACCESS_KEY: repo.secret };
  // What the prototype left behind: its Backrest entry (env as the prototype sends it) and its status.
  await backrest.rpc("AddRepo", {
    repo: {
      id,
      uri: repo.uri,
      password: repo.password,
      env: Object.entries(keys).map(([k, v]) => `${k}=${v}`),
    },
  });
  const before = (await backrest.resticRuns()).length;
  // The Binding first, without its source, so the operator can apply nothing before the prototype's status
  // is there (a status is not written with a create); then the Secret and the source.
  await create(ns, binding("my-app", { url: backrest.url, source: "app-data" }));
  await waitForReason(cp, ns, "my-app", "VolSyncNotFound");
  await writePrototypeStatus(ns, "my-app", "restic");
  await create(
    ns,
    secret("restic", { RESTIC_REPOSITORY: repo.uri, RESTIC_PASSWORD: repo.password, ...keys }),
    replicationSource("app-data", "restic"),
  );
  try {
    await waitUntil("taken over", async () => {
      const s = (await bindingObject(ns, "my-app")).status;
      return s.repoId === id && s.lastAppliedInputHash !== PROTOTYPE_HASH;
    }, { timeoutMs: 60_000 });
    assert.equal((await readyCondition(cp, ns, "my-app"))?.reason, "Applied");
    const held = (await backrest.getConfig()).repos.filter((r) => r.uri === repo.uri);
    assert.equal(held.length, 1, "one Backrest entry for the repo");
    const env = held[0]!.env;
    assert.ok(
      env.includes(`AWS_ACCESS_KEY_ID=${repo.keyId}`) && env.includes(`AWS_SECRET_ACCESS_KEY=${repo.secret}`),
    );
    for (
      const masked of ["AWS_SESSION_TOKEN=", "AWS_ACCESS_KEY=", "RESTIC_AWS_ASSUME_ROLE_ARN=", "AWS_PROFILE="]
    ) {
      assert.ok(env.includes(masked), masked);
    }
    // Once: one AddRepo's restic run (after one CheckRepoExists: nothing said the repository exists).
    await new Promise((r) => setTimeout(r, 1000));
    const opens = (await backrest.resticRuns()).slice(before).filter((r) => /^(cat config|init)\b/.test(r));
    assert.equal(opens.filter((r) => r.startsWith("init")).length, 0, "nothing initialized");
    assert.ok(opens.length <= 2, `at most CheckRepoExists and AddRepo: ${opens.join(" | ")}`);
  } finally {
    await backrest.stop();
  }
});

Deno.test("binding: switching from the Go prototype: a Binding with idOverride takes over its entry, which is no one else's", async () => {
  const { backrest } = await env();
  const cp = await cluster();
  const ns = await cp.namespace("migrate-id");
  const other = await cp.namespace("migrate-other");
  const repo = await createResticRepo();
  const id = `prototype-${ns}`;
  await backrest.rpc("AddRepo", { repo: { id, uri: repo.uri, password: repo.password } });
  // The prototype's Binding with its status (applied, generation 1). The operator sees the Binding before
  // the status can be written (a status is not written with a create), so its first look finds no source:
  // once it has said so, the prototype's status is written, and only then the source appears.
  await create(ns, binding("legacy", { url: backrest.url, source: "data", repo: { idOverride: id } }));
  await waitForReason(cp, ns, "legacy", "VolSyncNotFound");
  await writePrototypeStatus(ns, "legacy");
  await waitForReason(cp, ns, "legacy", "VolSyncNotFound");
  await create(
    ns,
    secret("restic", { RESTIC_REPOSITORY: repo.uri, RESTIC_PASSWORD: repo.password }),
    replicationSource("data", "restic"),
  );
  await waitUntil("taken over", async () => (await bindingObject(ns, "legacy")).status.repoId === id, {
    timeoutMs: 30_000,
  });
  // Someone else's new Binding that names the same id: the one the prototype applied keeps it.
  const theirs = await createResticRepo();
  await create(
    other,
    secret("restic", { RESTIC_REPOSITORY: theirs.uri, RESTIC_PASSWORD: theirs.password }),
    replicationSource("data", "restic"),
    binding("newcomer", { url: backrest.url, source: "data", repo: { idOverride: id } }),
  );
  await waitForReason(cp, other, "newcomer", "RepoIdConflict");
  const config = await backrest.getConfig();
  assert.equal(config.repos.filter((r) => r.id === id).length, 1, "no duplicate");
  assert.equal(config.repos.find((r) => r.id === id)?.uri, repo.uri);
});
