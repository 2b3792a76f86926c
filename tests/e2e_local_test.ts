/**
 * The compiled binary's second use: run on a workstation against a cluster through a kubeconfig. Each
 * operator here is a separate `deno run` with exactly the compile task's flags (the `operator` permission
 * set and the V8 flags, nothing added) against the real apiserver, found the three ways a kubeconfig is
 * found (`--kubeconfig`, `$KUBECONFIG`, `~/.kube/config`) with three kinds of user (client certificate and
 * CA in files, a token file, an exec credential plugin named by a bare command on PATH, as `aws`,
 * `gke-gcloud-auth-plugin` or `kubelogin` are). Each must sync its caches and take the leader Lease; the
 * plugin run takes a Binding to Ready on the real Backrest. The audit log shows what each touched. The
 * in-pod use is tests/e2e_incluster_test.ts (the same flags: it holds the run task equal to them).
 * Also: the permission set refuses every cloud instance-metadata address, however spelled.
 */
import assert from "node:assert/strict";
import { applySampleBinding } from "./harness/scenario.ts";
import { startBackrest } from "./harness/backrest.ts";
import { cluster, ensureOperatorConfig } from "./harness/operator.ts";
import {
  type AccessProfile,
  auditViolations,
  binaryFlags,
  DENO,
  forbiddenLines,
  operatorPermissionSet,
  operatorServiceAccount,
  permissionErrors,
  ROOT,
  startOperatorProcess,
} from "./harness/operator_process.ts";
import { tempDir, waitUntil } from "./harness/process.ts";
import type { ControlPlane } from "./harness/control_plane.ts";
import { kubeconfigConnection } from "../lib/kube/mod.ts";

const LEASE = "backrest-volsync-operator.backrest.garethgeorge.com";

/** The environment every run starts from: none of the ways in that a case does not choose. */
function baseEnv(): Record<string, string> {
  const cache = Deno.env.get("XDG_CACHE_HOME") ?? `${Deno.env.get("HOME")}/.cache`;
  // HOME moves in one case; the Deno shim and Deno's own cache stay where they are.
  return { XDG_CACHE_HOME: cache, KUBECONFIG: "", KUBERNETES_SERVICE_HOST: "", KUBERNETES_SERVICE_PORT: "" };
}

function kubeconfig(
  cp: ControlPlane,
  cluster: Record<string, string>,
  user: Record<string, unknown>,
): string {
  return JSON.stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: "test", cluster: { server: cp.server, ...cluster } }],
    users: [{ name: "user", user }],
    contexts: [{ name: "test", context: { cluster: "test", user: "user" } }],
    "current-context": "test",
  });
}

async function leaseHolder(cp: ControlPlane, ns: string): Promise<string> {
  const lease = await cp.json("GET", `/apis/coordination.k8s.io/v1/namespaces/${ns}/leases/${LEASE}`);
  const spec = typeof lease === "object" && lease !== null ? Reflect.get(lease, "spec") : undefined;
  const holder = typeof spec === "object" && spec !== null ? Reflect.get(spec, "holderIdentity") : undefined;
  return typeof holder === "string" ? holder : "";
}

/** Starts the binary's flags with `args` and `env`, checks it syncs and leads, stops it; returns its audit. */
async function runLocally(
  cp: ControlPlane,
  o: { name: string; args?: string[]; env?: Record<string, string>; opNs: string; profile: AccessProfile },
  whileRunning?: () => Promise<void>,
): Promise<void> {
  await ensureOperatorConfig(o.opNs);
  const op = await startOperatorProcess({
    name: o.name,
    flags: binaryFlags(),
    args: [...(o.args ?? []), `--operator-config-namespace=${o.opNs}`],
    env: { ...baseEnv(), ...o.env },
  });
  try {
    assert.match(
      op.logs(),
      new RegExp(`"server":"${cp.server.replaceAll(".", "\\.")}"`),
      "the kubeconfig's server",
    );
    await waitUntil("the leader Lease", async () => /_[0-9a-f-]{36}$/.test(await leaseHolder(cp, o.opNs)), {
      proc: op.proc,
    });
    await whileRunning?.();
  } finally {
    const status = await op.stop();
    assert.equal(status.code, 0, op.proc.tail());
  }
  const logs = op.logs();
  assert.deepEqual(forbiddenLines(logs), []);
  assert.deepEqual(permissionErrors(logs), []);
  assert.deepEqual(auditViolations(op.audit(), o.profile), []);
}

/** What a kubeconfig run may touch beyond the files it names: the set's variables and the uid check. */
function kubeconfigProfile(read: string[]): AccessProfile {
  return { read, env: operatorPermissionSet().envAllow, sys: ["hostname", "uid"], ignoredEnvOk: true };
}

