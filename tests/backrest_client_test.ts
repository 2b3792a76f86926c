/**
 * The Backrest client against the real Backrest v1.14.1 and real restic repositories: auth modes, every
 * call the operator makes, deadlines, an unreachable server, old-server detection, and a canary proving
 * that no secret value reaches an error.
 */

import assert from "node:assert/strict";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { Authentication } from "../gen/v1/authentication_pb.ts";
import { Backrest } from "../gen/v1/service_pb.ts";
import { Sensitive } from "../lib/api/sensitive.ts";
import {
  ADD_REPO_DRAIN_LIMIT,
  ADD_REPO_DRAIN_LIMIT_PLAIN,
  addRepoDrainLimit,
  authFromSecret,
  backrestClient,
  BackrestError,
  Breakers,
  createBackrestClient,
} from "../lib/backrest/mod.ts";
import { createResticRepo, restEnv, startBackrest } from "./harness/backrest.ts";
import { freePort, tempDir } from "./harness/process.ts";
import { rejectsWith as rejects, repoFor } from "./harness/backrest_fixtures.ts";
import { silentListener } from "./harness/silent_listener.ts";
import { servingCertificate } from "./harness/tls.ts";

const enc = new TextEncoder();

Deno.test("Backrest client against the real server (auth disabled)", async (t) => {
  const backrest = await startBackrest();
  const api = createBackrestClient({ url: backrest.url, timeoutMs: 30_000 });
  try {
    const local = await createResticRepo();

    await t.step("probe accepts v1.14.1", async () => {
      await api.probe();
    });

    await t.step("addRepo registers a local repository with its guid", async () => {
      await api.addRepo(await repoFor("local", local, { RESTIC_COMPRESSION: "max" }));
      const repo = (await backrest.getConfig()).repos.find((r) => r.id === "local");
      assert.equal(repo?.uri, local.uri);
      assert.equal(repo?.password, local.password);
      assert.deepEqual(repo?.env, restEnv("RESTIC_COMPRESSION=max"));
      assert.match(repo?.guid ?? "", /^[0-9a-f]{64}$/);
      assert.equal(repo?.autoInitialize, false);
    });

    await t.step("addRepo of the same id replaces the whole entry", async () => {
      await api.addRepo(await repoFor("local", local, {}, ["--no-lock"]));
      const repos = (await backrest.getConfig()).repos.filter((r) => r.id === "local");
      assert.equal(repos.length, 1);
      assert.deepEqual(repos[0]?.env, restEnv());
      assert.deepEqual(repos[0]?.flags, ["--no-lock"]);
    });

    await t.step("listRepoIds reads ids from GetSummaryDashboard", async () => {
      assert.deepEqual(await api.listRepoIds(), ["local"]);
    });

    await t.step("checkRepoExists: true for a repository, false for an empty location", async () => {
      assert.equal(await api.checkRepoExists(await repoFor("local", local)), true);
      const nowhere = `${await tempDir("nowhere")}/repo`;
      assert.equal(
        await api.checkRepoExists(await repoFor("nowhere", { uri: nowhere, password: "pw-nowhere" })),
        false,
      );
    });

    await t.step("checkRepoExists with a wrong password is a failure, not 'missing'", async () => {
      await rejects(
        api.checkRepoExists(await repoFor("local", { uri: local.uri, password: "wrong-password" })),
        "failed",
      );
    });

    await t.step("doRepoTask INDEX_SNAPSHOTS is scheduled; an unknown repo is not_found", async () => {
      assert.equal(typeof await api.doRepoTask("local", "index_snapshots"), "bigint");
      await rejects(api.doRepoTask("no-such-repo", "stats"), "not_found");
    });

    await t.step("an id Backrest refuses is 'invalid' and terminal", async () => {
      const e = await rejects(api.addRepo({ ...(await repoFor("x", local)), id: "_reserved_" }), "invalid");
      assert.equal(e.terminal, true);
      assert.match(e.message, /^AddRepo: invalid_argument: /);
    });

    await t.step(
      "server truth: AddRepo with auto_initialize=true is rejected, after creating the repository",
      async () => {
        // Why the client never sends auto_initialize (see lib/backrest/desired_repo.ts).
        const raw = createClient(
          Backrest,
          createConnectTransport({ baseUrl: backrest.url, useBinaryFormat: true }),
        );
        const uri = `${await tempDir("autoinit")}/repo`;
        await assert.rejects(
          raw.addRepo({ repo: { id: "auto", uri, password: "pw-autoinit", autoInitialize: true } }),
          /auto_initialize set with guid/,
        );
        assert.equal(
          await api.checkRepoExists(await repoFor("auto", { uri, password: "pw-autoinit" })),
          true,
        );
        assert.ok(!(await api.listRepoIds()).includes("auto"));
      },
    );

    await t.step("addRepo at an empty location initializes it (the path autoInitialize gates)", async () => {
      const fresh = { uri: `${await tempDir("fresh")}/repo`, password: "pw-fresh-repo" };
      assert.equal(await api.checkRepoExists(await repoFor("fresh", fresh)), false);
      await api.addRepo(await repoFor("fresh", fresh));
      assert.equal(await api.checkRepoExists(await repoFor("fresh", fresh)), true);
    });

    await t.step("removeRepo removes the entry; an unknown id is a no-op", async () => {
      await api.removeRepo("fresh");
      await api.removeRepo("never-there");
      assert.deepEqual(await api.listRepoIds(), ["local"]);
    });

    await t.step("a repository location that never answers hits the deadline", async () => {
      const listener = silentListener();
      try {
        const hang = { uri: `rest:http://127.0.0.1:${listener.port}/`, password: "pw-hanging" };
        const started = Date.now();
        const e = await rejects(api.addRepo(await repoFor("hang", hang), { timeoutMs: 1500 }), "deadline");
        assert.ok(Date.now() - started < 5000);
        assert.equal(e.terminal, false);
        const ac = new AbortController();
        setTimeout(() => ac.abort(), 300);
        await rejects(api.checkRepoExists(await repoFor("hang", hang), { signal: ac.signal }), "canceled");
      } finally {
        await listener.close();
      }
    });

    await t.step(
      "canary: secret values never appear in an error's message, stack, cause, JSON or inspect",
      async () => {
        const canary = crypto.randomUUID().replaceAll("-", "");
        const uri = `${await tempDir("canary")}/repo-uri${canary}`;
        const repo = await repoFor("canary", { uri, password: `pw${canary}` }, {
          RESTIC_PACK_SIZE: `pack${canary}`, // restic quotes an invalid pack size back
          RESTIC_COMPRESSION: `comp${canary}`,
        });
        const errors = [
          await rejects(api.addRepo(repo), "failed"),
          await rejects(api.checkRepoExists(repo), "failed"),
          // Backrest runs restic init before validating, so this one needs a valid env to reach validation.
          await rejects(
            api.addRepo({
              ...(await repoFor("x", { uri: `${uri}-2`, password: `pw${canary}` }, { X: `x${canary}` })),
              id: "_reserved_",
            }),
            "invalid",
          ),
        ];
        for (const e of errors) {
          const forms = [
            e.message,
            e.stack ?? "",
            JSON.stringify(e),
            Deno.inspect(e, { depth: 10 }),
            e.cause instanceof Error ? `${e.cause.message} ${e.cause.stack}` : "",
          ];
          for (const form of forms) assert.ok(!form.includes(canary.slice(0, 16)), form);
        }
        // The invalid id is not a secret and shows.
        assert.match(errors[2]!.message, /reserved/);
        assert.match(errors[0]!.message, /\[redacted\]/);
      },
    );

    await t.step("Backrest stopped: unavailable", async () => {
      await backrest.stop();
      const e = await rejects(api.listRepoIds(), "unavailable");
      assert.equal(e.terminal, false);
      await rejects(createBackrestClient({ url: backrest.url }).probe(), "unavailable");
    });
  } finally {
    await backrest.stop();
  }
});

