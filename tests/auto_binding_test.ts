/**
 * Auto-binding end to end on real peers: kube-apiserver, kube-controller-manager's garbage collector,
 * Backrest v1.14.1 with authentication, restic. Policies, the kinds filter, the opt-in/opt-out annotation,
 * the managed Bindings' shape, defaults reaching them, drift repair, GC with the VolSync object, the
 * operator's default credentials (and who never gets them), and the Backrest URL allowlist.
 * One operator and one Backrest serve the whole file; tests run in order and each sets the config it needs.
 */
import assert from "node:assert/strict";
import { bindingNameFor, uniqueBindingName } from "../lib/api/mod.ts";
import { backrestRepo, createResticRepo, restEnv, waitForRepo } from "./harness/backrest.ts";
import {
  binding,
  BINDINGS,
  cluster,
  CONFIG_NAME,
  create,
  putOperatorConfig,
  replaceSecret,
  replicationDestination,
  replicationSource,
  secret,
  settled,
  type SharedOperator,
  sharedOperator,
  waitForBindingGone,
  waitForReason,
} from "./harness/operator.ts";
import { waitUntil } from "./harness/process.ts";

const OPT_IN = "backrest.garethgeorge.com/binding";
const MANAGED = "backrest.garethgeorge.com/managed";
const AUTH_SECRET = "backrest-auth";
const USER = { username: "operator", password: `pw-${crypto.randomUUID()}` };

const env = sharedOperator({
  operator: { backrestTimeoutMs: 20_000 },
  backrest: { auth: USER },
  configObjects: [secret(AUTH_SECRET, USER)],
});

const configPath = (configNs: string) =>
  `${BINDINGS}/namespaces/${configNs}/backrestvolsyncoperatorconfigs/${CONFIG_NAME}`;

/** Puts `spec` in the OperatorConfig and waits until the operator has accepted that generation. */
async function configure(e: SharedOperator, spec: Record<string, unknown>) {
  const cp = await cluster();
  const generation = await putOperatorConfig(e.configNs, spec);
  await waitUntil(`OperatorConfig generation ${generation} accepted`, async () => {
    const c = await cp.json("GET", configPath(e.configNs)) as {
      status?: { conditions?: { type: string; reason: string; observedGeneration?: number }[] };
    };
    const ready = c.status?.conditions?.find((x) => x.type === "Ready");
    return ready?.reason === "Accepted" && ready.observedGeneration === generation;
  }, { timeoutMs: 20_000, intervalMs: 50 });
}

/** The default Backrest (with the operator's auth Secret) and `generation` as bindingGeneration. */
function withDefaults(
  e: SharedOperator,
  generation: Record<string, unknown>,
  extra: Record<string, unknown> = {},
) {
  return {
    defaultBackrest: { url: e.backrest.url, authRef: { name: AUTH_SECRET } },
    bindingGeneration: generation,
    ...extra,
  };
}

interface BindingObject {
  metadata: {
    name: string;
    uid: string;
    generation: number;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    ownerReferences?: Record<string, unknown>[];
  };
  spec: {
    backrest: { url: string; authRef?: { name: string } };
    source: { kind: string; name: string };
    repo?: Record<string, unknown>;
    deletionPolicy?: string;
  };
  status?: { lastAppliedInputHash?: string };
}

async function getBinding(ns: string, name: string): Promise<BindingObject | undefined> {
  const cp = await cluster();
  const res = await cp.api("GET", `${BINDINGS}/namespaces/${ns}/backrestvolsyncbindings/${name}`);
  if (res.status === 404) {
    await res.body?.cancel();
    return undefined;
  }
  return await res.json() as BindingObject;
}

async function annotate(ns: string, kind: string, name: string, value: string | null) {
  const cp = await cluster();
  await cp.json(
    "PATCH",
    `/apis/volsync.backube/v1alpha1/namespaces/${ns}/${kind}/${name}`,
    { metadata: { annotations: { [OPT_IN]: value } } },
    { "content-type": "application/merge-patch+json" },
  );
}

