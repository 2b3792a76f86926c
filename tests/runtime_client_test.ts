/**
 * The Kubernetes client against the real apiserver: every verb of the contract, metadata-only reads that
 * never carry Secret data, a typed error that never echoes request bodies, in-cluster mode with token
 * re-read, and the Event recorder's aggregation.
 */
import assert from "node:assert/strict";
import { adminClient } from "./harness/admin_client.ts";
import { controlPlane } from "./harness/control_plane.ts";
import {
  configMaps,
  createClient,
  EventRecorder,
  events,
  inClusterConnection,
  isNamespaceTerminating,
  isRecord,
  KubeError,
  type KubeObject,
  secrets,
} from "../lib/kube/mod.ts";

function cm(ns: string, name: string, data: Record<string, string> = {}): KubeObject {
  return { apiVersion: "v1", kind: "ConfigMap", metadata: { name, namespace: ns }, data };
}

function dataOf(obj: KubeObject | null): unknown {
  return obj?.data;
}

Deno.test("client: every verb of the contract works against the apiserver", async () => {
  const { ns, kube, close } = await adminClient("rt-client");
  try {
    assert.equal(await kube.get(configMaps, "absent", { namespace: ns }), null);
    const created = await kube.create(configMaps, cm(ns, "a", { k: "1" }), { fieldManager: "test" });
    assert.equal(created.metadata.name, "a");
    const got = await kube.get(configMaps, "a", { namespace: ns });
    assert.deepEqual(dataOf(got), { k: "1" });

    await assert.rejects(
      kube.create(configMaps, cm(ns, "a")),
      (e) => e instanceof KubeError && e.status === 409,
    );

    const updated = await kube.update(configMaps, { ...created, data: { k: "2" } });
    assert.deepEqual(dataOf(updated), { k: "2" });
    // A stale resourceVersion conflicts.
    await assert.rejects(
      kube.update(configMaps, { ...created, data: { k: "3" } }),
      (e) => e instanceof KubeError && e.status === 409 && e.reason === "Conflict",
    );

    const patched = await kube.patch(configMaps, "a", { data: { m: "x" } }, { namespace: ns });
    assert.deepEqual(dataOf(patched), { k: "2", m: "x" });

    const applied = await kube.apply(configMaps, cm(ns, "b", { z: "1" }), {
      fieldManager: "rt-test",
      force: true,
    });
    assert.deepEqual(dataOf(applied), { z: "1" });
    const managers = applied.metadata.managedFields;
    assert.ok(Array.isArray(managers) && managers.some((m) => isRecord(m) && m.manager === "rt-test"));

    const page1 = await kube.list(configMaps, { namespace: ns, limit: 1 });
    assert.equal(page1.items.length, 1);
    assert.ok(page1.continue);
    const all = await kube.listAll(configMaps, { namespace: ns, limit: 1 });
    assert.deepEqual(
      all.items.map((i) => i.metadata.name).sort(),
      ["a", "b"].concat(
        all.items.some((i) => i.metadata.name === "kube-root-ca.crt") ? ["kube-root-ca.crt"] : [],
      ).sort(),
    );

    const labelled = await kube.list(configMaps, { namespace: ns, fieldSelector: "metadata.name=b" });
    assert.deepEqual(labelled.items.map((i) => i.metadata.name), ["b"]);

    assert.equal(await kube.delete(configMaps, "a", { namespace: ns }), true);
    assert.equal(await kube.delete(configMaps, "a", { namespace: ns }), false);
  } finally {
    close();
  }
});

Deno.test("client: metadata-only list and watch of Secrets never carry data or last-applied", async () => {
  const { ns, kube, close } = await adminClient("rt-meta");
  const secretValue = "s3cr3t-value-never-cached";
  try {
    const body = {
      apiVersion: "v1",
      kind: "Secret",
      metadata: {
        name: "repo",
        namespace: ns,
        annotations: {
          "kubectl.kubernetes.io/last-applied-configuration": JSON.stringify({ data: secretValue }),
        },
      },
      stringData: { RESTIC_PASSWORD: secretValue },
    };
    await kube.create(secrets, body);
    const page = await kube.listMetadata(secrets, { namespace: ns });
    assert.equal(page.items.length, 1);
    assert.equal(page.items[0]?.kind, "PartialObjectMetadata");
    assert.ok(!JSON.stringify(page.items).includes(secretValue));
    assert.ok(!JSON.stringify(page.items).includes(btoa(secretValue)));

    const abort = new AbortController();
    const seen: KubeObject[] = [];
    for await (
      const ev of kube.watchMetadata(secrets, {
        namespace: ns,
        resourceVersion: "0",
        timeoutSeconds: 5,
        signal: abort.signal,
      })
    ) {
      if (ev.type === "ADDED") {
        seen.push(ev.object);
        break;
      }
    }
    abort.abort();
    assert.equal(seen.length, 1);
    assert.ok(!JSON.stringify(seen).includes(secretValue));
    assert.ok(!JSON.stringify(seen).includes(btoa(secretValue)));
  } finally {
    close();
  }
});