Deno.test("Backrest client with authentication enabled", async (t) => {
  const user = { username: "op", password: `secret-${crypto.randomUUID()}` };
  const backrest = await startBackrest({ auth: user });
  const local = await createResticRepo();
  try {
    await t.step("Basic with the right credentials works", async () => {
      const api = createBackrestClient({
        url: backrest.url,
        auth: authFromSecret({
          username: enc.encode(user.username),
          password: enc.encode(`${user.password}\n`),
        }),
      });
      await api.addRepo(await repoFor("authed", local));
      assert.deepEqual(await api.listRepoIds(), ["authed"]);
    });

    await t.step("wrong or missing credentials are unauthenticated", async () => {
      const wrong = createBackrestClient({
        url: backrest.url,
        auth: { kind: "basic", username: user.username, password: new Sensitive("wrong-password") },
      });
      await rejects(wrong.listRepoIds(), "unauthenticated");
      await rejects(wrong.addRepo(await repoFor("authed", local)), "unauthenticated");
      const none = createBackrestClient({ url: backrest.url });
      await rejects(none.listRepoIds(), "unauthenticated");
      await rejects(none.probe(), "unauthenticated");
      const badToken = createBackrestClient({
        url: backrest.url,
        auth: authFromSecret({ token: enc.encode("x.y.z") }),
      });
      await rejects(badToken.listRepoIds(), "unauthenticated");
    });

    await t.step("Bearer with a token from Login works", async () => {
      const login = createClient(Authentication, createConnectTransport({ baseUrl: backrest.url }));
      const { token } = await login.login({ username: user.username, password: user.password });
      const api = createBackrestClient({
        url: backrest.url,
        auth: authFromSecret({ token: enc.encode(token) }),
      });
      assert.deepEqual(await api.listRepoIds(), ["authed"]);
      await api.probe();
    });

    await t.step("an auth Secret without usable keys is refused by key name", () => {
      assert.throws(() => authFromSecret({ username: enc.encode("op") }), /username and password/);
    });
  } finally {
    await backrest.stop();
  }
});

