/**
 * The OperatorConfig end to end on real peers (kube-apiserver, etcd, Backrest v1.14.1, restic): found by
 * name and namespace, missing means auto-binding Disabled, its own status (Ready, observedGeneration),
 * an invalid config keeps the last valid settings, edits apply without a restart, pause and resume.
 * One operator and one Backrest serve the whole file; tests run in order and each sets the config it needs.
 */
import assert from "node:assert/strict";
import { createResticRepo } from "./harness/backrest.ts";
import type { BackrestInstance } from "./harness/backrest.ts";
import {
  binding,
  BINDINGS,
  cluster,
  create,
  putOperatorConfig,
  replicationSource,
  secret,
  settled,
  sharedOperator,
  waitForReason,
} from "./harness/operator.ts";
import { waitUntil } from "./harness/process.ts";

const CONFIG_NAME = "bvo-settings";
const OPT_IN = "backrest.garethgeorge.com/binding";

// No config at the start: the first test is about its absence.
const env = sharedOperator({
  operator: { configName: CONFIG_NAME, backrestTimeoutMs: 20_000, baselineConfig: false },
});

interface Condition {
  type: string;
  status: string;
  reason: string;
  message: string;
  observedGeneration?: number;
}
interface ConfigObject {
  metadata: { generation: number; resourceVersion: string; uid: string };
  spec: Record<string, unknown>;
  status?: { observedGeneration?: number; conditions?: Condition[] };
}

function configPath(configNs: string, name = CONFIG_NAME) {
  return `${BINDINGS}/namespaces/${configNs}/backrestvolsyncoperatorconfigs/${name}`;
}

/** Creates or replaces the config's spec (loopback storage admitted: operatorConfigSpec); returns the generation. */
function putConfig(configNs: string, spec: Record<string, unknown>, name = CONFIG_NAME): Promise<number> {
  return putOperatorConfig(configNs, spec, name);
}

async function deleteConfig(configNs: string) {
  const cp = await cluster();
  await cp.api("DELETE", configPath(configNs)).then((r) => r.body?.cancel());
}

/** Waits until the config's Ready condition describes `generation` with `reason`; returns the config. */
async function waitForConfig(configNs: string, generation: number, reason: string): Promise<ConfigObject> {
  const cp = await cluster();
  let last: ConfigObject | undefined;
  await waitUntil(`OperatorConfig Ready reason ${reason} at generation ${generation}`, async () => {
    last = await cp.json("GET", configPath(configNs)) as ConfigObject;
    const ready = last.status?.conditions?.find((c) => c.type === "Ready");
    return last.status?.observedGeneration === generation && ready?.observedGeneration === generation &&
      ready.reason === reason;
  }, { timeoutMs: 20_000, intervalMs: 50 }).catch((e) => {
    throw new Error(`${(e as Error).message}; last status: ${JSON.stringify(last?.status)}`);
  });
  return last!;
}

async function bindingStatus(ns: string, name: string): Promise<number> {
  const cp = await cluster();
  const res = await cp.api("GET", `${BINDINGS}/namespaces/${ns}/backrestvolsyncbindings/${name}`);
  await res.body?.cancel();
  return res.status;
}

async function backrestHas(backrest: BackrestInstance, id: string): Promise<boolean> {
  return (await backrest.getConfig()).repos.some((r) => r.id === id);
}

/** Overwrites the stored object in etcd, as an object stored before a stricter schema would be. */
async function writeToEtcd(key: string, edit: (obj: Record<string, unknown>) => void) {
  const cp = await cluster();
  const range = await fetch(`${cp.etcdEndpoint}/v3/kv/range`, {
    method: "POST",
    body: JSON.stringify({ key: btoa(key) }),
  });
  const body = await range.json() as { kvs?: { value: string }[] };
  const stored = body.kvs?.[0]?.value;
  assert.ok(stored, `etcd holds ${key}`);
  const obj = JSON.parse(atob(stored)) as Record<string, unknown>;
  edit(obj);
  const put = await fetch(`${cp.etcdEndpoint}/v3/kv/put`, {
    method: "POST",
    body: JSON.stringify({ key: btoa(key), value: btoa(JSON.stringify(obj)) }),
  });
  assert.equal(put.status, 200, await put.text());
}

