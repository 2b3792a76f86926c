import assert from "node:assert/strict";
import type { KubeObject } from "../kube/mod.ts";
import { compactObject, identityOnly, intern } from "./intern.ts";

const binding = (): KubeObject => ({
  apiVersion: "backrest.garethgeorge.com/v1alpha1",
  kind: "BackrestVolSyncBinding",
  metadata: {
    name: "b",
    namespace: "apps",
    uid: "u-1",
    resourceVersion: "7",
    labels: { a: "b" },
    managedFields: [{ manager: "kubectl", fieldsV1: { "f:spec": {} } }],
    ownerReferences: [{
      apiVersion: "volsync.backube/v1alpha1",
      kind: "ReplicationSource",
      name: "s",
      uid: "u-2",
    }],
  },
  spec: { source: { kind: "ReplicationSource", name: "s" } },
  status: {
    observedGeneration: 1,
    conditions: [{
      type: "Ready",
      status: "True",
      reason: "Applied",
      message: "Repo registered in Backrest",
    }],
  },
});

Deno.test("intern: compactObject drops managedFields only, and leaves its input alone", () => {
  const input = binding();
  const before = structuredClone(input);
  const out = compactObject(input);
  assert.deepEqual(input, before, "input not mutated");
  const { managedFields: _m, ...metadata } = before.metadata;
  assert.deepEqual(out, { ...before, metadata });
  assert.notEqual(out.status, input.status, "conditions copied, not shared with the input");
});

Deno.test("intern: compactObject keeps objects without status, conditions or owners as they are", () => {
  const cm: KubeObject = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "c" }, data: { k: "v" } };
  assert.deepEqual(compactObject(cm), cm);
  const odd: KubeObject = { metadata: { name: "x", namespace: "n" }, status: { conditions: [null, "x"] } };
  assert.deepEqual(compactObject(odd), odd);
});

Deno.test("intern: identityOnly keeps namespace, name and resourceVersion, nothing else", () => {
  const out = identityOnly(binding());
  assert.deepEqual(out, { metadata: { name: "b", namespace: "apps", resourceVersion: "7" } });
  assert.deepEqual(identityOnly({ metadata: { name: "cluster-wide" } }), {
    metadata: { name: "cluster-wide" },
  });
});

Deno.test("intern: intern returns an equal string, past the table's bound too", () => {
  for (let i = 0; i < 10_000; i++) assert.equal(intern(`value-${i % 5000}`), `value-${i % 5000}`);
  assert.equal(intern(undefined), undefined);
});
