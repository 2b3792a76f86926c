/**
 * Unit tests of lib/reconcile/operator.ts: `compactBinding`, and the wiring `createOperator()` builds (which
 * informer event wakes which controller key, through which index), run as main.ts runs it on the stand-in
 * apiserver and Backrest of _fakes.ts, in milliseconds and without a cluster (the heap test, last, in
 * seconds).
 */
import assert from "node:assert/strict";
import v8 from "node:v8";
import vm from "node:vm";
import { BackrestError } from "../backrest/mod.ts";
import { EventRecorder, events, isRecord, type KubeObject, leases, secrets } from "../kube/mod.ts";
import { createLogger, createRuntimeMetrics } from "../observe/mod.ts";
import { compactObject, MemoryStore } from "../runtime/mod.ts";
import { type FakeKube, fakeKube } from "../testing/fake_apiserver.ts";
import { fakeBackrest } from "./_fakes.ts";
import { ANNOTATION_HOLDER_UID, ANNOTATION_REPO_ID, claimName, LABEL_REPO_CLAIM } from "./claims.ts";
import { compactBinding } from "./caches.ts";
import { createOperator, type OperatorOptions } from "./operator.ts";
import { HASH_KEY_SECRET } from "./hash_key.ts";
import { bindingType, operatorConfigType, volsyncTypes } from "./resources.ts";

Deno.test("compactBinding: the same content as compactObject, input left alone", () => {
  const input: KubeObject = {
    apiVersion: "backrest.garethgeorge.com/v1alpha1",
    kind: "BackrestVolSyncBinding",
    metadata: { name: "b", namespace: "apps", managedFields: [{ manager: "m" }] },
    spec: {
      backrest: { url: "http://backrest:9898", authRef: { name: "a" } },
      source: { kind: "ReplicationSource", name: "s" },
      repo: { autoUnlock: true },
    },
    status: { backrestURL: "http://backrest:9898", repoId: "r", conditions: [] },
  };
  const before = structuredClone(input);
  assert.deepEqual(compactBinding(input), compactObject(before));
  assert.deepEqual(input, before);
  const bare: KubeObject = { metadata: { name: "x" }, spec: { backrest: 1, source: null } };
  assert.deepEqual(compactBinding(bare), bare);
});

// The wiring: createOperator() as main.ts builds it (no leader election), on the stand-in apiserver and
// the Backrest stand-in of _fakes.ts. Each test writes objects as a user or VolSync would and waits for what
// the operator does; the real-peer suites (tests/binding_test.ts, tests/auto_binding_test.ts) prove the same
// on kube-apiserver and Backrest. Names and values the cluster sees are spelled out here.

const CONFIG_NS = "ops";
const CONFIG_NAME = "backrest-volsync-operator";
const URL = "http://backrest.backups.svc:9898";
const API_VERSION = "backrest.garethgeorge.com/v1alpha1";
const OPT_IN = "backrest.garethgeorge.com/binding";

const te = new TextEncoder();
const b64 = (s: string) => btoa(String.fromCharCode(...te.encode(s)));

function secret(namespace: string, name: string, data: Record<string, string>): KubeObject {
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata: { namespace, name },
    data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, b64(v)])),
  };
}

function replicationSource(
  namespace: string,
  name: string,
  repository: string,
  annotations?: Record<string, string>,
): KubeObject {
  return {
    apiVersion: "volsync.backube/v1alpha1",
    kind: "ReplicationSource",
    metadata: { namespace, name, ...(annotations ? { annotations } : {}) },
    spec: { sourcePVC: "data", restic: { repository, copyMethod: "Clone" } },
  };
}

function binding(
  namespace: string,
  name: string,
  source: string,
  o: { authRef?: string; repo?: Record<string, unknown> } = {},
): KubeObject {
  return {
    apiVersion: API_VERSION,
    kind: "BackrestVolSyncBinding",
    metadata: { namespace, name },
    spec: {
      backrest: { url: URL, ...(o.authRef ? { authRef: { name: o.authRef } } : {}) },
      source: { kind: "ReplicationSource", name: source },
      ...(o.repo ? { repo: o.repo } : {}),
    },
  };
}

