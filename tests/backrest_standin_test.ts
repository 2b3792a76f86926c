/**
 * Conformance of the Backrest stand-in (tests/harness/backrest_standin.ts): the same assertions, through
 * our real client (`backrestClient`) and a plain JSON Connect client, run against the real Backrest
 * v1.14.1 and against the stand-in, so benchmarks that use the stand-in exercise the same client paths.
 */

import assert from "node:assert/strict";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import type { Config } from "../gen/v1/config_pb.ts";
import { Backrest } from "../gen/v1/service_pb.ts";
import { type BackrestApi, backrestClient, closeBackrestClients } from "../lib/backrest/mod.ts";
import { createResticRepo, startBackrest } from "./harness/backrest.ts";
import { startBackrestStandin } from "./harness/backrest_standin.ts";
import { tempDir } from "./harness/process.ts";
import { rejectsWith as rejects, repoFor } from "./harness/backrest_fixtures.ts";

interface Target {
  url: string;
  getConfig(): Promise<Config>;
  /** Two repositories that exist, and one location where none does. */
  present: { uri: string; password: string }[];
  absent: { uri: string; password: string };
}

/** What both servers must answer alike. */
async function conformance(t: Deno.TestContext, target: Target): Promise<void> {
  const api: BackrestApi = backrestClient({ url: target.url, timeoutMs: 30_000 });
  const [one, two] = target.present as [Target["present"][0], Target["present"][0]];

  await t.step(
    "an unparseable AddRepo body gets 400 invalid_argument naming *v1.AddRepoRequest",
    async () => {
      const res = await fetch(`${target.url}/v1.Backrest/AddRepo`, {
        method: "POST",
        headers: { "content-type": "application/proto", "connect-protocol-version": "1" },
        body: new Uint8Array([0xff]),
      });
      assert.equal(res.status, 400);
      assert.equal(res.headers.get("content-type"), "application/json");
      // protobuf-go puts a space or a no-break space after "proto:" at random, against string matching.
      const body = await res.json() as { code: string; message: string };
      assert.deepEqual({ ...body, message: body.message.replace(/\u00a0/g, " ") }, {
        code: "invalid_argument",
        message:
          "unmarshal message: unmarshal into *v1.AddRepoRequest: proto: cannot parse invalid wire-format data",
      });
    },
  );

  await t.step("an unknown method is a plain 404", async () => {
    const res = await fetch(`${target.url}/v1.Backrest/NoSuchMethod`, {
      method: "POST",
      headers: { "content-type": "application/proto" },
      body: new Uint8Array(0),
    });
    assert.equal(res.status, 404);
    assert.equal(await res.text(), "404 page not found\n");
  });

  await t.step("probe accepts the server", async () => {
    await api.probe();
  });

  await t.step("addRepo stores the repo with a 64-hex guid", async () => {
    await api.addRepo(await repoFor("conf-a", one, { RESTIC_COMPRESSION: "max", AWS_DEFAULT_REGION: "eu" }));
    const repo = (await target.getConfig()).repos.find((r) => r.id === "conf-a");
    assert.equal(repo?.uri, one.uri);
    assert.equal(repo?.password, one.password);
    // The Secret's entries as sent; the rest are the masks of the repository's backend (sent empty).
    assert.deepEqual(repo?.env.filter((e) => !e.endsWith("=")), [
      "AWS_DEFAULT_REGION=eu",
      "RESTIC_COMPRESSION=max",
    ]);
    assert.match(repo?.guid ?? "", /^[0-9a-f]{64}$/);
    assert.equal(repo?.autoInitialize, false);
  });

  await t.step("addRepo of the same id replaces the whole entry", async () => {
    await api.addRepo(await repoFor("conf-a", one, {}, ["--no-lock"]));
    const repos = (await target.getConfig()).repos.filter((r) => r.id === "conf-a");
    assert.equal(repos.length, 1);
    assert.deepEqual(repos[0]?.env.filter((e) => !e.endsWith("=")), []);
    assert.deepEqual(repos[0]?.flags, ["--no-lock"]);
  });

  await t.step("listRepoIds lists every repo id", async () => {
    await api.addRepo(await repoFor("conf-b", two));
    assert.deepEqual((await api.listRepoIds()).sort(), ["conf-a", "conf-b"]);
  });

  await t.step("checkRepoExists: true where a repository is, false where none is", async () => {
    assert.equal(await api.checkRepoExists(await repoFor("conf-a", one)), true);
    assert.equal(await api.checkRepoExists(await repoFor("conf-x", target.absent)), false);
  });

  await t.step("doRepoTask schedules on a known repo; an unknown repo is not_found", async () => {
    assert.equal(typeof await api.doRepoTask("conf-a", "index_snapshots"), "bigint");
    await rejects(api.doRepoTask("conf-nope", "stats"), "not_found");
  });

  await t.step("an id Backrest refuses is 'invalid' and terminal", async () => {
    const e = await rejects(api.addRepo({ ...(await repoFor("x", one)), id: "_reserved_" }), "invalid");
    assert.equal(e.terminal, true);
    assert.match(e.message, /^AddRepo: invalid_argument: /);
  });

  await t.step("removeRepo removes; an unknown id is a no-op", async () => {
    await api.removeRepo("conf-b");
    await api.removeRepo("conf-never-there");
    assert.deepEqual(await api.listRepoIds(), ["conf-a"]);
  });

  await t.step("AddRepo answers the whole Config in the binary codec, every repo as stored", async () => {
    const binary = createClient(
      Backrest,
      createConnectTransport({ baseUrl: target.url, useBinaryFormat: true }),
    );
    const answer = await binary.addRepo({ repo: { id: "conf-bin", uri: two.uri, password: two.password } });
    const config = await target.getConfig();
    const entries = (c: Config) => c.repos.map((r) => ({ id: r.id, uri: r.uri, password: r.password }));
    assert.deepEqual(entries(answer), entries(config));
    assert.ok(answer.repos.some((r) => r.id === "conf-bin" && r.guid.length === 64));
    assert.equal(answer.instance, config.instance);
    await binary.removeRepo({ repoId: "conf-bin" });
  });

  await t.step("the JSON codec: AddRepo and GetConfig as application/json", async () => {
    const json = createClient(
      Backrest,
      createConnectTransport({ baseUrl: target.url, useBinaryFormat: false }),
    );
    const answer = await json.addRepo({ repo: { id: "conf-json", uri: two.uri, password: two.password } });
    assert.ok(answer.repos.some((r) => r.id === "conf-json"), "AddRepo answers the whole Config");
    assert.notEqual(answer.instance, "");
    const config = await json.getConfig({});
    assert.equal(config.repos.find((r) => r.id === "conf-json")?.uri, two.uri);
    const summary = await json.getSummaryDashboard({});
    assert.deepEqual(summary.repoSummaries.map((s) => s.id).sort(), ["conf-a", "conf-json"]);
    await json.removeRepo({ repoId: "conf-json" });
  });
}

