/**
 * Proof that the Backrest the other tests stand on is the real server with a real restic: AddRepo
 * registers a local repository (restic runs), GetConfig lists it, and with a seeded user the server
 * refuses anonymous calls and accepts HTTP Basic. Raw Connect JSON over fetch, independent of our client.
 */
import assert from "node:assert/strict";
import { createResticRepo, startBackrest } from "./harness/backrest.ts";

async function call(url: string, method: string, body: unknown, headers: Record<string, string> = {}) {
  return await fetch(`${url}/v1.Backrest/${method}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
}

Deno.test("smoke: Backrest's AddRepo registers a local restic repository and GetConfig lists it", async () => {
  const t0 = performance.now();
  const backrest = await startBackrest();
  // deno-lint-ignore no-console -- the measured start time belongs in the test output
  console.error(`backrest ready in ${Math.round(performance.now() - t0)} ms: ${backrest.url}`);
  try {
    const repo = await createResticRepo();
    const add = await call(backrest.url, "AddRepo", {
      repo: { id: "smoke-repo", uri: repo.uri, password: repo.password },
    });
    assert.equal(add.status, 200, await add.clone().text());
    await add.body?.cancel();
    const config = await (await call(backrest.url, "GetConfig", {})).json() as {
      repos?: { id: string; uri: string; guid?: string }[];
    };
    const found = config.repos?.find((r) => r.id === "smoke-repo");
    assert.ok(found, "repo listed");
    assert.equal(found.uri, repo.uri);
    assert.match(found.guid ?? "", /^[0-9a-f]{64}$/, "guid set from restic's repository id");

    const missing = await call(backrest.url, "AddRepo", {
      repo: { id: "wrong-password", uri: repo.uri, password: "not-the-password" },
    });
    assert.notEqual(missing.status, 200, "restic really checks the password");
    await missing.body?.cancel();
  } finally {
    await backrest.stop();
  }
});

Deno.test("smoke: with a seeded user Backrest answers 401 to anonymous calls and accepts HTTP Basic", async () => {
  const backrest = await startBackrest({ auth: { username: "admin", password: "s3cret-pw" } });
  try {
    const anonymous = await call(backrest.url, "GetConfig", {});
    assert.equal(anonymous.status, 401);
    await anonymous.body?.cancel();
    const wrong = await call(backrest.url, "GetConfig", {}, { authorization: `Basic ${btoa("admin:nope")}` });
    assert.equal(wrong.status, 401);
    await wrong.body?.cancel();
    const basic = await call(backrest.url, "GetConfig", {}, {
      authorization: `Basic ${btoa("admin:s3cret-pw")}`,
    });
    assert.equal(basic.status, 200);
    const config = await basic.json() as { instance?: string };
    assert.equal(config.instance, "test");
  } finally {
    await backrest.stop();
  }
});