Deno.test("operator config: missing means the defaults: auto-binding Disabled, loopback storage refused, Bindings still reconciled", async () => {
  const { op, backrest, configNs } = await env();
  const cp = await cluster();
  const ns = await cp.namespace("nocfg");
  const repo = await createResticRepo();
  // A config of the same kind under another name, and one with our name in another namespace: not ours.
  await putConfig(
    configNs,
    { bindingGeneration: { policy: "All" }, defaultBackrest: { url: backrest.url } },
    "other",
  );
  await putConfig(ns, { bindingGeneration: { policy: "All" }, defaultBackrest: { url: backrest.url } });
  await create(
    ns,
    secret("s", { RESTIC_REPOSITORY: repo.uri, RESTIC_PASSWORD: repo.password }),
    replicationSource("src", "s", { annotations: { [OPT_IN]: "true" } }),
    binding("mine", { url: backrest.url, source: "src", repo: { idOverride: `mine-${ns}` } }),
  );
  // The defaults refuse a repository on loopback (this test's rest-server): Backrest's own pod, in a cluster.
  const refused = await waitForReason(cp, ns, "mine", "RepositoryLocationNotAllowed");
  assert.match(refused.message, /loopback address.*allowLocalAddresses/);
  await settled(op);
  assert.equal(op.operator.settings.current.found, false);
  assert.equal(op.operator.settings.current.spec.bindingGeneration.policy, "Disabled");
  assert.equal(await bindingStatus(ns, "bvsb-rs-src"), 404, "no managed Binding without a config");
  const other = await cp.json("GET", configPath(configNs, "other")) as ConfigObject;
  assert.equal(other.status, undefined, "a config the operator does not follow gets no status");
  await cp.api("DELETE", configPath(configNs, "other")).then((r) => r.body?.cancel());
});

Deno.test("operator config: a valid config is Accepted at its generation and edits apply without a restart", async () => {
  const { op, backrest, configNs } = await env();
  const cp = await cluster();
  const ns = await cp.namespace("edit");
  const repo = await createResticRepo();
  await create(
    ns,
    secret("s", { RESTIC_REPOSITORY: repo.uri, RESTIC_PASSWORD: repo.password }),
    replicationSource("src", "s", { annotations: { [OPT_IN]: "yes" } }),
  );
  try {
    const g1 = await putConfig(configNs, {
      defaultBackrest: { url: backrest.url },
      bindingGeneration: { policy: "Annotated" },
    });
    const c1 = await waitForConfig(configNs, g1, "Accepted");
    const ready = c1.status?.conditions?.find((c) => c.type === "Ready");
    assert.equal(ready?.status, "True");
    assert.match(ready?.message ?? "", /Annotated/);
    assert.equal(op.operator.settings.current.found, true);
    await waitForReason(cp, ns, "bvsb-rs-src", "Applied");
    assert.ok(await backrestHas(backrest, `volsync-${ns}-replicationsource-src`));

    // Edit: policy Disabled. The managed Binding goes; the repo stays (deletionPolicy Retain).
    const g2 = await putConfig(configNs, {
      defaultBackrest: { url: backrest.url },
      bindingGeneration: { policy: "Disabled" },
      resyncPeriod: "5m",
    });
    assert.equal(g2, g1 + 1);
    await waitForConfig(configNs, g2, "Accepted");
    await waitUntil("managed Binding deleted", async () => await bindingStatus(ns, "bvsb-rs-src") === 404, {
      timeoutMs: 20_000,
    });
    assert.equal(op.operator.settings.current.spec.resyncPeriodMs, 300_000);
    assert.ok(await backrestHas(backrest, `volsync-${ns}-replicationsource-src`), "Retain keeps the repo");
  } finally {
    await deleteConfig(configNs);
  }
  await waitUntil("defaults back in force", () => Promise.resolve(!op.operator.settings.current.found));
});