Deno.test("probe refuses servers that are not Backrest v1.12.0+", async (t) => {
  // Stand-ins for what older servers answer to an unparseable AddRepo body (connect-go's wording).
  const answers: Record<string, () => Response> = {
    old: () =>
      Response.json({
        code: "invalid_argument",
        message: "unmarshal message: unmarshal into *v1.Repo: proto: cannot parse invalid wire-format data",
      }, { status: 400 }),
    none: () => new Response("404 page not found", { status: 404 }),
  };
  let mode = "old";
  const port = freePort();
  const server = Deno.serve({ hostname: "127.0.0.1", port, onListen() {} }, () => answers[mode]!());
  try {
    for (const m of Object.keys(answers)) {
      await t.step(m, async () => {
        mode = m;
        const api = createBackrestClient({ url: `http://127.0.0.1:${port}` });
        const repo = await repoFor("x", { uri: "/tmp/x", password: "pw-123456" });
        const e = await rejects(api.addRepo(repo), "unsupported");
        assert.match(e.message, /v1\.12\.0 or newer/);
        assert.equal(e.terminal, true);
        await rejects(api.checkRepoExists(repo), "unsupported");
      });
    }
  } finally {
    await server.shutdown();
  }
});

Deno.test("a large AddRepo answer is not read past the drain limit; a small one is read to the end", async () => {
  // A server that answers the probe as Backrest does, and AddRepo with a body of `size` bytes, counting
  // how much of it the client pulled (the stream is pulled only as the socket drains).
  let size = 0;
  let pulled = 0;
  let finished = false;
  /** The client's port of each AddRepo's connection: the same port twice means the connection was reused. */
  const clientPorts: number[] = [];
  const port = freePort();
  const server = Deno.serve({ hostname: "127.0.0.1", port, onListen() {} }, async (req, info) => {
    const body = new Uint8Array(await req.arrayBuffer());
    if (body.length === 1 && body[0] === 0xff) {
      return Response.json({
        code: "invalid_argument",
        message:
          "unmarshal message: unmarshal into *v1.AddRepoRequest: proto: cannot parse invalid wire-format data",
      }, { status: 400 });
    }
    clientPorts.push(info.remoteAddr.port);
    pulled = 0;
    finished = false;
    const chunk = new Uint8Array(16 * 1024);
    return new Response(
      new ReadableStream({
        pull(c) {
          if (pulled >= size) {
            finished = true;
            return c.close();
          }
          pulled += chunk.length;
          c.enqueue(chunk);
        },
      }, { highWaterMark: 0 }),
      { headers: { "content-type": "application/proto" } },
    );
  });
  try {
    const api = createBackrestClient({ url: `http://127.0.0.1:${port}` });
    const repo = await repoFor("x", { uri: "/tmp/x", password: "pw-123456" });
    size = ADD_REPO_DRAIN_LIMIT_PLAIN / 4;
    await api.addRepo(repo);
    assert.equal(finished, true, "a small answer is read to its end (the connection can be reused)");
    await api.addRepo(repo);
    assert.equal(clientPorts.at(-1), clientPorts.at(-2), "after a drained answer the connection is reused");
    // Over http, an answer past 16 KiB is dropped rather than drained (reconnecting costs less than reading
    // it): the next call comes on a new connection.
    size = ADD_REPO_DRAIN_LIMIT_PLAIN * 4;
    await api.addRepo(repo);
    size = ADD_REPO_DRAIN_LIMIT_PLAIN / 4;
    await api.addRepo(repo);
    assert.notEqual(clientPorts.at(-1), clientPorts.at(-2), "after a dropped answer the client reconnects");
    size = 256 * 1024 * 1024;
    await api.addRepo(repo);
    assert.ok(pulled < 32 * 1024 * 1024, `pulled ${pulled} bytes of a 256 MB answer`);
    assert.equal(finished, false);
    size = ADD_REPO_DRAIN_LIMIT_PLAIN / 4;
    await api.addRepo(repo);
    assert.equal(finished, true, "the next call works");
    api.close();
  } finally {
    await server.shutdown();
  }
});