Deno.test("Backrest stand-in conformance: the real Backrest v1.14.1", async (t) => {
  const backrest = await startBackrest();
  try {
    const absent = { uri: `${await tempDir("absent")}/repo`, password: "pw-absent" };
    await conformance(t, {
      url: backrest.url,
      getConfig: () => backrest.getConfig(),
      present: [await createResticRepo(), await createResticRepo()],
      absent,
    });
  } finally {
    closeBackrestClients();
    await backrest.stop();
  }
});

Deno.test("Backrest stand-in conformance: the stand-in", async (t) => {
  const standin = startBackrestStandin();
  try {
    const absent = { uri: "/nowhere/repo", password: "pw-absent" };
    standin.setExists(absent.uri, false);
    await conformance(t, {
      url: standin.url,
      getConfig: () => Promise.resolve(standin.config()),
      present: [{ uri: "/standin/one", password: "pw-one" }, { uri: "/standin/two", password: "pw-two" }],
      absent,
    });

    await t.step("every request is counted per method", () => {
      assert.equal(
        standin.calls.AddRepo,
        8,
        "the raw 0xff body, the probe, 4 applies, 1 binary and 1 JSON AddRepo",
      );
      assert.equal(standin.calls.CheckRepoExists, 2);
      assert.equal(standin.calls.DoRepoTask, 2);
      assert.equal(standin.calls.GetSummaryDashboard, 3);
      assert.equal(standin.calls.RemoveRepo, 4);
      assert.equal(standin.calls.GetConfig, 1, "the JSON step's; getConfig() above reads memory");
      assert.equal(standin.rejected, 3, "the 0xff body, the probe, the unknown method");
      standin.resetCalls();
      assert.equal(standin.totalCalls(), 0);
    });
  } finally {
    closeBackrestClients();
    await standin.stop();
  }
});