function operatorConfig(spec: Record<string, unknown>): KubeObject {
  return {
    apiVersion: API_VERSION,
    kind: "BackrestVolSyncOperatorConfig",
    metadata: { namespace: CONFIG_NS, name: CONFIG_NAME },
    spec,
  };
}

/** A repository Secret `restic-<source>` in `namespace`. */
function repoSecret(kube: FakeKube, namespace: string, password = "pw", source = "data") {
  kube.put(
    secrets,
    secret(namespace, `restic-${source}`, {
      RESTIC_REPOSITORY: `rest:http://restic.example/${namespace}/${source}`,
      RESTIC_PASSWORD: password,
    }),
  );
}

/** A repository Secret `restic-<source>` and a ReplicationSource `<source>` using it, in `namespace`. */
function volsyncWithRepo(kube: FakeKube, namespace: string, password = "pw", source = "data") {
  repoSecret(kube, namespace, password, source);
  kube.put(volsyncTypes.ReplicationSource, replicationSource(namespace, source, `restic-${source}`));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `ok` every few ms until it holds; fails after a generous `timeoutMs` with `what` and `state()`. */
async function until(what: string, ok: () => boolean, state: () => unknown, timeoutMs = 5000) {
  for (const started = Date.now(); !ok();) {
    if (Date.now() - started > timeoutMs) {
      assert.fail(`timed out waiting for: ${what}; now: ${JSON.stringify(state())}`);
    }
    await sleep(5);
  }
}

/** Settles `p`, or fails after `ms` (a guard against hanging, not a measure of speed). */
async function settlesWithin<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hung = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} still running after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, hung]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The operator running on a fresh stand-in apiserver (empty but for what `seed` puts) and Backrest;
 * `recorder` builds its Event recorder (default: the one createOperator builds).
 */
async function runningOperator(
  seed: (kube: FakeKube) => void = () => {},
  recorder?: (kube: FakeKube) => OperatorOptions["events"],
) {
  const types = [
    bindingType,
    operatorConfigType,
    ...Object.values(volsyncTypes),
    secrets,
    leases,
    events,
  ];
  const stores = Object.fromEntries(types.map((t) => [t.resource, new MemoryStore<KubeObject>()]));
  const kube = fakeKube(stores);
  seed(kube);
  const backrest = fakeBackrest();
  const logs: string[] = [];
  const metrics = createRuntimeMetrics();
  const operator = createOperator({
    kube: kube.client,
    namespaces: [],
    configNamespace: CONFIG_NS,
    configName: CONFIG_NAME,
    concurrency: 4,
    logger: createLogger({ level: "debug", format: "json", write: (line) => logs.push(line) }),
    metrics,
    backrest: backrest.connect,
    events: recorder?.(kube),
  });
  const stop = new AbortController();
  const running = operator.manager.start(stop.signal);
  let failed: unknown;
  running.catch((e) => failed = e);
  const bindings = stores[bindingType.resource]!;
  /** The Ready condition of the Binding `key` as the apiserver holds it. */
  const ready = (key: string) => {
    const status = bindings.get(key)?.status;
    const conditions = isRecord(status) && Array.isArray(status.conditions) ? status.conditions : [];
    return conditions.find((c) => isRecord(c) && c.type === "Ready") as
      | { status: string; reason: string; message: string }
      | undefined;
  };
  const tail = () => ({ failed: String(failed ?? ""), log: logs.slice(-8) });
  const queue = operator.controllers.binding.queue;
  const idle = () => queue.length === 0 && queue.inFlight === 0;
  /** Whether the operator's cache holds the Binding `key` as the apiserver does. */
  const caughtUp = (key: string) =>
    operator.bindings.store.get(key)?.metadata.resourceVersion ===
      bindings.get(key)?.metadata.resourceVersion;
  await until("caches synced", () => operator.manager.ready(), tail);
  return {
    operator,
    kube,
    stores,
    backrest,
    logs,
    metrics,
    running,
    stop,
    ready,
    /** Waits until the Binding `key` says `reason`. */
    reason: (key: string, reason: string) =>
      until(`Binding ${key} ${reason}`, () => ready(key)?.reason === reason, () => ({
        ready: ready(key),
        backrest: backrest.calls,
        ...tail(),
      })),
    until: (what: string, ok: () => boolean) =>
      until(what, ok, () => ({ backrest: backrest.calls, ...tail() })),
    /** Whether the Binding queue is empty with nothing in flight. */
    idle,
    /** Whether the operator's cache holds the Binding `key` as the apiserver does. */
    caughtUp,
    /** Waits until the cache holds the Binding `key` as the apiserver does and the Binding queue is idle. */
    settled: (key: string) =>
      until(`Binding ${key} in the cache, the queue idle`, () => caughtUp(key) && idle(), tail),
    /** The latest AddRepo of repo `id`: its restic password and the Backrest credentials it went with. */
    latest: (id: string) => {
      const i = backrest.applied.findLastIndex((r) => r.id === id);
      if (i < 0) return undefined;
      const auth = backrest.connections[i]!.auth;
      return {
        password: backrest.applied[i]!.password.reveal(),
        auth: auth?.kind === "basic" ? `${auth.username}:${auth.password.reveal()}` : auth?.kind,
      };
    },
    /** The status field `field` of the Binding `key`. */
    statusOf: (key: string, field: string) => {
      const status = bindings.get(key)?.status;
      return isRecord(status) ? status[field] : undefined;
    },
    async [Symbol.asyncDispose]() {
      stop.abort();
      await settlesWithin(running, 20_000, "manager.start");
    },
  };
}

