import assert from "node:assert/strict";
import { type BackrestApi, BackrestError } from "../backrest/mod.ts";
import { Registry } from "../observe/mod.ts";
import type { KubeObject } from "../kube/mod.ts";
import { MemoryStore } from "../runtime/mod.ts";
import { countedBackrest, createOperatorMetrics, ReadyGauge, unusedBackrestSweeper } from "./metrics.ts";

Deno.test("ReadyGauge: one series per Binding, replaced when the reason changes, gone with the Binding", () => {
  const registry = new Registry();
  const m = createOperatorMetrics(registry);
  const ready = new ReadyGauge(m.bindingReady);
  ready.set("app", "b", false, "RepositorySecretNotFound");
  ready.set("app", "b", true, "Applied");
  ready.set("other", "b", false, "Paused");
  const text = registry.render();
  assert.match(
    text,
    /backrest_volsync_binding_ready\{binding_namespace="app",binding="b",reason="Applied"\} 1/,
  );
  assert.match(
    text,
    /backrest_volsync_binding_ready\{binding_namespace="other",binding="b",reason="Paused"\} 0/,
  );
  assert.doesNotMatch(text, /RepositorySecretNotFound/, "the old reason's series is gone");
  ready.drop("app/b");
  ready.drop("app/never-seen");
  assert.doesNotMatch(registry.render(), /binding_namespace="app"/);
  assert.match(registry.render(), /binding_namespace="other"/);
});

Deno.test("countedBackrest: every call counted by URL, method and outcome; errors pass through unchanged", async () => {
  const registry = new Registry();
  const m = createOperatorMetrics(registry);
  const refused = new BackrestError("unavailable", "AddRepo", "Backrest unreachable", {
    code: "unavailable",
  });
  const late = new BackrestError("deadline", "CheckRepoExists", "deadline");
  const api: BackrestApi = {
    url: "http://backrest:9898",
    addRepo: () => Promise.reject(refused),
    removeRepo: () => Promise.resolve(),
    checkRepoExists: () => Promise.reject(late),
    doRepoTask: () => Promise.resolve(0n),
    listRepoIds: () => Promise.resolve(["a"]),
    probe: () => Promise.resolve(),
  };
  const client = countedBackrest(() => api, m.backrestRequests)({ url: "http://backrest:9898" });
  await assert.rejects(client.addRepo({} as never), (e) => e === refused);
  await assert.rejects(client.checkRepoExists({} as never), (e) => e === late);
  assert.deepEqual(await client.listRepoIds(), ["a"]);
  await client.listRepoIds();
  const get = (method: string, code: string) =>
    m.backrestRequests.get({ backrest: "http://backrest:9898", method, code });
  assert.equal(get("AddRepo", "unavailable"), 1);
  assert.equal(get("CheckRepoExists", "deadline_exceeded"), 1);
  assert.equal(get("GetSummaryDashboard", "ok"), 2);
});

Deno.test("countedBackrest and the sweeper: a Backrest is labelled by origin only, and its series go with its last Binding", async () => {
  const registry = new Registry();
  const m = createOperatorMetrics(registry);
  const api: BackrestApi = {
    url: "",
    addRepo: () => Promise.resolve(),
    removeRepo: () => Promise.resolve(),
    checkRepoExists: () => Promise.resolve(true),
    doRepoTask: () => Promise.resolve(0n),
    listRepoIds: () => Promise.resolve([]),
    probe: () => Promise.resolve(),
  };
  // A tenant may write any path under an allowed Backrest: one series per origin, however many paths.
  for (const path of ["", "/a", "/b/c", "/tenant-chosen-1"]) {
    await countedBackrest(() => api, m.backrestRequests)({ url: `HTTP://Backrest:9898${path}` })
      .listRepoIds();
  }
  await countedBackrest(() => api, m.backrestRequests)({ url: "https://other.example" }).listRepoIds();
  assert.deepEqual([...m.backrestRequests.labelValues("backrest")].sort(), [
    "http://backrest:9898",
    "https://other.example:443",
  ]);
  const store = new MemoryStore<KubeObject>({});
  const bindingAt = (name: string, url: string): KubeObject => ({
    metadata: { namespace: "ns", name, resourceVersion: "1" },
    spec: { backrest: { url } },
  });
  const sweeper = unusedBackrestSweeper(m, store);
  const a = bindingAt("a", "http://backrest:9898/a");
  const b = bindingAt("b", "https://other.example/");
  store.upsert(a);
  store.upsert(b);
  const gone = store.delete(b)!;
  sweeper(gone);
  await new Promise((r) => setTimeout(r, 1100));
  assert.deepEqual([...m.backrestRequests.labelValues("backrest")], ["http://backrest:9898"]);
});