Deno.test("how much of an AddRepo answer is drained: 256 KiB over https (a TLS handshake costs more), 16 KiB over http", () => {
  assert.equal(addRepoDrainLimit("https://backrest.backups.svc:9898"), ADD_REPO_DRAIN_LIMIT);
  assert.equal(addRepoDrainLimit("http://backrest.backups.svc:9898"), ADD_REPO_DRAIN_LIMIT_PLAIN);
  assert.ok(ADD_REPO_DRAIN_LIMIT_PLAIN < ADD_REPO_DRAIN_LIMIT);
});

Deno.test("backrestClient() pools one client per connection", () => {
  const url = "http://127.0.0.1:9";
  const a = backrestClient({ url, auth: { kind: "bearer", token: new Sensitive("t-1") } });
  assert.equal(backrestClient({ url, auth: { kind: "bearer", token: new Sensitive("t-1") } }), a);
  assert.notEqual(backrestClient({ url, auth: { kind: "bearer", token: new Sensitive("t-2") } }), a);
  assert.throws(() => createBackrestClient({ url: "http://u:p@127.0.0.1:9" }), BackrestError);
});

Deno.test("no answer is read past its limit: a 200 MB probe, listing, check or RemoveRepo answer fails or is skipped", async () => {
  // A misbehaving server (a Binding may point anywhere): every answer is `size` bytes of junk, streamed as
  // the client pulls it; `pulled` counts how far each read went.
  let pulled = 0;
  let probeOk = false;
  const size = 200 * 1024 * 1024;
  const port = freePort();
  const server = Deno.serve({ hostname: "127.0.0.1", port, onListen() {} }, async (req) => {
    const body = new Uint8Array(await req.arrayBuffer());
    if (probeOk && body.length === 1 && body[0] === 0xff) {
      return Response.json({ code: "invalid_argument", message: "cannot parse *v1.AddRepoRequest" }, {
        status: 400,
      });
    }
    pulled = 0;
    const chunk = new Uint8Array(64 * 1024).fill(0x41);
    return new Response(
      new ReadableStream({
        pull(c) {
          if (pulled >= size) return c.close();
          pulled += chunk.length;
          c.enqueue(chunk);
        },
      }, { highWaterMark: 0 }),
      { status: probeOk ? 200 : 400, headers: { "content-type": "application/proto" } },
    );
  });
  const limit = 32 * 1024 * 1024;
  try {
    // The probe's own answer: read a few KiB, the server judged unsupported.
    const probing = createBackrestClient({ url: `http://127.0.0.1:${port}` });
    await rejects(probing.probe(), "unsupported");
    assert.ok(pulled < limit, `the probe pulled ${pulled} bytes of 200 MB`);
    probing.close();

    probeOk = true;
    // A fresh client per call: an unreadable answer opens a client's breaker, which would refuse the next.
    const fresh = () => createBackrestClient({ url: `http://127.0.0.1:${port}` });
    const api = fresh();
    const listing = await rejects(api.listRepoIds(), "unavailable");
    assert.match(listing.message, /larger than \d+ bytes; not read/);
    assert.ok(pulled < limit, `the listing pulled ${pulled} bytes of 200 MB`);
    await rejects(api.listRepoIds(), "unavailable");
    const repo = await repoFor("x", { uri: "rest:http://r/x", password: "pw-123456" });
    await rejects(fresh().checkRepoExists(repo), "unavailable");
    assert.ok(pulled < limit, `CheckRepoExists pulled ${pulled} bytes of 200 MB`);
    await fresh().removeRepo("x");
    assert.ok(pulled < limit, `RemoveRepo pulled ${pulled} bytes of 200 MB (its Config answer is skipped)`);
    api.close();
  } finally {
    await server.shutdown();
  }
});