Deno.test("client: errors carry status and reason but never the request body", async () => {
  const { ns, kube, close } = await adminClient("rt-err");
  try {
    const secretValue = "do-not-echo-this-value";
    const bad = {
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "Invalid_Name", namespace: ns },
      stringData: { p: secretValue },
    };
    const err = await kube.create(secrets, bad).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof KubeError);
    assert.equal(err.status, 422);
    assert.equal(err.reason, "Invalid");
    assert.ok(!err.message.includes(secretValue), err.message);
    assert.ok(!String(err.cause ?? "").includes(secretValue));

    const timeout = await kube.list(configMaps, { namespace: ns, timeoutMs: 1 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(timeout instanceof KubeError && timeout.reason === "Timeout", String(timeout));

    const abort = new AbortController();
    abort.abort(new DOMException("stop", "AbortError"));
    await assert.rejects(
      kube.list(configMaps, { namespace: ns, signal: abort.signal }),
      (e) => e instanceof DOMException,
    );
  } finally {
    close();
  }
});

Deno.test("client: in-cluster mode uses the service-account token and re-reads it when rotated", async () => {
  const cp = await controlPlane();
  const ns = await cp.namespace("rt-incluster");
  // Let the service account read configmaps in its namespace.
  await cp.json("POST", `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/roles`, {
    metadata: { name: "read" },
    rules: [{ apiGroups: [""], resources: ["configmaps"], verbs: ["get", "list"] }],
  });
  await cp.json("POST", `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/rolebindings`, {
    metadata: { name: "read" },
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "read" },
    subjects: [{ kind: "ServiceAccount", name: "op", namespace: ns }],
  });
  const dir = await Deno.makeTempDir({ prefix: "rt-sa-" });
  await Deno.writeTextFile(`${dir}/token`, "not-a-valid-token");
  await Deno.writeTextFile(`${dir}/ca.crt`, cp.ca);
  await Deno.writeTextFile(`${dir}/namespace`, ns);
  const url = new URL(cp.server);
  let now = 0;
  const conn = await inClusterConnection({
    dir,
    host: url.hostname,
    port: url.port,
    now: () => now,
    tokenRefreshMs: 60_000,
  });
  const kube = createClient(conn);
  try {
    assert.equal(conn.namespace, ns);
    await assert.rejects(
      kube.list(configMaps, { namespace: ns }),
      (e) => e instanceof KubeError && e.status === 401,
    );
    // The kubelet rotates the file; a minute later the client reads the new one.
    await Deno.writeTextFile(`${dir}/token`, await cp.serviceAccountToken(ns, "op"));
    now += 61_000;
    const page = await kube.list(configMaps, { namespace: ns });
    assert.ok(Array.isArray(page.items));
    await assert.rejects(
      kube.list(configMaps, { namespace: "default" }),
      (e) => e instanceof KubeError && e.status === 403,
    );
  } finally {
    conn.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("events: a flapping failure becomes one Event with a growing count", async () => {
  const { ns, kube, close } = await adminClient("rt-events");
  try {
    const obj = await kube.create(configMaps, cm(ns, "subject"));
    const recorder = new EventRecorder({ client: kube, component: "rt-test", burst: 3, refillMs: 3_600_000 });
    const stop = new AbortController();
    const running = recorder.start(stop.signal);
    for (let i = 0; i < 50; i++) {
      recorder.record(obj, "Warning", "BackrestAddRepoFailed", "BackrestAddRepoFailed (details omitted)");
      await new Promise((r) => setTimeout(r, 2));
    }
    recorder.record(obj, "Normal", "Applied", "Backrest repo applied");
    stop.abort();
    await running;
    const list = await kube.list(events, { namespace: ns });
    const warnings = list.items.filter((e) => e.reason === "BackrestAddRepoFailed");
    assert.equal(warnings.length, 1, "one Event, not fifty");
    const count = warnings[0]?.count;
    assert.ok(typeof count === "number" && count >= 2 && count <= 50, `count ${count}`);
    // The limiter (burst 3 per object) allowed at most 3 writes; the "Applied" Event may be the one dropped.
    assert.ok(list.items.length <= 2);
  } finally {
    close();
  }
});

Deno.test("client: a write into a namespace being deleted says so (cause NamespaceTerminating)", async () => {
  const { cp, ns, kube, close } = await adminClient("rt-terminating");
  try {
    // A finalizer holds the namespace in Terminating while the test writes into it.
    await kube.create(configMaps, {
      ...cm(ns, "held"),
      metadata: { name: "held", namespace: ns, finalizers: ["test/hold"] },
    });
    await cp.api("DELETE", `/api/v1/namespaces/${ns}`).then((r) => r.body?.cancel());
    let refused: unknown;
    for (let i = 0; i < 100 && refused === undefined; i++) {
      try {
        await kube.create(configMaps, cm(ns, `late-${i}`));
        await new Promise((r) => setTimeout(r, 100));
      } catch (e) {
        refused = e;
      }
    }
    assert.ok(refused instanceof KubeError && refused.status === 403, String(refused));
    assert.ok(isNamespaceTerminating(refused), `causes: ${JSON.stringify((refused as KubeError).causes)}`);
    assert.equal(isNamespaceTerminating(new KubeError(403, "Forbidden", "rbac says no")), false);
  } finally {
    await kube.patch(configMaps, "held", { metadata: { finalizers: null } }, { namespace: ns }).catch(
      () => {},
    );
    close();
  }
});