Deno.test("operator wiring: a Binding is applied, its own status write wakes nothing, and a new repository Secret re-applies it with nobody touching the Binding", async () => {
  await using op = await runningOperator((kube) => volsyncWithRepo(kube, "app"));
  op.kube.put(bindingType, binding("app", "b", "data"));
  await op.reason("app/b", "Applied");
  const id = "volsync-app-replicationsource-data";
  assert.deepEqual(op.backrest.applied.map((r) => r.id), [id]);
  assert.equal(op.latest(id)?.password, "pw");
  // The Applied write comes back through the watch as an echo that wakes nothing: one reconcile, one read.
  const stored = op.stores[bindingType.resource]!.get("app/b")!;
  await op.settled("app/b");
  // Reads of the repository Secret (the status hash key is read once, by the first reconcile).
  const secretReads = () =>
    op.kube.calls.filter((c) => c.verb === "get" && c.resource === "secrets" && c.name !== HASH_KEY_SECRET)
      .length;
  assert.equal(secretReads(), 1, "no reconcile after the echo of the Applied write");
  // The Event recorder writes through the stand-in too.
  await op.until(
    "an Applied Event",
    () => op.stores[events.resource]!.list().some((e) => e.reason === "Applied"),
  );

  op.kube.put(
    secrets,
    secret("app", "restic-data", {
      RESTIC_REPOSITORY: "rest:http://restic.example/app/data",
      RESTIC_PASSWORD: "pw2",
    }),
  );
  await op.until("AddRepo with the new password", () => op.latest(id)?.password === "pw2");
  const hash = (stored.status as Record<string, unknown>).lastAppliedInputHash;
  await op.until(
    "the status records the new inputs",
    () => op.statusOf("app/b", "lastAppliedInputHash") !== hash,
  );
  assert.equal(op.ready("app/b")?.reason, "Applied");
  assert.equal(
    op.stores[bindingType.resource]!.get("app/b")!.metadata.generation,
    stored.metadata.generation,
  );
  const bindingWrites = op.kube.writes().filter((c) => c.resource === bindingType.resource);
  assert.deepEqual(new Set(bindingWrites.map((c) => c.verb)), new Set(["patchStatus"]), "only status writes");
});

