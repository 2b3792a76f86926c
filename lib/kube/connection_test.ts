import assert from "node:assert/strict";
import { inClusterConnection, kubeconfigConnection } from "./connection.ts";
import { microTime } from "./lease.ts";
import { resourcePath } from "./resource.ts";
import { configMaps } from "./resource.ts";

Deno.test("connection: kubeconfig picks the named context and runs exec credential plugins", async () => {
  const dir = await Deno.makeTempDir();
  const plugin = `${dir}/cred.sh`;
  await Deno.writeTextFile(
    plugin,
    `#!/bin/sh\necho '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"from-exec"}}'\n`,
  );
  await Deno.chmod(plugin, 0o755);
  const path = `${dir}/config`;
  await Deno.writeTextFile(
    path,
    JSON.stringify({
      apiVersion: "v1",
      kind: "Config",
      "current-context": "one",
      clusters: [{ name: "c1", cluster: { server: "https://one.example:6443/" } }, {
        name: "c2",
        cluster: { server: "https://two.example:6443" },
      }],
      users: [{ name: "u1", user: { token: "static-token" } }, {
        name: "u2",
        user: {
          exec: { apiVersion: "client.authentication.k8s.io/v1", command: plugin, interactiveMode: "Never" },
        },
      }],
      contexts: [{ name: "one", context: { cluster: "c1", user: "u1" } }, {
        name: "two",
        context: { cluster: "c2", user: "u2", namespace: "ns2" },
      }],
    }),
  );
  const one = await kubeconfigConnection({ path });
  assert.equal(one.server, "https://one.example:6443");
  assert.equal((await one.prepare()).headers.authorization, "Bearer static-token");
  one.close();
  const two = await kubeconfigConnection({ path, context: "two" });
  assert.equal(two.server, "https://two.example:6443");
  assert.equal(two.namespace, "ns2");
  assert.equal((await two.prepare()).headers.authorization, "Bearer from-exec");
  two.close();
  await assert.rejects(kubeconfigConnection({ path, context: "three" }), /no context named three/);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("connection: in-cluster needs the service env and re-reads the token when due", async () => {
  await assert.rejects(
    inClusterConnection({ dir: "/nonexistent", host: "", port: "" }),
    /Not running in a cluster/,
  );
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/token`, "t1\n");
  await Deno.writeTextFile(`${dir}/ca.crt`, "");
  let now = 0;
  const conn = await inClusterConnection({ dir, host: "fd00::1", port: "443", now: () => now });
  assert.equal(conn.server, "https://[fd00::1]:443");
  assert.equal((await conn.prepare()).headers.authorization, "Bearer t1");
  await Deno.writeTextFile(`${dir}/token`, "t2");
  now += 30_000;
  assert.equal((await conn.prepare()).headers.authorization, "Bearer t1", "cached for a minute");
  now += 30_000;
  assert.equal((await conn.prepare()).headers.authorization, "Bearer t2");
  await Deno.writeTextFile(`${dir}/token`, "t3");
  conn.invalidate();
  assert.equal((await conn.prepare()).headers.authorization, "Bearer t3", "re-read at once after a 401");
  conn.close();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("resource: paths and MicroTime", () => {
  assert.equal(
    resourcePath(configMaps, { namespace: "n", name: "a b" }),
    "/api/v1/namespaces/n/configmaps/a%20b",
  );
  assert.equal(resourcePath(configMaps), "/api/v1/configmaps");
  assert.equal(microTime(Date.UTC(2024, 0, 2, 3, 4, 5, 678)), "2024-01-02T03:04:05.678000Z");
});