Deno.test("e2e local: the binary's flags with --kubeconfig, a client certificate and CA in files", async () => {
  assert.deepEqual(binaryFlags().filter((f) => !/^(-P=|--v8-flags=|--no-code-cache$)/.test(f)), []);
  const cp = await cluster();
  const opNs = await cp.namespace("local-cert");
  const dir = await tempDir("local-cert");
  await Deno.writeTextFile(`${dir}/ca.crt`, cp.ca);
  await Deno.writeTextFile(`${dir}/client.crt`, cp.cert);
  await Deno.writeTextFile(`${dir}/client.key`, cp.key);
  const path = `${dir}/admin.kubeconfig`;
  await Deno.writeTextFile(
    path,
    kubeconfig(cp, { "certificate-authority": `${dir}/ca.crt` }, {
      "client-certificate": `${dir}/client.crt`,
      "client-key": `${dir}/client.key`,
    }),
  );
  await runLocally(cp, {
    name: "local-cert",
    args: ["--kubeconfig", path],
    opNs,
    profile: kubeconfigProfile([path, `${dir}/ca.crt`, `${dir}/client.crt`, `${dir}/client.key`]),
  });
});

Deno.test("e2e local: the binary's flags with $KUBECONFIG and a token file, as the shipped RBAC", async () => {
  const cp = await cluster();
  const opNs = await cp.namespace("local-token");
  const sa = await operatorServiceAccount(cp, { namespace: opNs, name: "local-token", leaseNamespace: opNs });
  const dir = await tempDir("local-token");
  await Deno.writeTextFile(`${dir}/ca.crt`, cp.ca);
  await Deno.writeTextFile(`${dir}/token`, sa.token);
  const path = `${dir}/config`;
  await Deno.writeTextFile(
    path,
    kubeconfig(cp, { "certificate-authority": `${dir}/ca.crt` }, { "token-file": `${dir}/token` }),
  );
  await runLocally(cp, {
    name: "local-token",
    env: { KUBECONFIG: path },
    opNs,
    profile: kubeconfigProfile([path, `${dir}/ca.crt`, `${dir}/token`]),
  });
});

Deno.test("e2e local: the binary's flags with ~/.kube/config and an exec credential plugin run a Binding to Ready", async () => {
  const cp = await cluster();
  const opNs = await cp.namespace("local-exec");
  const appNs = await cp.namespace("local-exec-app");
  const sa = await operatorServiceAccount(cp, { namespace: opNs, name: "local-exec", leaseNamespace: opNs });
  const home = await tempDir("local-home");
  const bin = await tempDir("local-bin");
  // Like `aws eks get-token`: found on PATH, configured by the user's own environment (AWS_PROFILE), given
  // extra variables by the kubeconfig, and printing an ExecCredential.
  const plugin = `${bin}/bvo-credential-plugin`;
  await Deno.writeTextFile(
    plugin,
    `#!/bin/sh
[ "$BVO_PLUGIN_PROFILE" = "from-the-users-environment" ] || { echo "no profile in the environment" >&2; exit 1; }
[ "$BVO_PLUGIN_REGION" = "from-the-kubeconfig" ] || { echo "no region from the kubeconfig" >&2; exit 1; }
[ "$1" = "get-token" ] || { echo "unexpected arguments: $*" >&2; exit 1; }
case "$KUBERNETES_EXEC_INFO" in
  *'"interactive":false'*'"server":"${cp.server}"'*) ;;
  *) echo "KUBERNETES_EXEC_INFO lacks the cluster: $KUBERNETES_EXEC_INFO" >&2; exit 1 ;;
esac
cat <<EOF
{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential",
 "status":{"token":"${sa.token}","expirationTimestamp":"${new Date(Date.now() + 3_600_000).toISOString()}"}}
EOF
`,
  );
  await Deno.chmod(plugin, 0o755);
  await Deno.mkdir(`${home}/.kube`);
  await Deno.writeTextFile(
    `${home}/.kube/config`,
    kubeconfig(cp, { "certificate-authority-data": btoa(cp.ca) }, {
      exec: {
        apiVersion: "client.authentication.k8s.io/v1",
        command: "bvo-credential-plugin",
        args: ["get-token"],
        env: [{ name: "BVO_PLUGIN_REGION", value: "from-the-kubeconfig" }],
        provideClusterInfo: true,
        interactiveMode: "Never",
      },
    }),
  );
  const backrest = await startBackrest();
  try {
    await runLocally(
      cp,
      {
        name: "local-exec",
        env: {
          HOME: home,
          PATH: `${bin}:${Deno.env.get("PATH") ?? "/usr/bin:/bin"}`,
          BVO_PLUGIN_PROFILE: "from-the-users-environment",
        },
        opNs,
        profile: kubeconfigProfile([home, `${home}/.kube/config`]),
      },
      async () => {
        await applySampleBinding(backrest, appNs);
      },
    );
  } finally {
    await backrest.stop();
  }
});