/** Secret `s-<name>` for a fresh restic repository, and a ReplicationSource `<name>` using it. */
async function sourceWithRepo(
  ns: string,
  name: string,
  annotation?: string,
  extraData: Record<string, string> = {},
) {
  const repo = await createResticRepo();
  await create(
    ns,
    secret(`s-${name}`, { RESTIC_REPOSITORY: repo.uri, RESTIC_PASSWORD: repo.password, ...extraData }),
    replicationSource(
      name,
      `s-${name}`,
      annotation === undefined ? {} : { annotations: { [OPT_IN]: annotation } },
    ),
  );
  return repo;
}

/** A local HTTP listener standing in for a host nobody should send credentials to. */
function recorder() {
  const seen: { path: string; authorization: string | null }[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    seen.push({ path: new URL(req.url).pathname, authorization: req.headers.get("authorization") });
    await req.body?.cancel();
    return Response.json({ code: "unauthenticated", message: "recorder" }, { status: 401 });
  });
  return { url: `http://127.0.0.1:${server.addr.port}`, seen, close: () => server.shutdown() };
}

async function dropNamespace(ns: string) {
  const cp = await cluster();
  await cp.api("DELETE", `/api/v1/namespaces/${ns}`).then((r) => r.body?.cancel());
}

Deno.test("auto-binding: Annotated generates for true/1/yes only, with the prototype's name, label, annotations and owner", async () => {
  const e = await env();
  const cp = await cluster();
  const ns = await cp.namespace("annotated");
  await configure(e, withDefaults(e, { policy: "Annotated" }));
  const values: Record<string, string | undefined> = {
    "t-true": "true",
    "t-1": "1",
    "t-yes": "yes",
    "f-false": "false",
    "f-0": "0",
    "f-no": "no",
    "f-junk": "maybe",
    "f-none": undefined,
  };
  await Promise.all(Object.entries(values).map(([name, v]) => sourceWithRepo(ns, name, v)));

  for (const name of ["t-true", "t-1", "t-yes"]) {
    await waitForReason(cp, ns, `bvsb-rs-${name}`, "Applied", 60_000);
    const b = (await getBinding(ns, `bvsb-rs-${name}`))!;
    const rs = await cp.json(
      "GET",
      `/apis/volsync.backube/v1alpha1/namespaces/${ns}/replicationsources/${name}`,
    ) as {
      metadata: { uid: string };
    };
    assert.equal(b.metadata.labels?.[MANAGED], "true");
    assert.equal(
      b.metadata.annotations?.["backrest.garethgeorge.com/managed-by"],
      "backrest-volsync-operator",
    );
    assert.equal(
      b.metadata.annotations?.["backrest.garethgeorge.com/volsync-ref"],
      `replicationsource/${name}`,
    );
    assert.deepEqual(b.metadata.ownerReferences, [{
      apiVersion: "volsync.backube/v1alpha1",
      kind: "ReplicationSource",
      name,
      uid: rs.metadata.uid,
      controller: true,
      blockOwnerDeletion: true,
    }]);
    assert.equal(b.spec.backrest.url, e.backrest.url);
    assert.equal(b.spec.backrest.authRef, undefined, "the auth Secret is not copied into the Binding");
    assert.deepEqual(b.spec.source, { kind: "ReplicationSource", name });
    const stored = await backrestRepo(e.backrest, `volsync-${ns}-replicationsource-${name}`);
    assert.ok(stored, "Backrest (with auth) holds the repo");
  }
  await settled(e.op);
  for (const name of ["f-false", "f-0", "f-no", "f-junk", "f-none"]) {
    assert.equal(await getBinding(ns, `bvsb-rs-${name}`), undefined, `${name} gets no Binding`);
  }

  // Flips: opting in creates, opting out deletes (the repo stays in Backrest: deletionPolicy Retain).
  await annotate(ns, "replicationsources", "f-none", "YES");
  await waitForReason(cp, ns, "bvsb-rs-f-none", "Applied", 60_000);
  await annotate(ns, "replicationsources", "t-true", "false");
  await waitForBindingGone(ns, "bvsb-rs-t-true");
  await annotate(ns, "replicationsources", "t-1", null);
  await waitForBindingGone(ns, "bvsb-rs-t-1");
  assert.ok(await backrestRepo(e.backrest, `volsync-${ns}-replicationsource-t-true`));
  await dropNamespace(ns);
});