Deno.test("operator wiring: a change of the auth Secret a Binding names re-applies it with the new credentials", async () => {
  await using op = await runningOperator();
  volsyncWithRepo(op.kube, "app");
  op.kube.put(secrets, secret("app", "backrest-auth", { username: "operator", password: "one" }));
  op.kube.put(bindingType, binding("app", "b", "data", { authRef: "backrest-auth" }));
  await op.reason("app/b", "Applied");
  const id = "volsync-app-replicationsource-data";
  assert.equal(op.latest(id)?.auth, "operator:one");

  op.kube.put(secrets, secret("app", "backrest-auth", { username: "operator", password: "two" }));
  await op.until("AddRepo with the new credentials", () => op.latest(id)?.auth === "operator:two");
  assert.equal(op.latest(id)?.password, "pw", "the same repository");
});

Deno.test("operator wiring: a change of the operator's default auth Secret re-applies every Binding that uses it", async () => {
  await using op = await runningOperator((kube) => {
    kube.put(secrets, secret(CONFIG_NS, "backrest-auth", { username: "operator", password: "one" }));
    kube.put(
      operatorConfigType,
      operatorConfig({ defaultBackrest: { url: URL, authRef: { name: "backrest-auth" } } }),
    );
  });
  const ids = ["volsync-app-a-replicationsource-data", "volsync-app-b-replicationsource-data"];
  for (const ns of ["app-a", "app-b"]) {
    volsyncWithRepo(op.kube, ns);
    op.kube.put(bindingType, binding(ns, "b", "data"));
  }
  await op.reason("app-a/b", "Applied");
  await op.reason("app-b/b", "Applied");
  assert.deepEqual(ids.map((id) => op.latest(id)?.auth), ["operator:one", "operator:one"]);

  op.kube.put(secrets, secret(CONFIG_NS, "backrest-auth", { username: "operator", password: "two" }));
  await op.until(
    "both Bindings re-applied with the new credentials",
    () => ids.every((id) => op.latest(id)?.auth === "operator:two"),
  );
});

Deno.test("operator wiring: a ReplicationSource created after its Binding makes the waiting Binding apply", async () => {
  await using op = await runningOperator();
  op.kube.put(
    secrets,
    secret("app", "restic-later", {
      RESTIC_REPOSITORY: "rest:http://restic.example/app/later",
      RESTIC_PASSWORD: "pw",
    }),
  );
  op.kube.put(bindingType, binding("app", "b", "later"));
  await op.reason("app/b", "VolSyncNotFound");
  assert.match(op.ready("app/b")!.message, /ReplicationSource app\/later not found/);
  assert.deepEqual(op.backrest.calls, []);

  op.kube.put(volsyncTypes.ReplicationSource, replicationSource("app", "later", "restic-later"));
  await op.reason("app/b", "Applied");
  assert.equal(op.latest("volsync-app-replicationsource-later")?.password, "pw");
});

Deno.test("operator wiring: a repo id given up by a deleted Binding goes to the Binding in RepoIdConflict", async () => {
  await using op = await runningOperator();
  volsyncWithRepo(op.kube, "app", "pw-first", "first");
  op.kube.put(bindingType, binding("app", "first", "first", { repo: { idOverride: "shared" } }));
  await op.reason("app/first", "Applied");
  volsyncWithRepo(op.kube, "app", "pw-second", "second");
  op.kube.put(bindingType, binding("app", "second", "second", { repo: { idOverride: "shared" } }));
  await op.reason("app/second", "RepoIdConflict");
  assert.match(
    op.ready("app/second")!.message,
    /^Binding first holds repo id/,
    "named within its own namespace",
  );
  assert.equal(op.latest("shared")?.password, "pw-first", "nothing overwritten");

  // The first goes; its claim Lease is deleted only after the second has been told again that the id is
  // taken, so what wakes the second then is the Lease's deletion.
  const letGo = op.kube.hold("delete");
  op.kube.remove(bindingType, "app", "first");
  const queue = op.operator.controllers.binding.queue;
  await op.until(
    "the first's reconcile waiting on its Lease delete, nothing else queued",
    () => queue.length === 0 && queue.inFlight === 1,
  );
  assert.equal(op.ready("app/second")?.reason, "RepoIdConflict");
  letGo();
  await op.reason("app/second", "Applied");
  assert.equal(op.latest("shared")?.password, "pw-second");
});

