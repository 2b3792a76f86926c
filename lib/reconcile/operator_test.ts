import assert from "node:assert/strict";
import type { KubeObject } from "../kube/mod.ts";
import { compactObject } from "../runtime/mod.ts";
import { compactBinding } from "./operator.ts";

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
