/**
 * Proof that the control plane the other tests stand on is the real thing: VolSync's own schema is
 * enforced, watches deliver, the garbage collector collects, and RBAC denies.
 */
import assert from "node:assert/strict";
import { controlPlane } from "./harness/control_plane.ts";
import { waitUntil } from "./harness/process.ts";

const RS = "/apis/volsync.backube/v1alpha1";

function replicationSource(name: string, copyMethod: string) {
  return {
    apiVersion: "volsync.backube/v1alpha1",
    kind: "ReplicationSource",
    metadata: { name },
    spec: {
      sourcePVC: "data",
      trigger: { schedule: "0 * * * *" },
      restic: { repository: "repo", copyMethod },
    },
  };
}

Deno.test("smoke: the apiserver enforces VolSync's real ReplicationSource schema", async () => {
  const cp = await controlPlane();
  const ns = await cp.namespace("smoke-schema");
  const bad = await cp.api(
    "POST",
    `${RS}/namespaces/${ns}/replicationsources`,
    replicationSource("bad", "Bogus"),
  );
  const body = await bad.text();
  assert.equal(bad.status, 422, body);
  assert.match(body, /copyMethod/);
  const good = await cp.json(
    "POST",
    `${RS}/namespaces/${ns}/replicationsources`,
    replicationSource("good", "Clone"),
  );
  assert.equal((good as { metadata: { name: string } }).metadata.name, "good");
});

Deno.test("smoke: a watch sees a change", async () => {
  const cp = await controlPlane();
  const ns = await cp.namespace("smoke-watch");
  const list = await cp.json("GET", `/api/v1/namespaces/${ns}/configmaps`) as {
    metadata: { resourceVersion: string };
  };
  const ac = new AbortController();
  const res = await cp.api(
    "GET",
    `/api/v1/namespaces/${ns}/configmaps?watch=1&resourceVersion=${list.metadata.resourceVersion}&timeoutSeconds=30`,
  );
  assert.equal(res.status, 200);
  await cp.json("POST", `/api/v1/namespaces/${ns}/configmaps`, {
    metadata: { name: "seen" },
    data: { a: "1" },
  });
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  try {
    while (!buffer.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
    }
  } finally {
    ac.abort();
    await reader.cancel();
  }
  const event = JSON.parse(buffer.split("\n")[0]!) as {
    type: string;
    object: { metadata: { name: string } };
  };
  assert.equal(event.type, "ADDED");
  assert.equal(event.object.metadata.name, "seen");
});

Deno.test("smoke: the garbage collector deletes an object whose owner was deleted", async () => {
  const cp = await controlPlane();
  const ns = await cp.namespace("smoke-gc");
  const owner = await cp.json("POST", `/api/v1/namespaces/${ns}/configmaps`, {
    metadata: { name: "owner" },
  }) as {
    metadata: { uid: string };
  };
  await cp.json("POST", `/api/v1/namespaces/${ns}/configmaps`, {
    metadata: {
      name: "child",
      ownerReferences: [{ apiVersion: "v1", kind: "ConfigMap", name: "owner", uid: owner.metadata.uid }],
    },
  });
  const del = await cp.api("DELETE", `/api/v1/namespaces/${ns}/configmaps/owner`);
  await del.body?.cancel();
  await waitUntil("child collected", async () => {
    const res = await cp.api("GET", `/api/v1/namespaces/${ns}/configmaps/child`);
    await res.body?.cancel();
    return res.status === 404;
  }, { timeoutMs: 30_000, intervalMs: 200 });
});

Deno.test("smoke: a ServiceAccount token without rights gets 403", async () => {
  const cp = await controlPlane();
  const ns = await cp.namespace("smoke-rbac");
  const token = await cp.serviceAccountToken(ns, "nobody");
  const client = Deno.createHttpClient({ caCerts: [cp.ca] });
  try {
    const who = await fetch(`${cp.server}/apis/authentication.k8s.io/v1/selfsubjectreviews`, {
      client,
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ apiVersion: "authentication.k8s.io/v1", kind: "SelfSubjectReview" }),
    });
    const review = await who.json() as { status: { userInfo: { username: string } } };
    assert.equal(review.status.userInfo.username, `system:serviceaccount:${ns}:nobody`);
    const res = await fetch(`${cp.server}/api/v1/namespaces/${ns}/secrets`, {
      client,
      headers: { authorization: `Bearer ${token}` },
    });
    const body = await res.text();
    assert.equal(res.status, 403, body);
    assert.match(body, /forbidden/);
  } finally {
    client.close();
  }
});