Deno.test("operator wiring: a claim left by a Binding deleted while no operator ran is given up, and the Binding waiting for its id applies", async () => {
  await using op = await runningOperator((kube) => {
    kube.put(leases, {
      apiVersion: "coordination.k8s.io/v1",
      kind: "Lease",
      metadata: {
        namespace: CONFIG_NS,
        name: claimName("shared"),
        labels: { [LABEL_REPO_CLAIM]: "true" },
        annotations: { [ANNOTATION_REPO_ID]: "shared", [ANNOTATION_HOLDER_UID]: "uid-gone" },
      },
      spec: { holderIdentity: "app/gone" },
    });
    volsyncWithRepo(kube, "app");
    kube.put(bindingType, binding("app", "b", "data", { repo: { idOverride: "shared" } }));
  });
  await op.reason("app/b", "Applied");
  assert.equal(op.latest("shared")?.password, "pw");
  const claim = op.stores[leases.resource]!.getByName(CONFIG_NS, claimName("shared"));
  assert.equal(claim?.spec && (claim.spec as Record<string, unknown>).holderIdentity, "app/b");
});

Deno.test("operator wiring: pausing and resuming in the OperatorConfig reaches every Binding", async () => {
  await using op = await runningOperator();
  const keys = ["app-a/one", "app-a/two", "app-b/one"];
  for (const key of keys) {
    const [ns, name] = key.split("/") as [string, string];
    volsyncWithRepo(op.kube, ns, "pw", name);
    op.kube.put(bindingType, binding(ns, name, name));
  }
  for (const key of keys) await op.reason(key, "Applied");
  const configReady = () => {
    const s = op.stores[operatorConfigType.resource]!.get(`${CONFIG_NS}/${CONFIG_NAME}`)?.status;
    const c = isRecord(s) && Array.isArray(s.conditions) ? s.conditions.find((c) => c.type === "Ready") : {};
    return `${c?.reason} at generation ${c?.observedGeneration}`;
  };

  op.kube.put(operatorConfigType, operatorConfig({ paused: true }));
  for (const key of keys) await op.reason(key, "Paused");
  await op.until("the config Accepted", () => configReady() === "Accepted at generation 1");
  const before = op.backrest.applied.length;

  op.kube.put(operatorConfigType, operatorConfig({ paused: false }));
  for (const key of keys) await op.reason(key, "Applied");
  await op.until("the edit Accepted", () => configReady() === "Accepted at generation 2");
  assert.deepEqual(
    new Set(op.backrest.applied.slice(before).map((r) => r.id)),
    new Set([
      "volsync-app-a-replicationsource-one",
      "volsync-app-a-replicationsource-two",
      "volsync-app-b-replicationsource-one",
    ]),
    "each Binding re-applied once resumed",
  );
});

Deno.test("operator wiring: a status write whose watch event lags is what the next reconcile reads (pause, then resume)", async () => {
  await using op = await runningOperator((kube) => volsyncWithRepo(kube, "app"));
  op.kube.put(bindingType, binding("app", "b", "data"));
  await op.reason("app/b", "Applied");
  await op.settled("app/b");

  // The Binding watch lags: the Paused write reaches the apiserver, not yet the cache, when the resume
  // comes. Read from the cache alone, that reconcile would find the Applied status and do nothing.
  const catchUp = op.kube.lag(bindingType);
  op.kube.put(operatorConfigType, operatorConfig({ paused: true }));
  await op.reason("app/b", "Paused");
  op.kube.put(operatorConfigType, operatorConfig({ paused: false }));
  await op.reason("app/b", "Applied");
  assert.equal(op.caughtUp("app/b"), false, "the cache has heard neither write");
  assert.equal(op.backrest.applied.length, 2, "applied again after the pause");
  catchUp();
  await op.settled("app/b");
  assert.equal(op.backrest.applied.length, 2);
});