Deno.test("e2e local: a failing or confused exec plugin is named, and nothing it printed is repeated", async () => {
  const dir = await tempDir("local-plugin");
  const secret = `s3cr3t-${crypto.randomUUID()}`;
  const cases = [
    [`echo '${secret}'; echo '${secret}' >&2; exit 3`, /exec plugin .+ exited with code 3$/],
    [`echo 'token: ${secret}'`, /exec plugin .+ printed no JSON$/],
    [
      `echo '{"apiVersion":"v1","kind":"Secret","status":{"token":"${secret}"}}'`,
      /printed no ExecCredential/,
    ],
    [
      `echo '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"expirationTimestamp":"${secret}","token":"${secret}"}}'`,
      /unreadable expirationTimestamp$/,
    ],
  ] as const;
  for (const [i, [script, message]] of cases.entries()) {
    const plugin = `${dir}/plugin-${i}`;
    await Deno.writeTextFile(plugin, `#!/bin/sh\n${script}\n`);
    await Deno.chmod(plugin, 0o755);
    const path = `${dir}/config-${i}`;
    await Deno.writeTextFile(
      path,
      JSON.stringify({
        apiVersion: "v1",
        kind: "Config",
        clusters: [{ name: "c", cluster: { server: "https://127.0.0.1:1" } }],
        users: [{
          name: "u",
          user: { exec: { apiVersion: "client.authentication.k8s.io/v1", command: plugin } },
        }],
        contexts: [{ name: "x", context: { cluster: "c", user: "u" } }],
        "current-context": "x",
      }),
    );
    const conn = await kubeconfigConnection({ path });
    assert.equal(conn.runsPrograms, true);
    const err = await conn.prepare().then(() => null, (e: unknown) => e);
    conn.close();
    assert.ok(err instanceof Error, `case ${i} fails`);
    const text = [err.message, err.cause instanceof Error ? err.cause.message : ""].join(" / ");
    assert.match(err.cause instanceof Error ? err.cause.message : "", message);
    assert.ok(!text.includes(secret), text);
  }
});

Deno.test("e2e local: the permission set refuses every cloud metadata address, and the env and /proc around it", async () => {
  const set = operatorPermissionSet();
  for (
    const required of [
      "169.254.169.254",
      "[fd00:ec2::254]",
      "169.254.170.2",
      "100.100.100.200",
      "[fd20:ce::254]",
      "metadata.google.internal",
    ]
  ) assert.ok(set.netDeny.includes(required), required);
  const cp = await cluster();
  const hosts = [
    ...set.netDeny,
    // Other spellings of the same addresses: the URL parser and Deno normalise them to the listed ones.
    "2852039166",
    "0xa9fea9fe",
    "169.254.169.254.",
    "[::ffff:169.254.169.254]",
    "[FD00:EC2:0::254]",
    "METADATA.GOOGLE.INTERNAL",
    "metadata.google.internal.",
  ];
  const dir = await tempDir("probe");
  const probe = `${dir}/probe.ts`;
  await Deno.writeTextFile(
    probe,
    `const out: Record<string, string> = {};
for (const url of ${JSON.stringify(hosts.flatMap((h) => [`http://${h}/`, `https://${h}:8443/x`]))}) {
  try {
    await fetch(url, { signal: AbortSignal.timeout(2000) });
    out[url] = "reached";
  } catch (e) {
    out[url] = e instanceof Error ? e.name : "error";
  }
}
const client = Deno.createHttpClient({ caCerts: [${JSON.stringify(cp.ca)}] });
const api = await fetch(${JSON.stringify(`${cp.server}/readyz`)}, { client }).catch((e) => e);
out.apiserver = api instanceof Response ? "reached" : String(api);
try {
  Deno.readTextFileSync("/proc/self/environ");
  out.environ = "read";
} catch (e) {
  out.environ = e instanceof Error ? e.name : "error";
}
out.path = Deno.env.get("PATH") === undefined ? "unset" : "set";
console.log(JSON.stringify(out));
`,
  );
  const res = await new Deno.Command(DENO, {
    args: ["run", "--config", `${ROOT}/deno.json`, ...binaryFlags(), probe],
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(res.stderr);
  assert.equal(res.code, 0, stderr);
  const out: unknown = JSON.parse(new TextDecoder().decode(res.stdout));
  assert.ok(typeof out === "object" && out !== null);
  const results = new Map(Object.entries(out).map(([k, v]) => [k, String(v)]));
  for (const host of hosts) {
    for (const url of [`http://${host}/`, `https://${host}:8443/x`]) {
      assert.equal(results.get(url), "NotCapable", url);
    }
  }
  assert.equal(results.get("apiserver"), "reached", "other addresses are not denied");
  assert.equal(results.get("environ"), "NotCapable", "/proc/self/environ would bypass the env list");
  assert.equal(results.get("path"), "unset", "variables outside the list read as unset");
});
