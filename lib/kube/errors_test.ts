import assert from "node:assert/strict";
import { createClient } from "./client.ts";
import type { Connection } from "./connection.ts";
import { KubeError, parseRetryAfter } from "./errors.ts";
import { configMaps } from "./resource.ts";

Deno.test("parseRetryAfter() reads delta-seconds and HTTP dates, and nothing else", () => {
  assert.equal(parseRetryAfter("1"), 1);
  assert.equal(parseRetryAfter(" 30 "), 30);
  const now = Date.parse("2024-01-01T00:00:00Z");
  assert.equal(parseRetryAfter("Mon, 01 Jan 2024 00:00:05 GMT", now), 5);
  assert.equal(parseRetryAfter("Sun, 31 Dec 2023 23:59:00 GMT", now), 0, "a past date: no wait");
  assert.equal(parseRetryAfter(null), undefined);
  assert.equal(parseRetryAfter(""), undefined);
  assert.equal(parseRetryAfter("soon"), undefined);
  assert.equal(parseRetryAfter("-1"), undefined);
});

/** A Connection to a plain-HTTP server on loopback, answering with `handler`. */
function localServer(handler: (req: Request) => Response | Promise<Response>) {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, handler);
  const client = Deno.createHttpClient({});
  const connection: Connection = {
    server: `http://127.0.0.1:${server.addr.port}`,
    namespace: undefined,
    runsPrograms: false,
    prepare: () => Promise.resolve({ client, headers: {} }),
    invalidate: () => {},
    close: () => client.close(),
  };
  return {
    kube: createClient(connection),
    async close() {
      connection.close();
      await server.shutdown();
    },
  };
}

Deno.test("client: a 429 carries the answer's Retry-After, or the Status's retryAfterSeconds", async () => {
  let header = true;
  const s = localServer(() =>
    new Response(
      JSON.stringify({
        kind: "Status",
        code: 429,
        reason: "TooManyRequests",
        message: "storage is (re)initializing",
        details: { retryAfterSeconds: 3 },
      }),
      { status: 429, headers: header ? { "retry-after": "1" } : {} },
    )
  );
  try {
    const fromHeader = await s.kube.list(configMaps, { namespace: "n" }).catch((e) => e);
    assert.ok(fromHeader instanceof KubeError);
    assert.equal(fromHeader.status, 429);
    assert.equal(fromHeader.retryAfterSeconds, 1, "the header wins");
    header = false;
    const fromStatus = await s.kube.list(configMaps, { namespace: "n" }).catch((e) => e);
    assert.equal((fromStatus as KubeError).retryAfterSeconds, 3);
  } finally {
    await s.close();
  }
});

Deno.test("client: a watch reports that it is open before its first event", async () => {
  const sent: string[] = [];
  let release: () => void = () => {};
  const s = localServer(() => {
    const body = new ReadableStream<Uint8Array>({
      async start(c) {
        // Nothing is sent until the test saw the watch open: the headers alone must tell it.
        await new Promise<void>((r) => release = r);
        const obj = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "a", resourceVersion: "2" } };
        c.enqueue(new TextEncoder().encode(JSON.stringify({ type: "ADDED", object: obj }) + "\n"));
        c.close();
      },
    });
    return new Response(body, { headers: { "content-type": "application/json" } });
  });
  try {
    for await (
      const ev of s.kube.watch(configMaps, {
        namespace: "n",
        resourceVersion: "1",
        onOpen: () => {
          sent.push("open");
          release();
        },
      })
    ) sent.push(ev.type);
    assert.deepEqual(sent, ["open", "ADDED"]);
  } finally {
    await s.close();
  }
});