Deno.test("auto-binding: All generates unless opted out, and the kinds filter chooses the kinds", async () => {
  const e = await env();
  const cp = await cluster();
  const ns = await cp.namespace("all");
  await configure(e, withDefaults(e, { policy: "All" }));
  const long = `app-${"x".repeat(70)}`;
  await Promise.all([
    sourceWithRepo(ns, "plain"),
    sourceWithRepo(ns, "optout-no", "no"),
    sourceWithRepo(ns, "optout-0", "0"),
    sourceWithRepo(ns, "optout-false", "False"),
    sourceWithRepo(ns, long),
    (async () => {
      const repo = await createResticRepo();
      await create(
        ns,
        secret("s-dest", { RESTIC_REPOSITORY: repo.uri, RESTIC_PASSWORD: repo.password }),
        replicationDestination("dest", "s-dest"),
      );
    })(),
  ]);
  const longName = bindingNameFor("ReplicationSource", long);
  assert.equal(longName.length, 63);
  await waitForReason(cp, ns, "bvsb-rs-plain", "Applied", 60_000);
  await waitForReason(cp, ns, "bvsb-rd-dest", "Applied", 60_000);
  await waitForReason(cp, ns, longName, "Applied", 60_000);
  assert.ok(await backrestRepo(e.backrest, `volsync-${ns}-replicationdestination-dest`));
  const rd = (await getBinding(ns, "bvsb-rd-dest"))!;
  assert.equal(
    rd.metadata.annotations?.["backrest.garethgeorge.com/volsync-ref"],
    "replicationdestination/dest",
  );
  assert.equal(rd.metadata.ownerReferences?.[0]?.kind, "ReplicationDestination");
  await settled(e.op);
  for (const name of ["optout-no", "optout-0", "optout-false"]) {
    assert.equal(await getBinding(ns, `bvsb-rs-${name}`), undefined, `${name}: opt-out wins under All`);
  }

  // Opting out an object that has a managed Binding deletes it.
  await annotate(ns, "replicationsources", "plain", "0");
  await waitForBindingGone(ns, "bvsb-rs-plain");
  await annotate(ns, "replicationsources", "plain", null);
  await waitForReason(cp, ns, "bvsb-rs-plain", "Applied", 60_000);

  // Kinds: destinations only, then sources only.
  await configure(e, withDefaults(e, { policy: "All", kinds: ["ReplicationDestination"] }));
  await waitForBindingGone(ns, "bvsb-rs-plain");
  await waitForBindingGone(ns, longName);
  assert.ok(await getBinding(ns, "bvsb-rd-dest"));
  await configure(e, withDefaults(e, { policy: "All", kinds: ["ReplicationSource"] }));
  await waitForBindingGone(ns, "bvsb-rd-dest");
  await waitForReason(cp, ns, "bvsb-rs-plain", "Applied", 60_000);
  await dropNamespace(ns);
});