Deno.test("operator wiring: an Applied write whose event lags is not applied again when another change wakes the Binding", async () => {
  await using op = await runningOperator((kube) => repoSecret(kube, "app"));
  op.kube.put(bindingType, binding("app", "b", "data"));
  await op.reason("app/b", "VolSyncNotFound");
  await op.settled("app/b");

  // The source appears while the Binding watch lags: applied, and the Applied write is not in the cache
  // when VolSync's next change to the source wakes the Binding again (its reconcile reads the Secret).
  const catchUp = op.kube.lag(bindingType);
  op.kube.put(volsyncTypes.ReplicationSource, replicationSource("app", "data", "restic-data"));
  await op.reason("app/b", "Applied");
  const secretReads = () => op.kube.calls.filter((c) => c.verb === "get" && c.name === "restic-data").length;
  const readsBefore = secretReads();
  const source = op.stores[volsyncTypes.ReplicationSource.resource]!.get("app/data")!;
  op.kube.put(volsyncTypes.ReplicationSource, { ...source, status: { conditions: [] } });
  await op.until("the source's change reconciled", () => secretReads() > readsBefore);
  await op.until("the Binding queue idle", op.idle);
  assert.equal(op.caughtUp("app/b"), false, "the cache still lags");
  assert.equal(op.backrest.applied.length, 1, "one AddRepo: the second reconcile read the Applied write");
  catchUp();
  await op.settled("app/b");
  assert.equal(op.backrest.applied.length, 1);
});

Deno.test("operator wiring: under policy Annotated an annotated ReplicationSource gets a managed Binding, kept in line and gone on opt-out; policy All reaches the others", async () => {
  await using op = await runningOperator((kube) => {
    kube.put(
      operatorConfigType,
      operatorConfig({ defaultBackrest: { url: URL }, bindingGeneration: { policy: "Annotated" } }),
    );
  });
  const bindings = op.stores[bindingType.resource]!;
  op.kube.put(
    secrets,
    secret("app", "restic-db", {
      RESTIC_REPOSITORY: "rest:http://restic.example/app/db",
      RESTIC_PASSWORD: "pw",
    }),
  );
  op.kube.put(volsyncTypes.ReplicationSource, replicationSource("app", "plain", "restic-db"));
  op.kube.put(
    volsyncTypes.ReplicationSource,
    replicationSource("app", "db", "restic-db", { [OPT_IN]: "true" }),
  );
  await op.reason("app/bvsb-rs-db", "Applied");
  const made = bindings.get("app/bvsb-rs-db")!;
  assert.equal(made.metadata.labels?.["backrest.garethgeorge.com/managed"], "true");
  assert.deepEqual(made.spec, {
    backrest: { url: URL },
    source: { kind: "ReplicationSource", name: "db" },
    repo: { autoUnlock: false, triggerTasksOnSnapshot: false },
    deletionPolicy: "Retain",
  });
  assert.equal(op.latest("volsync-app-replicationsource-db")?.password, "pw");
  assert.deepEqual(bindings.keys(), ["app/bvsb-rs-db"], "none for the object without the annotation");

  // Someone edits the managed Binding: it is put back.
  op.kube.put(bindingType, { ...made, spec: { ...made.spec as object, repo: { autoUnlock: true } } });
  await op.until("the managed spec back", () => {
    const spec = bindings.get("app/bvsb-rs-db")?.spec;
    return isRecord(spec) && isRecord(spec.repo) && spec.repo.autoUnlock === false;
  });

  // The object opts out: its Binding goes.
  op.kube.put(
    volsyncTypes.ReplicationSource,
    replicationSource("app", "db", "restic-db", { [OPT_IN]: "false" }),
  );
  await op.until("the managed Binding deleted", () => bindings.size === 0);

  // Policy All: the object without the annotation gets one now; the one that opted out still has none.
  op.kube.put(
    operatorConfigType,
    operatorConfig({ defaultBackrest: { url: URL }, bindingGeneration: { policy: "All" } }),
  );
  await op.reason("app/bvsb-rs-plain", "Applied");
  assert.deepEqual(bindings.keys(), ["app/bvsb-rs-plain"]);
});

