import assert from "node:assert/strict";
import { nullLogger } from "./logger.ts";
import { Registry } from "./metrics.ts";
import { ObserveServer, parseBindAddress } from "./server.ts";

Deno.test("server: /healthz, /readyz (after sync) and /metrics on their own addresses; stops on abort", async () => {
  const registry = new Registry();
  registry.counter({ name: "hits_total", help: "Hits." }).inc();
  let ready = false;
  const server = new ObserveServer({
    metricsAddress: "127.0.0.1:0",
    probeAddress: "127.0.0.1:0",
    registry,
    ready: () => ready,
    logger: nullLogger(),
  });
  const { metrics, probes } = server.listen();
  assert.ok(metrics && probes && metrics.port !== probes.port);
  const stop = new AbortController();
  const running = server.start(stop.signal);
  const get = async (port: number, path: string) => {
    const res = await fetch(`http://127.0.0.1:${port}${path}`);
    return { status: res.status, text: await res.text(), type: res.headers.get("content-type") };
  };
  assert.equal((await get(probes.port, "/healthz")).status, 200);
  assert.equal((await get(probes.port, "/readyz")).status, 503);
  ready = true;
  assert.equal((await get(probes.port, "/readyz")).status, 200);
  const m = await get(metrics.port, "/metrics");
  assert.match(m.text, /hits_total 1/);
  assert.match(m.type ?? "", /version=0\.0\.4/);
  assert.equal((await get(probes.port, "/metrics")).status, 404);
  stop.abort();
  await running;
});

Deno.test("server: bind addresses parse like controller-runtime's flags", () => {
  assert.deepEqual(parseBindAddress(":8080"), { hostname: "0.0.0.0", port: 8080 });
  assert.deepEqual(parseBindAddress("127.0.0.1:9"), { hostname: "127.0.0.1", port: 9 });
  assert.deepEqual(parseBindAddress("[::1]:8081"), { hostname: "::1", port: 8081 });
  assert.throws(() => parseBindAddress("8080"), RangeError);
});
