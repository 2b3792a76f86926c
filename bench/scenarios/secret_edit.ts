/**
 * (a) secret-edit, on the REAL Backrest and a real restic repository: edit one value of a Binding's
 * repository Secret N times; per edit, the total time from the Secret write until Backrest's config holds
 * the new value (polled with GetConfig), the time spent inside Backrest RPCs (every call of the operator's
 * Backrest client timed), and the operator's share: total minus Backrest time (which still contains the
 * apiserver's watch delivery and the poll's granularity), and the tighter "until AddRepo returned" minus
 * Backrest time. The reference, measured in the same run on the same Backrest and repository: a plain
 * Connect client (no operator code) calling AddRepo alone, the least any edit can cost.
 */
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { Backrest } from "../../gen/v1/service_pb.ts";
import { createResticRepo, startBackrest } from "../../tests/harness/backrest.ts";
import { binding, cluster, replicationSource, secret } from "../../tests/harness/operator.ts";
import { waitUntil } from "../../tests/harness/process.ts";
import { benchOperator, BINDINGS, post, round, say, type ScenarioResult, sleep, summary } from "../common.ts";

/**
 * `n` AddRepo calls of a plain Connect client, each changing one env value, at the edit loop's pace: the
 * reference per edit.
 */
async function plainAddRepoMs(
  url: string,
  repo: { uri: string; password: string },
  n: number,
): Promise<number[]> {
  const client = createClient(Backrest, createConnectTransport({ baseUrl: url }));
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await client.addRepo({
      repo: {
        id: "bench-reference",
        uri: repo.uri,
        password: repo.password,
        env: [`AWS_ACCESS_KEY_ID=r${i}`],
      },
    }, { timeoutMs: 60_000 });
    out.push(performance.now() - t0);
    await sleep(400); // the edit loop's pace: Backrest's own index run after each AddRepo overlaps alike
  }
  return out;
}

