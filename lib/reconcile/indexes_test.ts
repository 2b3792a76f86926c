import assert from "node:assert/strict";
import { ANNOTATION_VOLSYNC_REF, bindingNameFor, LABEL_MANAGED, volsyncRefValue } from "../api/mod.ts";
import type { KubeObject } from "../kube/mod.ts";
import {
  bindingIndexers,
  INDEX_BY_AUTH_SECRET,
  INDEX_BY_GENERATED_NAME,
  INDEX_BY_REPO,
  INDEX_BY_REPOSITORY_SECRET,
  INDEX_BY_SOURCE,
  INDEX_BY_VOLSYNC_REF,
  parseVolsyncKey,
  volsyncIndexers,
  volsyncKey,
} from "./indexes.ts";

Deno.test("volsyncKey: one shape, namespace first, and it parses back; other keys do not parse", () => {
  const key = volsyncKey("app", "ReplicationDestination", "db.data");
  assert.equal(key, "app/ReplicationDestination/db.data");
  assert.deepEqual(parseVolsyncKey(key), {
    namespace: "app",
    kind: "ReplicationDestination",
    name: "db.data",
  });
  for (
    const other of [
      "app/b",
      "ReplicationSource/app/db",
      "app/replicationsource/db",
      "/ReplicationSource/db",
      "app/ReplicationSource/",
    ]
  ) {
    assert.equal(parseVolsyncKey(other), undefined, other);
  }
});

Deno.test("bindingIndexers: the VolSync object, auth Secret and repo id a Binding names, as the VolSync side keys them", () => {
  const binding = (labels: Record<string, string>, annotations: Record<string, string>): KubeObject => ({
    metadata: { namespace: "app", name: "b", labels, annotations },
    spec: {
      backrest: { url: "http://backrest:9898", authRef: { name: "auth" } },
      source: { kind: "ReplicationSource", name: "data" },
      repo: {},
    },
  });
  const mine = binding({}, {});
  assert.deepEqual(bindingIndexers[INDEX_BY_SOURCE](mine), [volsyncKey("app", "ReplicationSource", "data")]);
  assert.deepEqual(bindingIndexers[INDEX_BY_AUTH_SECRET](mine), ["app/auth"]);
  assert.deepEqual(bindingIndexers[INDEX_BY_REPO](mine), ["volsync-app-replicationsource-data"]);
  // Only managed Bindings are indexed by the object they were generated for.
  const ref = { [ANNOTATION_VOLSYNC_REF]: volsyncRefValue("ReplicationSource", "data") };
  assert.deepEqual(bindingIndexers[INDEX_BY_VOLSYNC_REF](mine), []);
  assert.deepEqual(bindingIndexers[INDEX_BY_VOLSYNC_REF](binding({}, ref)), []);
  assert.deepEqual(bindingIndexers[INDEX_BY_VOLSYNC_REF](binding({ [LABEL_MANAGED]: "true" }, ref)), [
    volsyncKey("app", "ReplicationSource", "data"),
  ]);
  // What does not parse is indexed where it can be, never thrown on.
  const broken: KubeObject = { metadata: { namespace: "app", name: "x" }, spec: { source: "nope" } };
  for (const f of Object.values(bindingIndexers)) assert.deepEqual(f(broken), []);
});

Deno.test("volsyncIndexers: the repository Secret and the prototype's generated name", () => {
  const obj: KubeObject = {
    metadata: { namespace: "app", name: "data" },
    spec: { restic: { repository: "restic" } },
  };
  const idx = volsyncIndexers("ReplicationDestination");
  assert.deepEqual(idx[INDEX_BY_REPOSITORY_SECRET](obj), ["app/restic"]);
  assert.deepEqual(idx[INDEX_BY_GENERATED_NAME](obj), [
    `app/${bindingNameFor("ReplicationDestination", "data")}`,
  ]);
  assert.deepEqual(
    idx[INDEX_BY_REPOSITORY_SECRET]({ metadata: { namespace: "app", name: "d" }, spec: {} }),
    [],
  );
});
