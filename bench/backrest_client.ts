/**
 * Client overhead: the same GetSummaryDashboard request sent N times through `BackrestApi.listRepoIds`
 * and as a raw `fetch` (hand-encoded binary Connect request), against a local stub that answers at once
 * (so the difference is the client's own cost) and against the real Backrest. Also the cost of
 * `desiredRepo()` (mapping + stretched hash). Prints one JSON object; target: overhead < 1 ms per call.
 *
 * Usage: deno run -A bench/backrest_client.ts [--iterations=N]
 */

import { create, toBinary } from "@bufbuild/protobuf";
import { SummaryDashboardResponseSchema } from "../gen/v1/service_pb.ts";
import { createBackrestClient, desiredRepo } from "../lib/backrest/mod.ts";
import { startBackrest } from "../tests/harness/backrest.ts";

const iterations = Number(Deno.args.find((a) => a.startsWith("--iterations="))?.split("=")[1] ?? 2000);
const warmup = Math.min(200, iterations);

function stats(samples: number[]): { p50: number; p90: number; p99: number; mean: number } {
  const s = [...samples].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? 0;
  const round = (x: number) => Math.round(x * 1000) / 1000;
  return {
    p50: round(at(0.5)),
    p90: round(at(0.9)),
    p99: round(at(0.99)),
    mean: round(s.reduce((a, b) => a + b, 0) / s.length),
  };
}

async function measure(fn: () => Promise<unknown>): Promise<number[]> {
  for (let i = 0; i < warmup; i++) await fn();
  const out: number[] = [];
  for (let i = 0; i < iterations; i++) {
    const t = performance.now();
    await fn();
    out.push(performance.now() - t);
  }
  return out;
}

async function compare(url: string) {
  const api = createBackrestClient({ url, timeoutMs: 10_000 });
  const raw = async () => {
    const res = await fetch(`${url}/v1.Backrest/GetSummaryDashboard`, {
      method: "POST",
      headers: {
        "content-type": "application/proto",
        "connect-protocol-version": "1",
        "connect-timeout-ms": "10000",
      },
      body: new Uint8Array(0),
    });
    if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
    await res.arrayBuffer();
  };
  // Interleave the two so drift (GC, CPU frequency) hits both alike.
  const client: number[] = [];
  const fetched: number[] = [];
  for (let round = 0; round < 4; round++) {
    client.push(...await measure(() => api.listRepoIds()));
    fetched.push(...await measure(raw));
  }
  const c = stats(client);
  const f = stats(fetched);
  api.close();
  return {
    client_ms: c,
    raw_fetch_ms: f,
    overhead_ms: {
      p50: Math.round((c.p50 - f.p50) * 1000) / 1000,
      mean: Math.round((c.mean - f.mean) * 1000) / 1000,
    },
  };
}

const body = toBinary(
  SummaryDashboardResponseSchema,
  create(SummaryDashboardResponseSchema, {
    repoSummaries: Array.from({ length: 20 }, (_, i) => ({ id: `volsync-ns-replicationsource-app${i}` })),
  }),
);
const stub = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
  await req.arrayBuffer();
  return new Response(body, { headers: { "content-type": "application/proto" } });
});
const stubResult = await compare(`http://127.0.0.1:${stub.addr.port}`);
await stub.shutdown();

const backrest = await startBackrest();
let realResult;
try {
  realResult = await compare(backrest.url);
} finally {
  await backrest.stop();
}

const enc = new TextEncoder();
const mapping = await measure(() =>
  desiredRepo({
    namespace: "apps",
    kind: "ReplicationSource",
    name: "data",
    secretData: {
      RESTIC_REPOSITORY: enc.encode("rest:https://rest.example/bucket/path"),
      RESTIC_PASSWORD: enc.encode("a-long-repository-password"),
      AWS_ACCESS_KEY_ID: enc.encode("AKIAEXAMPLE"),
      AWS_SECRET_ACCESS_KEY: enc.encode("secretsecretsecret"),
    },
    settings: {
      extraFlags: ["--verbose"],
      prunePolicy: { schedule: { cron: "0 3 * * *" }, maxUnusedPercent: 10 },
    },
    hashInputs: { url: "http://backrest:9898", auth: "fingerprint" },
  })
);

const result = {
  benchmark: "backrest_client",
  iterations: iterations * 4,
  stub: stubResult,
  real_backrest: realResult,
  desired_repo_ms: stats(mapping),
  target: "client overhead p50 < 1 ms",
  pass: stubResult.overhead_ms.p50 < 1,
};
// deno-lint-ignore no-console
console.log(JSON.stringify(result, null, 2));