Deno.test("operator wiring: aborting ends manager.start, with a Binding in retry backoff, and closes every watch", async () => {
  await using op = await runningOperator();
  volsyncWithRepo(op.kube, "app");
  op.kube.put(bindingType, binding("app", "ok", "data"));
  await op.reason("app/ok", "Applied");
  op.backrest.failAddRepo(new BackrestError("unavailable", "AddRepo", "down", { code: "unavailable" }));
  volsyncWithRepo(op.kube, "app", "pw", "other");
  op.kube.put(bindingType, binding("app", "failing", "other"));
  await op.reason("app/failing", "BackrestUnreachable");
  await op.until("a retry waiting", () => op.operator.controllers.binding.queue.retries("app/failing") > 0);
  assert.equal(op.kube.openWatches, 6, "one watch per informer");

  op.stop.abort();
  await settlesWithin(op.running, 10_000, "manager.start after abort");
  assert.equal(op.operator.manager.healthy(), false, "stopped");
  await op.until("every watch closed", () => op.kube.openWatches === 0);
  // Deno's sanitizers fail this test should a timer (a retry's backoff, a watchdog) outlive the stop.
});

/** A log line of the OperatorConfig informer's watch failing. */
const configWatchFailed = (line: string) =>
  line.includes('"msg":"Watch failed; retrying"') &&
  line.includes('"informer":"backrestvolsyncoperatorconfigs"');

/** The value of the sample `name{labels}` in `text` (0 when absent). */
function sample(text: string, series: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}

Deno.test("operator wiring: while the OperatorConfig's storage is down, a Secret edit reaches no Backrest; the pause set meanwhile is in force before anything runs", async () => {
  await using op = await runningOperator((kube) => volsyncWithRepo(kube, "app"));
  op.kube.put(bindingType, binding("app", "b", "data"));
  await op.reason("app/b", "Applied");
  const calls = op.backrest.calls.length;
  const holds = () =>
    sample(
      op.metrics.registry.render(),
      'backrest_volsync_config_holds_total{controller="backrestvolsyncbinding"}',
    );
  assert.equal(sample(op.metrics.registry.render(), "backrest_volsync_operator_config_known"), 1);

  // The apiserver restarts: the OperatorConfig's storage answers 429 while the Secrets' is back at once.
  const back = op.kube.outage(operatorConfigType);
  await op.until("the OperatorConfig's watch failed", () => op.logs.some(configWatchFailed));
  op.kube.put(operatorConfigType, operatorConfig({ paused: true }));
  op.kube.put(
    secrets,
    secret("app", "restic-data", {
      RESTIC_REPOSITORY: "rest:http://restic.example/app/data",
      RESTIC_PASSWORD: "pw2",
    }),
  );
  await op.until(
    "the Secret's reconcile held or done",
    () => holds() >= 1 || op.backrest.calls.length > calls,
  );
  assert.deepEqual(op.backrest.calls.slice(calls), [], "no Backrest call while the config is not known");
  assert.equal(sample(op.metrics.registry.render(), "backrest_volsync_operator_config_known"), 0);
  assert.equal(op.ready("app/b")?.reason, "Applied", "no status churn");
  assert.equal(op.operator.settings.current.spec.paused, false, "the cache has not seen the pause");
  assert.equal(op.logs.filter((l) => l.includes("Holding Backrest calls")).length, 1);

  back();
  await op.reason("app/b", "Paused");
  assert.equal(op.backrest.calls.length, calls, "the held reconcile ran under the pause");
  assert.ok(op.logs.some((l) => l.includes("known again; resuming held work")));

  op.kube.put(operatorConfigType, operatorConfig({ paused: false }));
  await op.until(
    "AddRepo with the new password",
    () => op.latest("volsync-app-replicationsource-data")?.password === "pw2",
  );
  await op.reason("app/b", "Applied");
});

