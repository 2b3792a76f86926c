/**
 * Leader election and the manager against the real apiserver: two candidates racing for one Lease yield
 * exactly one leader; a leader that dies (stops renewing without releasing) is succeeded within the lease
 * duration; a leader that shuts down releases the Lease and the successor takes over at once; and the
 * manager runs reconcilers only on the leader while caches are warm on both replicas.
 */
import assert from "node:assert/strict";
import { controlPlane } from "./harness/control_plane.ts";
import { kubeProxy } from "./harness/kube_proxy.ts";
import { waitUntil } from "./harness/process.ts";
import { configMaps, createClient, kubeconfigConnection, leases, parseMicroTime } from "../lib/kube/mod.ts";
import { Controller, done, informerFor, LeaderElector, Manager } from "../lib/runtime/mod.ts";
import { createRuntimeMetrics } from "../lib/observe/mod.ts";

const TIMING = { leaseDurationMs: 3000, renewDeadlineMs: 2000, retryPeriodMs: 500 };

async function clients(n: number) {
  const cp = await controlPlane();
  const conns = await Promise.all(
    Array.from({ length: n }, () => kubeconfigConnection({ path: cp.kubeconfigPath })),
  );
  return {
    cp,
    conns,
    kubes: conns.map((c) => createClient(c)),
    close: () => conns.forEach((c) => c.close()),
  };
}

function candidate(
  kube: ReturnType<typeof createClient>,
  ns: string,
  identity: string,
  releaseOnCancel = true,
) {
  const elector = new LeaderElector({
    client: kube,
    namespace: ns,
    name: "lock",
    identity,
    releaseOnCancel,
    ...TIMING,
  });
  const stop = new AbortController();
  let leadingSince: number | undefined;
  const running = elector.run(stop.signal, async (signal) => {
    leadingSince = Date.now();
    await new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
  }).catch((e) => e);
  return {
    elector,
    identity,
    get leadingSince() {
      return leadingSince;
    },
    async stop() {
      stop.abort();
      return await running;
    },
  };
}

/** Waits until `check()` holds; returns how many ms that took. */
async function until(what: string, check: () => boolean, timeoutMs: number): Promise<number> {
  const t0 = Date.now();
  await waitUntil(what, () => Promise.resolve(check()), { timeoutMs, intervalMs: 20 });
  return Date.now() - t0;
}