Deno.test("auto-binding: defaults reach managed Bindings, drift is repaired, and a user's Binding of the same name is never touched", async () => {
  const e = await env();
  const cp = await cluster();
  const ns = await cp.namespace("defaults");
  const richRepo = {
    envAllowlist: ["RESTIC_COMPRESSION"],
    autoUnlock: true,
    prunePolicy: { schedule: { cron: "0 3 * * *", clock: "CLOCK_UTC" }, maxUnusedPercent: 12.5 },
    checkPolicy: { schedule: { maxFrequencyDays: 30 }, readDataSubsetPercent: 5 },
    commandPrefix: { ioNice: "IO_IDLE" },
  };
  await configure(e, withDefaults(e, { policy: "All", defaultRepo: richRepo }));
  await sourceWithRepo(ns, "app", undefined, { RESTIC_COMPRESSION: "max", RESTIC_PACK_SIZE: "16" });
  const id = `volsync-${ns}-replicationsource-app`;
  await waitForReason(cp, ns, "bvsb-rs-app", "Applied", 60_000);
  const stored = await backrestRepo(e.backrest, id);
  assert.deepEqual(stored?.env, restEnv("RESTIC_COMPRESSION=max"));
  assert.equal(stored?.autoUnlock, true);
  assert.equal(stored?.prunePolicy?.schedule?.schedule.value, "0 3 * * *");
  // The generated spec equals what the apiserver stores, so there is no update loop.
  const first = (await getBinding(ns, "bvsb-rs-app"))!;
  assert.deepEqual(first.spec.repo, { ...richRepo, triggerTasksOnSnapshot: false });
  await settled(e.op);
  assert.equal((await getBinding(ns, "bvsb-rs-app"))!.metadata.generation, first.metadata.generation);

  // Changed defaults reach the existing managed Binding, and through it Backrest.
  await configure(e, withDefaults(e, { policy: "All", defaultRepo: { envAllowlist: ["RESTIC_PACK_SIZE"] } }));
  await waitForRepo(e.backrest, id, {
    what: "Backrest holds the new defaults",
    until: (r) => r.env.join() === restEnv("RESTIC_PACK_SIZE=16").join() && r.autoUnlock === false,
    timeoutMs: 60_000,
  });
  const b = (await getBinding(ns, "bvsb-rs-app"))!;
  assert.deepEqual(b.spec.repo?.envAllowlist, ["RESTIC_PACK_SIZE"]);

  // Someone edits the managed Binding: it is put back.
  await cp.json(
    "PATCH",
    `${BINDINGS}/namespaces/${ns}/backrestvolsyncbindings/bvsb-rs-app`,
    {
      spec: {
        repo: { envAllowlist: ["RESTIC_COMPRESSION"], idOverride: "hijack" },
        deletionPolicy: "Remove",
      },
    },
    { "content-type": "application/merge-patch+json" },
  );
  await waitUntil("drift repaired", async () => {
    const now = (await getBinding(ns, "bvsb-rs-app"))!;
    return now.metadata.generation > b.metadata.generation + 1 && now.spec.repo?.idOverride === undefined &&
      JSON.stringify(now.spec.repo?.envAllowlist) === '["RESTIC_PACK_SIZE"]' &&
      now.spec.deletionPolicy === "Retain";
  }, { timeoutMs: 20_000 });
  await waitForReason(cp, ns, "bvsb-rs-app", "Applied", 60_000);
  assert.deepEqual((await backrestRepo(e.backrest, id))?.env, restEnv("RESTIC_PACK_SIZE=16"));

  // A Binding without the managed label holding the generated name stays exactly as its owner wrote it.
  await create(
    ns,
    binding("bvsb-rs-mine", { url: e.backrest.url, source: "mine", repo: { idOverride: `own-${ns}` } }),
  );
  const before = (await getBinding(ns, "bvsb-rs-mine"))!;
  assert.equal(before.metadata.labels?.[MANAGED], undefined);
  await sourceWithRepo(ns, "mine");
  await configure(
    e,
    withDefaults(e, { policy: "All", defaultRepo: { envAllowlist: ["RESTIC_COMPRESSION"] } }),
  );
  await waitForReason(cp, ns, "bvsb-rs-mine", "Applied", 60_000);
  await settled(e.op);
  const after = (await getBinding(ns, "bvsb-rs-mine"))!;
  assert.equal(after.metadata.generation, before.metadata.generation, "spec never changed");
  assert.deepEqual(after.spec, before.spec);
  assert.equal(after.metadata.labels?.[MANAGED], undefined);
  assert.equal(after.metadata.ownerReferences, undefined);
  // Opting out does not delete it either.
  await annotate(ns, "replicationsources", "mine", "false");
  await settled(e.op);
  assert.ok(await getBinding(ns, "bvsb-rs-mine"), "an unmanaged Binding is never deleted");
  await dropNamespace(ns);
});

