/**
 * The informer against the real apiserver under the failures it exists to survive: an apiserver restart
 * mid-watch, an etcd compaction that forces 410 and a relist, a watch whose TCP path stalls silently, and
 * a 10 000-object paginated list. Each test keeps a model built only from the handler events and checks
 * it equals the apiserver's truth: nothing lost, nothing doubled.
 */
import assert from "node:assert/strict";
import { adminClient } from "./harness/admin_client.ts";
import { waitUntil } from "./harness/process.ts";
import {
  configMaps,
  createClient,
  type KubeClient,
  kubeconfigConnection,
  type KubeObject,
} from "../lib/kube/mod.ts";
import { dropManagedFields, Informer, type InformerEvent, informerFor } from "../lib/runtime/mod.ts";

/** A loopback TCP proxy that can stall (stop forwarding on open connections) or refuse. */
class Proxy {
  readonly listener: Deno.TcpListener;
  readonly conns = new Set<{ a: Deno.Conn; b: Deno.Conn; stalled: boolean }>();
  refusing = false;
  readonly #done: Promise<void>;

  constructor(targetPort: number) {
    this.listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.#done = this.#accept(targetPort);
  }

  get port(): number {
    return this.listener.addr.port;
  }

  async #accept(targetPort: number): Promise<void> {
    for await (const a of this.listener) {
      if (this.refusing) {
        a.close();
        continue;
      }
      const b = await Deno.connect({ hostname: "127.0.0.1", port: targetPort }).catch(() => undefined);
      if (!b) {
        a.close();
        continue;
      }
      const c = { a, b, stalled: false };
      this.conns.add(c);
      const pump = async (from: Deno.Conn, to: Deno.Conn) => {
        const buf = new Uint8Array(64 * 1024);
        try {
          while (true) {
            const n = await from.read(buf);
            if (n === null) break;
            if (c.stalled) await new Promise(() => {}); // hold the bytes forever: a silent, stuck path
            let off = 0;
            while (off < n) off += await to.write(buf.subarray(off, n));
          }
        } catch { /* closed */ }
        try {
          a.close();
        } catch { /* already */ }
        try {
          b.close();
        } catch { /* already */ }
        this.conns.delete(c);
      };
      pump(a, b);
      pump(b, a);
    }
  }

  /** Open connections stop forwarding (stay open); new ones work. */
  stall(): void {
    for (const c of this.conns) c.stalled = true;
  }

  /** Drops every open connection. */
  dropAll(): void {
    for (const c of this.conns) {
      try {
        c.a.close();
      } catch { /* already */ }
      try {
        c.b.close();
      } catch { /* already */ }
    }
    this.conns.clear();
  }

  async close(): Promise<void> {
    this.listener.close();
    this.dropAll();
    await this.#done.catch(() => {});
  }
}

/** What the handlers told us, plus a count of "add" for keys the model already had (doubles). */
class Model {
  readonly objects = new Map<string, string>();
  doubled = 0;
  missedDeletes = 0;

  handle(e: InformerEvent<KubeObject>): void {
    const key = `${e.object.metadata.namespace}/${e.object.metadata.name}`;
    const rv = e.object.metadata.resourceVersion ?? "";
    if (e.type === "add") {
      if (this.objects.has(key)) this.doubled++;
      this.objects.set(key, rv);
    } else if (e.type === "update") this.objects.set(key, rv);
    else if (e.type === "delete") {
      if (!this.objects.delete(key)) this.missedDeletes++;
    }
  }
}

async function truth(kube: KubeClient, ns: string): Promise<Map<string, string>> {
  const all = await kube.listAll(configMaps, { namespace: ns, labelSelector: "rt=1" });
  return new Map(all.items.map((i) => [`${ns}/${i.metadata.name}`, i.metadata.resourceVersion ?? ""]));
}