Deno.test("leader: two racing candidates yield exactly one leader, recorded in the Lease", async () => {
  const { cp, kubes, close } = await clients(2);
  const ns = await cp.namespace("rt-lead-race");
  const [ka, kb] = kubes;
  assert.ok(ka && kb);
  const a = candidate(ka, ns, "a");
  const b = candidate(kb, ns, "b");
  try {
    await until("a leader", () => a.elector.isLeader() || b.elector.isLeader(), 10_000);
    // For two lease durations, never two leaders, always one.
    const end = Date.now() + 2 * TIMING.leaseDurationMs;
    while (Date.now() < end) {
      const leaders = [a, b].filter((c) => c.elector.isLeader()).length;
      assert.equal(leaders, 1);
      await new Promise((r) => setTimeout(r, 50));
    }
    const leader = a.elector.isLeader() ? a : b;
    const lease = await ka.get(leases, "lock", { namespace: ns });
    assert.equal(lease?.spec?.holderIdentity, leader.identity);
    assert.equal(lease?.spec?.leaseDurationSeconds, 3);
    assert.equal(lease?.spec?.leaseTransitions, 0);
    assert.match(lease?.spec?.renewTime ?? "", /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
  } finally {
    await a.stop();
    await b.stop();
    close();
  }
});

Deno.test("leader: a dead leader is succeeded within the lease duration; a released one at once", async () => {
  const { cp, kubes, close } = await clients(3);
  const ns = await cp.namespace("rt-lead-fail");
  const [ka, kb, kc] = kubes;
  assert.ok(ka && kb && kc);
  const a = candidate(ka, ns, "a", false);
  await until("a leads", () => a.elector.isLeader(), 10_000);
  const b = candidate(kb, ns, "b");
  await new Promise((r) => setTimeout(r, 1000));
  assert.ok(!b.elector.isLeader());
  // "Kill" a: it stops renewing and does not release (as a crashed process).
  const lastRenew = parseMicroTime((await ka.get(leases, "lock", { namespace: ns }))?.spec?.renewTime ?? "");
  await a.stop();
  const killedAt = Date.now();
  const took = await until("b takes over", () => b.elector.isLeader(), 10_000);
  assert.ok(
    took <= TIMING.leaseDurationMs + 1.2 * TIMING.retryPeriodMs + 500,
    `successor after ${took} ms (last renew ${killedAt - lastRenew} ms before the kill)`,
  );
  let lease = await kb.get(leases, "lock", { namespace: ns });
  assert.equal(lease?.spec?.holderIdentity, "b");
  assert.equal(lease?.spec?.leaseTransitions, 1);

  // Graceful shutdown releases: c takes over within about one retry period, not a lease duration.
  const c = candidate(kc, ns, "c");
  await new Promise((r) => setTimeout(r, 700));
  const released = Date.now();
  await b.stop();
  const handover = await until("c takes over", () => c.elector.isLeader(), 10_000);
  assert.ok(
    handover < TIMING.leaseDurationMs - 500,
    `handover after ${handover} ms (${Date.now() - released})`,
  );
  lease = await kc.get(leases, "lock", { namespace: ns });
  assert.equal(lease?.spec?.holderIdentity, "c");
  assert.equal(lease?.spec?.leaseTransitions, 2);
  await c.stop();
  lease = await kc.get(leases, "lock", { namespace: ns });
  assert.equal(lease?.spec?.holderIdentity ?? "", "");
  assert.equal(lease?.spec?.leaseDurationSeconds, 1);
  close();
});

Deno.test("manager: reconcilers run only on the leader; caches are warm on both replicas", async () => {
  const { cp, kubes, close } = await clients(2);
  const ns = await cp.namespace("rt-manager");
  const replicas = kubes.map((kube, i) => {
    const informer = informerFor(kube, configMaps, { namespaces: [ns] });
    const reconciled: string[] = [];
    const metrics = createRuntimeMetrics();
    const controller = new Controller({
      metrics,
      name: "configmap",
      reconcile: (key) => {
        // Read the store, not the event.
        if (informer.store.get(key)) reconciled.push(key);
        return Promise.resolve(done);
      },
    }).watch(informer);
    const manager = new Manager({
      caches: [informer],
      controllers: [controller],
      metrics,
      leaderElection: { client: kube, namespace: ns, name: "mgr", identity: `replica-${i}`, ...TIMING },
    });
    const stop = new AbortController();
    const running = manager.start(stop.signal);
    return { manager, informer, reconciled, metrics, stop, running };
  });
  try {
    const [k0] = kubes;
    assert.ok(k0);
    await until("both ready", () => replicas.every((r) => r.manager.ready()), 10_000);
    await until("one leader", () => replicas.some((r) => r.manager.elector?.isLeader()), 10_000);
    for (let i = 0; i < 5; i++) {
      await k0.create(configMaps, { metadata: { name: `x${i}`, namespace: ns }, data: {} });
    }
    const leader = replicas.find((r) => r.manager.elector?.isLeader());
    const follower = replicas.find((r) => !r.manager.elector?.isLeader());
    assert.ok(leader && follower);
    await until(
      "the leader reconciled all",
      () => ["0", "1", "2", "3", "4"].every((i) => leader.reconciled.includes(`${ns}/x${i}`)),
      10_000,
    );
    await until("the follower's cache has them too", () => follower.informer.store.size >= 5, 10_000);
    assert.deepEqual(follower.reconciled, []);
    assert.equal(leader.metrics.leaderElectionMasterStatus.get({ name: "mgr" }), 1);
    assert.equal(follower.metrics.leaderElectionMasterStatus.get({ name: "mgr" }), 0);
    assert.ok(leader.metrics.reconcileTotal.get({ controller: "configmap", result: "success" }) >= 5);

    // The leader shuts down: the follower takes over and reconciles new work.
    leader.stop.abort();
    await leader.running;
    await until("follower leads", () => follower.manager.elector?.isLeader() === true, 5_000);
    await k0.create(configMaps, { metadata: { name: "y", namespace: ns }, data: {} });
    await until("the new leader reconciles", () => follower.reconciled.includes(`${ns}/y`), 10_000);
  } finally {
    for (const r of replicas) {
      r.stop.abort();
      await r.running;
    }
    close();
  }
});

Deno.test("manager: a leader whose apiserver answers too slowly stops reconciling before another replica starts", async () => {
  const { cp, kubes, close } = await clients(1);
  const ns = await cp.namespace("rt-slow");
  // Replica "slow" reaches the apiserver through a proxy that can hold its requests (with the token of a
  // ServiceAccount: the proxy ends TLS, so a client certificate would not pass); replica "fast" directly.
  const proxy = await kubeProxy(cp, { as: "caller" });
  await cp.json("POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", {
    metadata: { name: `slow-${ns}` },
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "cluster-admin" },
    subjects: [{ kind: "ServiceAccount", name: "slow", namespace: ns }],
  });
  const tokenConfig = await proxy.kubeconfig({ token: await cp.serviceAccountToken(ns, "slow") });
  const slowConn = await kubeconfigConnection({ path: tokenConfig });
  const [fastKube] = kubes;
  assert.ok(fastKube);
  // Every reconcile takes 6 s (a slow AddRepo: longer than the 3 s Lease) and records when it ran; a key is
  // re-added as it finishes, so a leader always has work in flight.
  const runs: { replica: string; start: number; end: number }[] = [];
  const replica = (name: string, kube: ReturnType<typeof createClient>) => {
    const informer = informerFor(kube, configMaps, { namespaces: [ns] });
    const controller: Controller = new Controller({
      name: "configmap",
      concurrency: 2,
      shutdownTimeoutMs: 30_000, // far longer than the Lease: a lost lease must cut it short
      reconcile: async (key, ctx) => {
        const start = Date.now();
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, 6000);
          ctx.signal.addEventListener("abort", () => (clearTimeout(t), resolve()), { once: true });
        });
        runs.push({ replica: name, start, end: Date.now() });
        if (!ctx.signal.aborted) controller.enqueue(key);
        return done;
      },
    }).watch(informer);
    const manager = new Manager({
      caches: [informer],
      controllers: [controller],
      leaderElection: { client: kube, namespace: ns, name: "mgr", identity: name, ...TIMING },
    });
    const stop = new AbortController();
    const running = manager.start(stop.signal).catch((e) => e);
    return { manager, stop, running };
  };
  const slow = replica("slow", createClient(slowConn));
  try {
    await until("slow leads", () => slow.manager.elector?.isLeader() === true, 10_000);
    for (let i = 0; i < 2; i++) {
      await fastKube.create(configMaps, { metadata: { name: `w${i}`, namespace: ns }, data: {} });
    }
    await until("work in flight", () => runs.length >= 2, 10_000);
    const fast = replica("fast", fastKube);
    // Every request of the slow replica now takes 10 s: longer than the whole Lease.
    proxy.delayMs = 10_000;
    await until("fast takes over", () => fast.manager.elector?.isLeader() === true, 20_000);
    await until("fast reconciles", () => runs.some((r) => r.replica === "fast"), 10_000);
    const slowLast = Math.max(...runs.filter((r) => r.replica === "slow").map((r) => r.end));
    const fastFirst = Math.min(...runs.filter((r) => r.replica === "fast").map((r) => r.start));
    assert.ok(
      slowLast < fastFirst,
      `the slow leader's last reconcile ended ${slowLast - fastFirst} ms after the new leader's first began`,
    );
    fast.stop.abort();
    await fast.running;
  } finally {
    proxy.delayMs = 0;
    slow.stop.abort();
    await slow.running;
    slowConn.close();
    await proxy.close();
    close();
  }
});