Deno.test("auto-binding: deleting the VolSync object deletes its managed Binding through the garbage collector", async () => {
  const e = await env();
  const cp = await cluster();
  const ns = await cp.namespace("gc");
  await configure(e, withDefaults(e, { policy: "All" }));
  await sourceWithRepo(ns, "gone");
  await waitForReason(cp, ns, "bvsb-rs-gone", "Applied", 60_000);
  // Paused, the operator deletes nothing: whoever deletes the Binding now is kube-controller-manager.
  await configure(e, withDefaults(e, { policy: "All" }, { paused: true }));
  await waitForReason(cp, ns, "bvsb-rs-gone", "Paused");
  await cp.api("DELETE", `/apis/volsync.backube/v1alpha1/namespaces/${ns}/replicationsources/gone`).then((
    r,
  ) => r.body?.cancel());
  await waitForBindingGone(ns, "bvsb-rs-gone", 30_000);
  assert.ok(
    !e.op.logs.some((l) => l.includes("Managed Binding deleted") && l.includes(ns)),
    "the operator did not delete it",
  );
  await configure(e, withDefaults(e, { policy: "All" }));
  await dropNamespace(ns);
});

Deno.test("auto-binding: the default auth Secret serves only the default URL, and rotating it re-applies", async () => {
  const e = await env();
  const cp = await cluster();
  const ns = await cp.namespace("creds");
  const rec = recorder();
  try {
    await configure(e, withDefaults(e, { policy: "Annotated" }));
    await sourceWithRepo(ns, "managed", "true");
    await sourceWithRepo(ns, "elsewhere");
    await waitForReason(cp, ns, "bvsb-rs-managed", "Applied", 60_000);

    // Another URL, no authRef: the listener hears requests, none carrying credentials.
    await create(ns, binding("elsewhere", { url: rec.url, source: "elsewhere" }));
    await waitForReason(cp, ns, "elsewhere", "BackrestAuthInvalid", 30_000);
    assert.ok(rec.seen.length > 0, "the listener was called");
    assert.deepEqual(rec.seen.filter((r) => r.authorization !== null), [], "no credentials were sent");

    // Naming the operator's Secret from another namespace reads this namespace's Secret of that name.
    const before = rec.seen.length;
    await create(
      ns,
      binding("borrow", {
        url: rec.url,
        source: "elsewhere",
        authRef: AUTH_SECRET,
        repo: { idOverride: `borrow-${ns}` },
      }),
    );
    const c = await waitForReason(cp, ns, "borrow", "BackrestAuthInvalid");
    assert.match(c.message, new RegExp(`auth Secret ${ns}/${AUTH_SECRET} not found`));
    await settled(e.op);
    assert.ok(rec.seen.slice(before).every((r) => r.authorization === null), "no credentials were sent");

    // Rotation: a wrong password is used at once (and refused), the right one again applies.
    const hash = (await getBinding(ns, "bvsb-rs-managed"))!.status?.lastAppliedInputHash;
    await replaceSecret(e.configNs, AUTH_SECRET, { ...USER, password: "wrong-password" });
    await waitForReason(cp, ns, "bvsb-rs-managed", "BackrestAuthInvalid", 30_000);
    await replaceSecret(e.configNs, AUTH_SECRET, USER);
    await waitForReason(cp, ns, "bvsb-rs-managed", "Applied", 30_000);
    assert.equal((await getBinding(ns, "bvsb-rs-managed"))!.status?.lastAppliedInputHash, hash);
  } finally {
    await rec.close();
  }
  assert.ok(!e.op.logs.some((l) => l.includes(USER.password)), "the password is never logged");
  await dropNamespace(ns);
});