Deno.test("an answer is framed by its Content-Length: a server sending more than it declared is read no further", async () => {
  // A raw HTTP/1.1 server (Deno.serve frames answers correctly): the probe gets Backrest's 400; a
  // CheckRepoExists gets `Content-Length: 2`, the two bytes of {exists: true}, then a megabyte of junk. The
  // client takes the declared two bytes as the whole answer (the junk parsed as protobuf would fail the
  // call); answers within the limit skip the limiting stream on the strength of that framing.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const te = new TextEncoder();
  const serving = (async () => {
    for await (const conn of listener) {
      (async () => {
        const buf = new Uint8Array(64 * 1024);
        let pending = new Uint8Array(0);
        try {
          for (;;) {
            const n = await conn.read(buf);
            if (n === null) break;
            const next = new Uint8Array(pending.length + n);
            next.set(pending);
            next.set(buf.subarray(0, n), pending.length);
            pending = next;
            for (;;) {
              const text = new TextDecoder().decode(pending);
              const end = text.indexOf("\r\n\r\n");
              if (end < 0) break;
              const length = Number(/content-length: *(\d+)/i.exec(text.slice(0, end))?.[1] ?? 0);
              if (pending.length < end + 4 + length) break;
              const body = pending.subarray(end + 4, end + 4 + length);
              pending = pending.slice(end + 4 + length);
              if (body.length === 1 && body[0] === 0xff) {
                const msg = JSON.stringify({
                  code: "invalid_argument",
                  message: "unmarshal into *v1.AddRepoRequest",
                });
                await conn.write(te.encode(
                  `HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: ${msg.length}\r\n\r\n${msg}`,
                ));
              } else {
                await conn.write(
                  te.encode(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/proto\r\ncontent-length: 2\r\n\r\n",
                  ),
                );
                await conn.write(Uint8Array.of(0x08, 0x01));
                conn.write(new Uint8Array(1024 * 1024).fill(0xff)).catch(() => {});
              }
            }
          }
        } catch { /* the client closed the connection */ }
        try {
          conn.close();
        } catch { /* closed */ }
      })();
    }
  })();
  const api = createBackrestClient({ url: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}` });
  try {
    const repo = await repoFor("x", { uri: "rest:http://r/x", password: "pw-123456" });
    assert.equal(await api.checkRepoExists(repo), true);
  } finally {
    api.close();
    listener.close();
    await serving.catch(() => {});
  }
});

Deno.test("ca.crt: https to a server whose certificate only the auth Secret's CA vouches for", async () => {
  const { ca, cert, key } = await servingCertificate();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, cert, key, onListen() {} },
    (req) =>
      // The version probe (an unparseable AddRepo) as Backrest answers it, then one repo id.
      new URL(req.url).pathname.endsWith("/AddRepo")
        ? Response.json({ code: "invalid_argument", message: "proto: cannot parse *v1.AddRepoRequest" }, {
          status: 400,
        })
        : new Response(new Uint8Array([0x0a, 0x04, 0x0a, 0x02, 0x69, 0x64]), {
          headers: { "content-type": "application/proto" },
        }),
  );
  try {
    const url = `https://127.0.0.1:${server.addr.port}`;
    // One set of breakers, as the operator's pooled clients share.
    const breakers = new Breakers();
    // Another CA's certificate is no better than none; and a tenant's wrong CA does not close the
    // Backrest to the Bindings that trust the right one.
    const other = await servingCertificate();
    const stranger = createBackrestClient(
      { url, auth: authFromSecret({ "ca.crt": enc.encode(other.ca) }) },
      { breakers },
    );
    await rejects(stranger.listRepoIds(), "unavailable");
    stranger.close();
    const trusted = createBackrestClient({ url, auth: authFromSecret({ "ca.crt": enc.encode(ca) }) }, {
      breakers,
    });
    assert.deepEqual(await trusted.listRepoIds(), ["id"]);
    trusted.close();
    await rejects(createBackrestClient({ url }, { breakers }).listRepoIds(), "unavailable");
  } finally {
    await server.shutdown();
  }
});