/** Waits until the model holds exactly `expected`; then no add came twice and no delete was missed. */
async function assertModelIs(model: Model, expected: Map<string, string>, what: string): Promise<void> {
  const sorted = (m: Map<string, string>) => JSON.stringify([...m].sort());
  await waitUntil(what, () => Promise.resolve(sorted(model.objects) === sorted(expected)), {
    timeoutMs: 20_000,
  });
  assert.equal(model.doubled, 0);
  assert.equal(model.missedDeletes, 0);
}

function cm(ns: string, name: string, v: string): KubeObject {
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name, namespace: ns, labels: { rt: "1" } },
    data: { v },
  };
}

/**
 * {@linkcode adminClient}, plus a second client (`watchKube`, for the informer) that reaches the apiserver through
 * a {@linkcode Proxy}; `close()` closes the proxy and both connections.
 */
async function setupBehindProxy(prefix: string) {
  const direct = await adminClient(prefix);
  const { cp } = direct;
  const proxy = new Proxy(Number(new URL(cp.server).port));
  // Same credentials, other address: a copy of the kubeconfig pointing at the proxy.
  const text = (await Deno.readTextFile(cp.kubeconfigPath)).replace(
    cp.server,
    `https://127.0.0.1:${proxy.port}`,
  );
  const path = await Deno.makeTempFile({ suffix: ".kubeconfig" });
  await Deno.writeTextFile(path, text);
  const watchConn = await kubeconfigConnection({ path });
  return {
    ...direct,
    proxy,
    watchKube: createClient(watchConn),
    async close() {
      await proxy.close();
      direct.close();
      watchConn.close();
    },
  };
}

async function mutate(kube: KubeClient, ns: string, round: number, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    const name = `o${(round * 7 + i) % 25}`;
    for (let attempt = 0;; attempt++) {
      try {
        const existing = await kube.get(configMaps, name, { namespace: ns, timeoutMs: 2000 });
        if (!existing) await kube.create(configMaps, cm(ns, name, `${round}`), { timeoutMs: 2000 });
        else if ((round + i) % 3 === 0) {
          await kube.delete(configMaps, name, { namespace: ns, timeoutMs: 2000 });
        } else {await kube.update(configMaps, { ...existing, data: { v: `${round}-${i}` } }, {
            timeoutMs: 2000,
          });}
        break;
      } catch {
        if (attempt > 100) throw new Error("apiserver did not come back");
        await new Promise((r) => setTimeout(r, 200)); // the apiserver is restarting
      }
    }
  }
}

function start(informer: Informer<KubeObject>) {
  const model = new Model();
  informer.addHandler((e) => model.handle(e));
  const stop = new AbortController();
  const running = informer.start(stop.signal);
  return {
    model,
    async stop() {
      stop.abort();
      await running;
    },
  };
}

Deno.test({
  name: "informer: an apiserver restart mid-watch loses no change",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const { cp, ns, kube, close } = await adminClient("rt-restart");
    const informer = informerFor(kube, configMaps, {
      namespaces: [ns],
      labelSelector: "rt=1",
      transform: dropManagedFields,
      backoff: () => 200,
    });
    const run = start(informer);
    try {
      await mutate(kube, ns, 0, 10);
      assert.ok(await informer.waitForSync(AbortSignal.timeout(10_000)));
      const writer = (async () => {
        for (let round = 1; round < 12; round++) await mutate(kube, ns, round, 5);
      })();
      await new Promise((r) => setTimeout(r, 150));
      await cp.restartApiserver();
      await writer;
      const expected = await truth(kube, ns);
      await assertModelIs(run.model, expected, "the model equals the apiserver");
      const stats = informer.stats.get(ns);
      assert.ok(stats && stats.watches >= 2, `watches ${stats?.watches}`);
      assert.equal(informer.store.size, expected.size);
    } finally {
      await run.stop();
      close();
    }
  },
});