export async function secretEdit(edits = Number(Deno.env.get("BENCH_EDITS") ?? 30)): Promise<ScenarioResult> {
  const cp = await cluster();
  const backrest = await startBackrest();
  const ns = await cp.namespace("bench-edit");
  const op = await benchOperator({ namespaces: [ns] });
  try {
    const repo = await createResticRepo();
    const data = (v: string) => ({
      RESTIC_REPOSITORY: repo.uri,
      RESTIC_PASSWORD: repo.password,
      AWS_ACCESS_KEY_ID: v,
    });
    await post(`/api/v1/namespaces/${ns}/secrets`, secret("restic", data("v0")));
    await post(
      `/apis/volsync.backube/v1alpha1/namespaces/${ns}/replicationsources`,
      replicationSource("src", "restic"),
    );
    await post(
      `${BINDINGS}/namespaces/${ns}/backrestvolsyncbindings`,
      binding("b", { url: backrest.url, source: "src" }),
    );
    await op.start();
    const id = `volsync-${ns}-replicationsource-src`;
    const holds = async (v: string) =>
      (await backrest.getConfig()).repos.find((r) => r.id === id)?.env.includes(`AWS_ACCESS_KEY_ID=${v}`) ??
        false;
    await waitUntil("Backrest holds v0", () => holds("v0"), { timeoutMs: 60_000, intervalMs: 50 });
    await sleep(1000);

    const total: number[] = [];
    const backrestMs: number[] = [];
    const operatorShare: number[] = [];
    const untilApplied: number[] = [];
    const operatorShareApplied: number[] = [];
    const callsPerEdit: number[] = [];
    for (let i = 1; i <= edits; i++) {
      const v = `v${i}`;
      const from = op.spans.length;
      const t0 = performance.now();
      const res = await cp.api("PUT", `/api/v1/namespaces/${ns}/secrets/restic`, secret("restic", data(v)));
      await res.body?.cancel();
      if (!res.ok) throw new Error(`PUT Secret: HTTP ${res.status}`);
      // Polled every 10 ms: a tight loop of GetConfig calls kept Backrest busy while its restic ran, which
      // slowed the AddRepo being measured by a third against the reference below.
      while (!(await holds(v))) await sleep(10);
      const t1 = performance.now();
      // Let the reconcile finish (status write, the no-op reconcile it triggers) before the next edit.
      await sleep(400);
      const spans = op.spans.slice(from).filter((s) => s.start >= t0);
      const inside = spans.filter((s) => s.end <= t1 + 400).reduce((a, s) => a + (s.end - s.start), 0);
      const add = spans.find((s) => s.method === "AddRepo" && s.ok);
      total.push(t1 - t0);
      backrestMs.push(inside);
      operatorShare.push(t1 - t0 - inside);
      if (add) {
        const before = spans.filter((s) => s.end <= add.end).reduce((a, s) => a + (s.end - s.start), 0);
        untilApplied.push(add.end - t0);
        operatorShareApplied.push(add.end - t0 - before);
      }
      callsPerEdit.push(spans.length);
    }
    const share = summary(operatorShare);
    const shareApplied = summary(operatorShareApplied);
    say(
      `secret-edit: operator share until AddRepo returned p50 ${shareApplied.p50} ms p99 ${shareApplied.p99} ms`,
    );
    const reference = summary(await plainAddRepoMs(backrest.url, repo, edits));
    const totals = summary(total);
    const overReference = totals.p50 !== null && reference.p50 !== null
      ? round(totals.p50 - reference.p50)
      : null;
    // Backrest holds the edit once AddRepo returned; the total adds the poll's lag (up to 10 ms + a GetConfig).
    const applied = summary(untilApplied);
    const heldOverReference = applied.p50 !== null && reference.p50 !== null
      ? round(applied.p50 - reference.p50)
      : null;
    say(`secret-edit: total p50 ${totals.p50} ms, one plain AddRepo p50 ${reference.p50} ms`);
    return {
      scenario: "secret-edit",
      backrest: "real Backrest v1.14.1 + real restic repository on local disk",
      params: { edits, concurrency: 4, editedKey: "AWS_ACCESS_KEY_ID (other keys unchanged)" },
      results: {
        totalMs: totals,
        plainAddRepoMs: reference,
        totalOverPlainAddRepoP50Ms: overReference,
        untilAddRepoReturnedOverPlainAddRepoP50Ms: heldOverReference,
        totalToPlainAddRepoRatioP50: totals.p50 !== null && reference.p50
          ? round(totals.p50 / reference.p50)
          : null,
        backrestRpcMs: summary(backrestMs),
        operatorShareMs: share,
        untilAddRepoReturnedMs: applied,
        operatorShareUntilAddRepoMs: shareApplied,
        backrestCallsPerEdit: summary(callsPerEdit),
        backrestCallsByMethod: op.backrestCalls(),
        splitNote:
          "operatorShare = total - time inside Backrest RPCs; it includes the apiserver's write and " +
          "watch delivery and up to one GetConfig poll; operatorShareUntilAddRepo stops at AddRepo's return",
      },
      targets: {
        heldOverOneAddRepoP50: {
          target:
            "Secret write -> AddRepo returned: <= 30 ms over one plain AddRepo (p50 against p50, same run)",
          measured: heldOverReference,
          pass: heldOverReference !== null && heldOverReference <= 30,
        },
        // The share up to AddRepo's return: the share up to the poll's success adds up to 10 ms of poll lag.
        operatorShareP50: {
          target: "<= 20 ms (until AddRepo returned)",
          measured: shareApplied.p50,
          pass: shareApplied.p50 !== null && shareApplied.p50 <= 20,
        },
        operatorShareP99: {
          target: "<= 100 ms (until AddRepo returned)",
          measured: shareApplied.p99,
          pass: shareApplied.p99 !== null && shareApplied.p99 <= 100,
        },
      },
      notes: [
        `mean Backrest share ${round(backrestMs.reduce((a, b) => a + b, 0) / backrestMs.length)} ms per edit`,
      ],
    };
  } finally {
    await op.stop();
    await backrest.stop();
  }
}