Deno.test("auto-binding: objects whose prototype names collide get distinct Bindings that stay put", async () => {
  const e = await env();
  const cp = await cluster();
  const ns = await cp.namespace("collide");
  await configure(e, withDefaults(e, { policy: "All", kinds: ["ReplicationSource"] }));
  // The prototype named db.data's Binding bvsb-rs-db-data; alone, it keeps that name.
  await sourceWithRepo(ns, "db.data");
  await waitForReason(cp, ns, "bvsb-rs-db-data", "Applied", 60_000);
  // db-data arrives: the plain name is its own; db.data's Binding moves to a suffixed name.
  await sourceWithRepo(ns, "db-data");
  const moved = uniqueBindingName("ReplicationSource", "db.data", ["db.data", "db-data"]);
  assert.match(moved, /^bvsb-rs-db-data-[0-9a-f]{8}$/);
  await waitForReason(cp, ns, moved, "Applied", 60_000);
  await waitUntil("the plain name is db-data's", async () => {
    const b = await getBinding(ns, "bvsb-rs-db-data");
    return b?.metadata.annotations?.["backrest.garethgeorge.com/volsync-ref"] === "replicationsource/db-data";
  }, { timeoutMs: 30_000 });
  await waitForReason(cp, ns, "bvsb-rs-db-data", "Applied", 60_000);
  await settled(e.op);
  // No flip: for a few resync-free seconds, both keep their spec and owner.
  const before = await Promise.all([getBinding(ns, "bvsb-rs-db-data"), getBinding(ns, moved)]);
  await new Promise((r) => setTimeout(r, 2000));
  await settled(e.op);
  const after = await Promise.all([getBinding(ns, "bvsb-rs-db-data"), getBinding(ns, moved)]);
  assert.deepEqual(after.map((b) => b?.metadata.generation), before.map((b) => b?.metadata.generation));
  assert.deepEqual(after.map((b) => b?.spec.source.name), ["db-data", "db.data"]);
  const managed = await cp.json(
    "GET",
    `${BINDINGS}/namespaces/${ns}/backrestvolsyncbindings?labelSelector=${
      encodeURIComponent(`${MANAGED}=true`)
    }`,
  ) as { items: unknown[] };
  assert.equal(managed.items.length, 2, "one Binding per object");
  await dropNamespace(ns);
});

Deno.test("auto-binding: the URL allowlist refuses other hosts before any request is made", async () => {
  const e = await env();
  const cp = await cluster();
  const ns = await cp.namespace("allow");
  const rec = recorder();
  try {
    await configure(e, withDefaults(e, { policy: "Annotated" }, { backrestURLAllowlist: [e.backrest.url] }));
    await sourceWithRepo(ns, "app", "true");
    await create(ns, secret("token", { token: "t0ken-for-elsewhere" }));
    await create(
      ns,
      binding("out", { url: rec.url, source: "app", authRef: "token", repo: { idOverride: `out-${ns}` } }),
    );
    const c = await waitForReason(cp, ns, "out", "BackrestURLNotAllowed");
    assert.equal(c.status, "False");
    await waitForReason(cp, ns, "bvsb-rs-app", "Applied", 60_000);
    await settled(e.op);
    assert.deepEqual(rec.seen, [], "no request reached the host outside the allowlist");

    // Without the allowlist the same Binding does reach it (so the silence above means something).
    await configure(e, withDefaults(e, { policy: "Annotated" }));
    await waitUntil("the listener is called", () => Promise.resolve(rec.seen.length > 0));
    await configure(e, withDefaults(e, { policy: "Annotated" }, { backrestURLAllowlist: [e.backrest.url] }));
    await waitForReason(cp, ns, "out", "BackrestURLNotAllowed");
  } finally {
    await rec.close();
  }
  await dropNamespace(ns);
});