Deno.test("operator wiring: no generated Binding is created while the OperatorConfig is not known", async () => {
  await using op = await runningOperator((kube) =>
    kube.put(
      operatorConfigType,
      operatorConfig({ defaultBackrest: { url: URL }, bindingGeneration: { policy: "Annotated" } }),
    )
  );
  const back = op.kube.outage(operatorConfigType);
  await op.until("the OperatorConfig's watch failed", () => op.logs.some(configWatchFailed));
  op.kube.put(
    volsyncTypes.ReplicationSource,
    replicationSource("app", "data", "restic-data", { [OPT_IN]: "true" }),
  );
  const bindingWrites = () => op.kube.writes().filter((c) => c.resource === bindingType.resource);
  const held = () =>
    sample(
      op.metrics.registry.render(),
      'backrest_volsync_config_holds_total{controller="volsync-autobinding"}',
    );
  await op.until("the auto-binding reconcile held or done", () => held() >= 1 || bindingWrites().length > 0);
  assert.deepEqual(bindingWrites(), []);
  back();
  await op.until("the generated Binding", () => op.stores[bindingType.resource]!.list().length === 1);
});

Deno.test("operator wiring: objects that come and go leave nothing behind in the operator's heap", async () => {
  // A leak of anything per object (a map keyed by it, a listener, a queue key) shows as heap that grows
  // with the objects that have gone; the soak sees it over hours as RSS, this sees it in seconds. The
  // Events' clock moves 11 minutes a round, past their aggregation window, as time would between rounds.
  v8.setFlagsFromString("--expose-gc");
  const gc = vm.runInNewContext("gc") as () => void;
  let offset = 0;
  await using op = await runningOperator(
    undefined,
    (kube) => new EventRecorder({ client: kube.client, component: "test", now: () => Date.now() + offset }),
  );
  const { binding: b, autoBinding, operatorConfig: c } = op.operator.controllers;
  const idle = () => [b, autoBinding, c].every((x) => x.queue.length === 0 && x.queue.inFlight === 0);
  const round = async (i: number) => {
    const ns = `churn-${i}`;
    volsyncWithRepo(op.kube, ns);
    op.kube.put(bindingType, binding(ns, "b", "data"));
    await op.reason(`${ns}/b`, "Applied");
    op.kube.remove(bindingType, ns, "b");
    op.kube.remove(volsyncTypes.ReplicationSource, ns, "data");
    op.kube.remove(secrets, ns, "restic-data");
    await op.until(`${ns} gone`, () => idle() && op.stores[leases.resource]!.list().length === 0);
    offset += 11 * 60_000;
  };
  /**
   * The heap's objects after a full collection (old and large-object spaces: not the code V8 compiles as
   * functions turn hot), once what the stand-ins recorded is dropped.
   */
  const heap = async () => {
    await sleep(50);
    op.kube.forget();
    op.logs.length = 0;
    for (const list of [op.backrest.calls, op.backrest.applied, op.backrest.connections]) list.length = 0;
    op.backrest.repos.clear();
    const stored = op.stores[events.resource]!;
    for (const e of stored.list()) stored.delete(e);
    for (let i = 0; i < 3; i++) gc();
    return v8.getHeapSpaceStatistics().filter((x) => /^(old|large_object)_space$/.test(x.space_name))
      .reduce((sum, x) => sum + x.space_used_size, 0);
  };
  // Warm-up: the first few hundred rounds grow the heap by about 1 KB each as V8 compiles and optimizes
  // the code they run; after them, what is left is the string intern table (bounded: cleared at 4 096).
  const warmup = 340, rounds = 300;
  for (let i = 0; i < warmup; i++) await round(i);
  const before = await heap();
  for (let i = warmup; i < warmup + rounds; i++) await round(i);
  const perRound = (await heap() - before) / rounds;
  // After this warm-up about 40 bytes a round were measured here; one Binding's state is a few KB (its
  // cached object, status, claim, an Event's series of about 700 bytes: kept, it made 635), so a leak of
  // any of it goes over.
  assert.ok(perRound < 256, `the heap grew ${Math.round(perRound)} bytes per object that came and went`);
});