Deno.test("operator config: an invalid config is reported in its status and the last valid settings stay in force", async () => {
  const { op, backrest, configNs } = await env();
  const cp = await cluster();
  const ns = await cp.namespace("invalid");
  const repo = await createResticRepo();
  try {
    const g1 = await putConfig(configNs, {
      defaultBackrest: { url: backrest.url },
      bindingGeneration: { policy: "Annotated" },
      resyncPeriod: "7m",
    });
    const valid = await waitForConfig(configNs, g1, "Accepted");

    // The CRD's schema and CEL rules refuse what lib/api refuses, so an invalid config only reaches the
    // operator the way one stored under an older, looser schema does: straight from etcd.
    const rejected = await cp.api("PUT", configPath(configNs), {
      ...valid,
      spec: { ...valid.spec, bindingGeneration: { policy: "Sometimes" } },
    });
    assert.equal(rejected.status, 422, "the apiserver refuses the invalid policy");
    await rejected.body?.cancel();
    await writeToEtcd(
      `/registry/backrest.garethgeorge.com/backrestvolsyncoperatorconfigs/${configNs}/${CONFIG_NAME}`,
      (obj) => {
        const meta = obj.metadata as Record<string, unknown>;
        meta.generation = g1 + 1;
        obj.spec = {
          defaultBackrest: { url: "ftp://nowhere" },
          bindingGeneration: { policy: "Sometimes" },
          resyncPeriod: "0s",
        };
      },
    );
    const bad = await waitForConfig(configNs, g1 + 1, "InvalidSpec");
    const ready = bad.status?.conditions?.find((c) => c.type === "Ready");
    assert.equal(ready?.status, "False");
    assert.match(ready?.message ?? "", /last valid settings stay in force/);
    assert.match(ready?.message ?? "", /spec\.bindingGeneration\.policy/);
    assert.match(ready?.message ?? "", /spec\.defaultBackrest\.url/);
    assert.match(ready?.message ?? "", /spec\.resyncPeriod/);
    const s = op.operator.settings.current.spec;
    assert.equal(s.bindingGeneration.policy, "Annotated", "the last valid policy stays");
    assert.equal(s.defaultBackrest.url, backrest.url);
    assert.equal(s.resyncPeriodMs, 420_000);
    await waitUntil("a Warning Event on the config", async () => {
      const ev = await cp.json("GET", `/api/v1/namespaces/${configNs}/events`) as {
        items: { reason: string; involvedObject: { name: string } }[];
      };
      return ev.items.some((e) => e.reason === "InvalidSpec" && e.involvedObject.name === CONFIG_NAME);
    }, { timeoutMs: 10_000 });

    // Still working on the last valid settings: an annotated object gets its Binding.
    await create(
      ns,
      secret("s", { RESTIC_REPOSITORY: repo.uri, RESTIC_PASSWORD: repo.password }),
      replicationSource("src", "s", { annotations: { [OPT_IN]: "1" } }),
    );
    await waitForReason(cp, ns, "bvsb-rs-src", "Applied");

    // A fix through the API is accepted again.
    const g3 = await putConfig(configNs, {
      defaultBackrest: { url: backrest.url },
      bindingGeneration: { policy: "Annotated" },
    });
    await waitForConfig(configNs, g3, "Accepted");
    assert.equal(op.operator.settings.current.spec.resyncPeriodMs, 600_000);
  } finally {
    await deleteConfig(configNs);
  }
});

Deno.test("operator config: pausing stops Backrest calls and auto-binding at once; resuming applies", async () => {
  const { op, backrest, configNs } = await env();
  const cp = await cluster();
  const ns = await cp.namespace("pause");
  const repo = await createResticRepo();
  const spec = { defaultBackrest: { url: backrest.url }, bindingGeneration: { policy: "Annotated" } };
  try {
    const g1 = await putConfig(configNs, { ...spec, paused: true });
    const c = await waitForConfig(configNs, g1, "Accepted");
    assert.match(c.status?.conditions?.find((x) => x.type === "Ready")?.message ?? "", /paused/);
    await create(
      ns,
      secret("s", { RESTIC_REPOSITORY: repo.uri, RESTIC_PASSWORD: repo.password }),
      replicationSource("src", "s", { annotations: { [OPT_IN]: "true" } }),
      binding("b", { url: backrest.url, source: "src", repo: { idOverride: `paused-${ns}` } }),
    );
    const paused = await waitForReason(cp, ns, "b", "Paused");
    assert.equal(paused.status, "False");
    await settled(op);
    assert.equal(await bindingStatus(ns, "bvsb-rs-src"), 404, "no managed Binding while paused");
    const held = (await backrest.getConfig()).repos.map((r) => r.id);
    assert.ok(!held.includes(`paused-${ns}`), "Backrest holds nothing for the paused Binding");
    assert.ok(!held.includes(`volsync-${ns}-replicationsource-src`));

    const g2 = await putConfig(configNs, { ...spec, paused: false });
    await waitForConfig(configNs, g2, "Accepted");
    await waitForReason(cp, ns, "b", "Applied");
    await waitForReason(cp, ns, "bvsb-rs-src", "Applied");
    assert.ok(await backrestHas(backrest, `paused-${ns}`));
    assert.ok(await backrestHas(backrest, `volsync-${ns}-replicationsource-src`));
  } finally {
    await deleteConfig(configNs);
  }
});

Deno.test("operator config: resyncPeriod at the CRD's bounds is read as the apiserver's CEL rule reads it", async () => {
  const { op, configNs } = await env();
  const cp = await cluster();
  try {
    // Go truncates the half nanosecond: exactly 24h, admitted by CEL and so accepted by the operator.
    const g = await putConfig(configNs, { resyncPeriod: "24h0.5ns" });
    await waitForConfig(configNs, g, "Accepted");
    assert.equal(op.operator.settings.current.spec.resyncPeriodMs, 86_400_000);
    for (const tooLong of ["24h1ns", "86400000000001ns"]) {
      const current = await cp.json("GET", configPath(configNs)) as ConfigObject;
      const res = await cp.api("PUT", configPath(configNs), { ...current, spec: { resyncPeriod: tooLong } });
      assert.equal(res.status, 422, `${tooLong} is refused by the CRD`);
      await res.body?.cancel();
    }
  } finally {
    await deleteConfig(configNs);
  }
});
