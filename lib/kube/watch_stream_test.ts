import assert from "node:assert/strict";
import { parseWatchStream } from "./watch_stream.ts";
import { parseKubeObject, parsePartialObjectMetadata } from "./object.ts";

function stream(chunks: string[]): ReadableStream<Uint8Array> {
  const enc = new TextEncoder();
  return new ReadableStream({
    start(c) {
      for (const ch of chunks) c.enqueue(enc.encode(ch));
      c.close();
    },
  });
}

Deno.test("watch stream: events split across chunks (even inside a UTF-8 character) are parsed", async () => {
  const line1 = JSON.stringify({
    type: "ADDED",
    object: { metadata: { name: "café", resourceVersion: "1" } },
  });
  const line2 = JSON.stringify({ type: "BOOKMARK", object: { metadata: { resourceVersion: "9" } } });
  const line3 = JSON.stringify({
    type: "ERROR",
    object: { kind: "Status", code: 410, reason: "Expired", message: "too old" },
  });
  const all = `${line1}\n${line2}\n${line3}`;
  const bytes = new TextEncoder().encode(all);
  const cut = bytes.indexOf(0xc3) + 1; // inside "é"
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      c.enqueue(bytes.slice(0, cut));
      c.enqueue(bytes.slice(cut));
      c.close();
    },
  });
  const events = [];
  for await (const e of parseWatchStream(body, parseKubeObject)) events.push(e);
  assert.deepEqual(events, [
    { type: "ADDED", object: { metadata: { name: "café", resourceVersion: "1" } } },
    { type: "BOOKMARK", resourceVersion: "9" },
    { type: "ERROR", status: { code: 410, reason: "Expired", message: "too old" } },
  ]);
});

Deno.test("watch stream: a malformed line is a SyntaxError", async () => {
  await assert.rejects(async () => {
    for await (
      const _ of parseWatchStream(stream(['{"type":"ADDED","object":{"metadata":7}}\n']), parseKubeObject)
    ) {
      // drain
    }
  }, SyntaxError);
  await assert.rejects(async () => {
    for await (const _ of parseWatchStream(stream(["not json\n"]), parseKubeObject)) {
      // drain
    }
  }, SyntaxError);
});

Deno.test("object: PartialObjectMetadata keeps no data, managedFields or last-applied annotation", () => {
  const parsed = parsePartialObjectMetadata({
    apiVersion: "meta.k8s.io/v1",
    kind: "PartialObjectMetadata",
    metadata: {
      name: "s",
      namespace: "n",
      managedFields: [{ manager: "x" }],
      annotations: {
        keep: "1",
        "kubectl.kubernetes.io/last-applied-configuration": '{"data":{"p":"c2VjcmV0"}}',
      },
    },
    data: { p: "c2VjcmV0" },
  });
  assert.deepEqual(parsed, {
    apiVersion: "meta.k8s.io/v1",
    kind: "PartialObjectMetadata",
    metadata: { name: "s", namespace: "n", annotations: { keep: "1" } },
  });
  assert.throws(() => parseKubeObject({ metadata: { labels: { a: 1 } } }), TypeError);
});
