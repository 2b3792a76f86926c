/**
 * Experiment, not a benchmark target (`tools/deno run -A bench/experiments/http_client_cost.ts`): the CPU one
 * GET of a Secret costs this process on the real apiserver, through `fetch` (what the Kubernetes client
 * builds on) and through a minimal HTTP/1.1 client over `Deno.connectTls` (keep-alive, one request at a time
 * per connection, Content-Length bodies only), 3 000 GETs at 4 in flight, both parsing the JSON. It measures
 * what a client below `fetch` could save per request; the operator has none.
 */
import { cluster } from "../../tests/harness/operator.ts";
import { cpuSeconds, parallel, post, say } from "../common.ts";

const N = 3000;
const IN_FLIGHT = 4;
const cp = await cluster();
const ns = await cp.namespace(`http-cost-${Date.now() % 100000}`);
await parallel([...Array(50).keys()], 8, (i) =>
  post(`/api/v1/namespaces/${ns}/secrets`, {
    metadata: { name: `s-${i}` },
    stringData: { RESTIC_REPOSITORY: `rest:https://x/${i}`, RESTIC_PASSWORD: `pw-${i}` },
  }));
const token = await cp.serviceAccountToken(ns, "reader", 3600);
await post("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", {
  metadata: { name: `http-cost-${ns}` },
  roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "cluster-admin" },
  subjects: [{ kind: "ServiceAccount", name: "reader", namespace: ns }],
});
const server = new URL(cp.server);
const path = (i: number) => `/api/v1/namespaces/${ns}/secrets/s-${i % 50}`;
const parsed = (text: string) => {
  if (!JSON.parse(text).metadata) throw new Error("not a Secret");
};

const client = Deno.createHttpClient({ caCerts: [cp.ca] });
const viaFetch = async (i: number) => {
  const res = await fetch(`${cp.server}${path(i)}`, {
    client,
    headers: { authorization: `Bearer ${token}`, accept: "application/json" },
  });
  parsed(await res.text());
};

const enc = new TextEncoder();
const dec = new TextDecoder();
/** One keep-alive connection; answers framed by Content-Length (the apiserver's for a single object). */
class Connection {
  #buf = new Uint8Array(0);
  constructor(readonly conn: Deno.TlsConn) {}
  async #fill() {
    const b = new Uint8Array(16384);
    const n = await this.conn.read(b);
    if (n === null) throw new Error("closed");
    const m = new Uint8Array(this.#buf.length + n);
    m.set(this.#buf);
    m.set(b.subarray(0, n), this.#buf.length);
    this.#buf = m;
  }
  async get(p: string): Promise<string> {
    await this.conn.write(
      enc.encode(
        `GET ${p} HTTP/1.1\r\nHost: ${server.host}\r\nAuthorization: Bearer ${token}\r\n` +
          "Accept: application/json\r\n\r\n",
      ),
    );
    let end: number;
    while ((end = dec.decode(this.#buf).indexOf("\r\n\r\n")) < 0) await this.#fill();
    const head = dec.decode(this.#buf.subarray(0, end));
    this.#buf = this.#buf.subarray(end + 4);
    const length = head.match(/content-length: *(\d+)/i);
    if (!length) throw new Error(`no Content-Length: ${head.split("\r\n")[0]}`);
    const n = Number(length[1]);
    while (this.#buf.length < n) await this.#fill();
    const body = dec.decode(this.#buf.subarray(0, n));
    this.#buf = this.#buf.subarray(n);
    return body;
  }
}
const connections = await Promise.all(
  Array.from({ length: IN_FLIGHT }, async () =>
    new Connection(
      await Deno.connectTls({ hostname: server.hostname, port: Number(server.port), caCerts: [cp.ca] }),
    )),
);
const viaSocket = () =>
  Promise.all(connections.map(async (c, w) => {
    for (let i = w; i < N; i += IN_FLIGHT) parsed(await c.get(path(i)));
  }));

for (let round = 0; round < 3; round++) {
  for (
    const [name, run] of [["fetch", () => parallel([...Array(N).keys()], IN_FLIGHT, viaFetch)], [
      "socket",
      viaSocket,
    ]] as const
  ) {
    const c0 = cpuSeconds();
    const t0 = performance.now();
    await run();
    say(
      `round ${round} ${name}: ${N} GETs in ${Math.round(performance.now() - t0)} ms, ${
        ((cpuSeconds() - c0) / N * 1000).toFixed(3)
      } ms CPU per GET`,
    );
  }
}
for (const c of connections) c.conn.close();
client.close();
Deno.exit(0);