Deno.test({
  name: "informer: etcd compaction forces 410, and the relist neither loses nor doubles state",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const { cp, ns, kube, watchKube, proxy, close } = await setupBehindProxy("rt-compact");
    const informer = informerFor(watchKube, configMaps, {
      namespaces: [ns],
      labelSelector: "rt=1",
      backoff: () => 200,
    });
    const run = start(informer);
    try {
      await mutate(kube, ns, 0, 20);
      assert.ok(await informer.waitForSync(AbortSignal.timeout(10_000)));
      await waitUntil("initial state", async () => run.model.objects.size === (await truth(kube, ns)).size, {
        timeoutMs: 20_000,
      });
      // Cut the informer off, change things, compact etcd and restart the apiserver (its watch cache
      // starts over at the compacted revision): the informer's resourceVersion is now history.
      proxy.refusing = true;
      proxy.dropAll();
      for (let round = 1; round < 6; round++) await mutate(kube, ns, round, 10);
      await cp.compactEtcd();
      await cp.restartApiserver();
      await mutate(kube, ns, 6, 3);
      proxy.refusing = false;
      const expected = await truth(kube, ns);
      await assertModelIs(run.model, expected, "the model equals the apiserver after relist");
      const stats = informer.stats.get(ns);
      assert.ok(stats && stats.expired >= 1, `expected a 410; stats ${JSON.stringify(stats)}`);
      assert.ok(stats.lists >= 2);
    } finally {
      await run.stop();
      await close();
    }
  },
});

Deno.test({
  name: "informer: a silently stalled watch is detected by the watchdog and restarted",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const { ns, kube, watchKube, proxy, close } = await setupBehindProxy("rt-stall");
    const informer = informerFor(watchKube, configMaps, {
      namespaces: [ns],
      labelSelector: "rt=1",
      watchTimeoutSeconds: 3,
      watchTimeoutJitter: 0,
      stallGraceMs: 1000,
      backoff: () => 200,
    });
    const run = start(informer);
    try {
      assert.ok(await informer.waitForSync(AbortSignal.timeout(10_000)));
      await new Promise((r) => setTimeout(r, 300)); // the watch is open
      proxy.stall();
      const t0 = Date.now();
      await kube.create(configMaps, cm(ns, "after-stall", "1"));
      await waitUntil(
        "the change made during the stall arrives",
        () => Promise.resolve(run.model.objects.has(`${ns}/after-stall`)),
        { timeoutMs: 20_000 },
      );
      const took = Date.now() - t0;
      const stats = informer.stats.get(ns);
      assert.ok(stats && stats.stalls >= 1, `stats ${JSON.stringify(stats)}`);
      assert.ok(took < 8000, `recovered after ${took} ms`);
    } finally {
      await run.stop();
      await close();
    }
  },
});

Deno.test({
  name: "informer: 10 000 ConfigMaps are listed in pages and cached",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const { ns, kube, close } = await adminClient("rt-10k");
    try {
      const total = 10_000;
      let next = 0;
      const t0 = Date.now();
      await Promise.all(Array.from({ length: 24 }, async () => {
        while (next < total) {
          const i = next++;
          await kube.create(configMaps, cm(ns, `c${i}`, `${i}`));
        }
      }));
      const createdMs = Date.now() - t0;
      let pages = 0;
      const informer = new Informer({
        name: "configmaps",
        namespaces: [ns],
        pageSize: 500,
        transform: dropManagedFields,
        listWatch: {
          list: (o) => {
            pages++;
            return kube.list(configMaps, { ...o, labelSelector: "rt=1" });
          },
          watch: (o) => kube.watch(configMaps, { ...o, labelSelector: "rt=1" }),
        },
      });
      const run = start(informer);
      try {
        const t1 = Date.now();
        assert.ok(await informer.waitForSync(AbortSignal.timeout(60_000)));
        const syncMs = Date.now() - t1;
        assert.equal(informer.store.size, total);
        assert.equal(run.model.objects.size, total);
        assert.equal(pages, total / 500);
        // deno-lint-ignore no-console -- the measured figures belong in the test output
        console.log(
          `created ${total} in ${createdMs} ms; listed in ${pages} pages and synced in ${syncMs} ms`,
        );
      } finally {
        await run.stop();
      }
    } finally {
      close();
    }
  },
});
