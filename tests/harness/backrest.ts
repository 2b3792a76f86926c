/**
 * A real Backrest (and real restic repositories) for tests. Each instance listens on 127.0.0.1 at a free
 * port with its own temp config, data and cache dirs, uses the built restic peer, and is stopped with the
 * other harness processes. Rule: the seeded config is the only state; `restart({ emptyData: true })`
 * brings back a Backrest that lost its volume.
 */

import bcrypt from "bcryptjs";
import { createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { Backrest } from "../../gen/v1/service_pb.ts";
import type { Config, Repo } from "../../gen/v1/config_pb.ts";
import { peer } from "./peers.ts";
import { freePort, type Proc, spawn, tempDir, waitUntil } from "./process.ts";

/** A user seeded into Backrest's config; enables authentication. */
export interface BackrestUser {
  username: string;
  password: string;
}

export interface BackrestOptions {
  auth?: BackrestUser;
  /** Extra environment for Backrest's process (restic inherits it). */
  env?: Record<string, string>;
  /** Run restic through a wrapper that records each run's arguments (read them with `resticRuns()`). */
  recordResticRuns?: boolean;
}

export interface BackrestInstance {
  /** Base URL, e.g. `http://127.0.0.1:41234`. */
  readonly url: string;
  /** Temp dir holding config.json, data/ and cache/. */
  readonly dir: string;
  /** The running process (replaced by `restart`). */
  readonly proc: Proc;
  stop(): Promise<void>;
  /** Stops and starts on the same port; `emptyData` also wipes data and resets the config to the seed. */
  restart(opts?: { emptyData?: boolean }): Promise<void>;
  /** The server's whole config through the real API (test assertions only: it carries passwords). */
  getConfig(): Promise<Config>;
  /** The arguments of each restic run so far, one string per run (with `recordResticRuns`). */
  resticRuns(): Promise<string[]>;
  /**
   * Any unary method of `v1.Backrest` in Connect's JSON form (e.g. `GetOperations`, `ListSnapshotFiles`),
   * with the instance's credentials: for reading what the web UI reads, beyond the subset in proto/.
   */
  rpc(method: string, body?: unknown): Promise<unknown>;
}

function seedConfig(auth: BackrestUser | undefined): string {
  const users = auth
    ? [{ name: auth.username, passwordBcrypt: btoa(bcrypt.hashSync(auth.password, 4)) }]
    : undefined;
  return JSON.stringify({
    version: 6,
    instance: "test",
    auth: users ? { disabled: false, users } : { disabled: true },
  });
}

/** Starts a Backrest peer and waits until `GET /` answers 200. */
export async function startBackrest(opts: BackrestOptions = {}): Promise<BackrestInstance> {
  const [backrest, restic] = await Promise.all([peer("backrest"), peer("restic")]);
  const dir = await tempDir("backrest");
  const port = freePort();
  const url = `http://127.0.0.1:${port}`;
  const configPath = `${dir}/config.json`;
  const seed = seedConfig(opts.auth);
  await Deno.writeTextFile(configPath, seed);
  await Deno.mkdir(`${dir}/cache`, { recursive: true });
  // The real restic, or a wrapper around it that appends each run's arguments to a file, then becomes it.
  const runsLog = `${dir}/restic-runs.log`;
  let resticCmd = restic.path;
  if (opts.recordResticRuns) {
    resticCmd = `${dir}/restic`;
    await Deno.writeTextFile(
      resticCmd,
      `#!/bin/sh\nprintf '%s\\n' "$*" >> '${runsLog}'\nexec '${restic.path}' "$@"\n`,
      { mode: 0o755 },
    );
  }

  const launch = async (): Promise<Proc> => {
    const proc = await spawn("backrest", backrest.path, {
      args: [
        "-config-file",
        configPath,
        "-data-dir",
        `${dir}/data`,
        "-bind-address",
        `127.0.0.1:${port}`,
        "-restic-cmd",
        resticCmd,
      ],
      env: { ...opts.env, BACKREST_RESTIC_COMMAND: resticCmd, XDG_CACHE_HOME: `${dir}/cache` },
      logDir: dir,
    });
    await waitUntil("backrest serves GET /", async () => {
      const res = await fetch(`${url}/`);
      await res.body?.cancel();
      return res.status === 200;
    }, { proc, timeoutMs: 30_000 });
    return proc;
  };

  let proc = await launch();
  const interceptors: Interceptor[] = opts.auth
    ? [(next) => (req) => {
      req.header.set("Authorization", `Basic ${btoa(`${opts.auth!.username}:${opts.auth!.password}`)}`);
      return next(req);
    }]
    : [];
  const client = createClient(Backrest, createConnectTransport({ baseUrl: url, interceptors }));
  const authHeader: Record<string, string> = opts.auth
    ? { Authorization: `Basic ${btoa(`${opts.auth.username}:${opts.auth.password}`)}` }
    : {};

  return {
    url,
    dir,
    get proc() {
      return proc;
    },
    stop: () => proc.stop(),
    async restart(r = {}) {
      await proc.stop();
      if (r.emptyData) {
        await Deno.remove(`${dir}/data`, { recursive: true }).catch(() => {});
        await Deno.writeTextFile(configPath, seed);
      }
      proc = await launch();
    },
    getConfig: () => client.getConfig({}, { timeoutMs: 10_000 }),
    resticRuns: async () =>
      (await Deno.readTextFile(runsLog).catch(() => "")).split("\n").filter((l) => l !== ""),
    async rpc(method, body = {}) {
      const res = await fetch(`${url}/v1.Backrest/${method}`, {
        method: "POST",
        headers: { "content-type": "application/json", "connect-protocol-version": "1", ...authHeader },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(30_000),
      });
      const text = await res.text();
      if (!res.ok) throw new Error(`Backrest ${method}: HTTP ${res.status}: ${text.slice(0, 300)}`);
      return JSON.parse(text);
    },
  };
}

/** The repo `id` as `backrest` holds it (read through its real API), or undefined. */
export async function backrestRepo(backrest: BackrestInstance, id: string): Promise<Repo | undefined> {
  return (await backrest.getConfig()).repos.find((r) => r.id === id);
}

/**
 * Waits until `backrest` holds the repo `id` and `until` is true of it (default: once it is there); returns
 * the repo. `what` names the wait in the error it throws on timeout.
 */
export async function waitForRepo(
  backrest: BackrestInstance,
  id: string,
  opts: { what?: string; until?: (repo: Repo) => boolean; timeoutMs?: number; intervalMs?: number } = {},
): Promise<Repo> {
  let repo: Repo | undefined;
  await waitUntil(opts.what ?? `Backrest holds repo ${id}`, async () => {
    repo = await backrestRepo(backrest, id);
    return repo !== undefined && (opts.until?.(repo) ?? true);
  }, { timeoutMs: opts.timeoutMs ?? 30_000, intervalMs: opts.intervalMs ?? 100 });
  return repo!;
}

/**
 * The variables the operator sends empty with a rest repository whose Secret does not supply them, so that
 * Backrest's own never reach restic (restic's rest backend reads the first two; every backend the third).
 */
export const REST_MASKED = ["RESTIC_REST_PASSWORD", "RESTIC_REST_USERNAME", "RESTIC_TLS_CLIENT_CERT"];

/** The env Backrest holds for a rest repository whose Secret supplies `env` (`KEY=value`): theirs plus the masks, sorted. */
export function restEnv(...env: string[]): string[] {
  const given = new Set(env.map((e) => e.slice(0, e.indexOf("="))));
  return [...env, ...REST_MASKED.filter((k) => !given.has(k)).map((k) => `${k}=`)].sort();
}

/** The shared rest-server (restic's REST backend) of this test process: one per process, started on use. */
let restServer: Promise<{ url: string; dir: string; proc: Proc }> | undefined;

/**
 * restic's own rest-server on loopback, serving repositories under a temp dir. Tests register REST
 * repositories (`rest:http://127.0.0.1:<port>/<name>`), the way VolSync users point at network storage: a
 * local path would name Backrest's own disk, which the operator refuses by default. Loopback is refused by
 * default too (in a cluster it is Backrest's own pod), so the tests' OperatorConfigs admit local addresses
 * (harness/operator.ts `operatorConfigSpec`).
 */
export function startRestServer(): Promise<{ url: string; dir: string; proc: Proc }> {
  restServer ??= (async () => {
    const dir = await tempDir("rest-server");
    const started = await startLoopbackServer(
      "rest-server",
      (port) => ["--path", `${dir}/data`, "--listen", `127.0.0.1:${port}`, "--no-auth"],
      dir,
    );
    return { ...started, dir: `${dir}/data` };
  })();
  return restServer;
}

/** Starts peer `name` listening on a free loopback port (`args` given that port) and waits until it answers. */
async function startLoopbackServer(
  name: "rest-server" | "gofakes3",
  args: (port: number) => string[],
  logDir: string,
): Promise<{ url: string; proc: Proc }> {
  const bin = await peer(name);
  const port = freePort();
  const url = `http://127.0.0.1:${port}`;
  const proc = await spawn(name, bin.path, { args: args(port), logDir });
  await waitUntil(`${name} answers`, async () => {
    const res = await fetch(`${url}/`);
    await res.body?.cancel();
    return res.status > 0;
  }, { proc, timeoutMs: 30_000, intervalMs: 50 });
  return { url, proc };
}

/**
 * A fresh location on the shared rest-server: its REST URI and the directory that will hold it (for
 * assertions on what was, or was not, created there). Nothing is initialized.
 */
export async function restLocation(name = `r-${crypto.randomUUID()}`): Promise<{ uri: string; dir: string }> {
  const server = await startRestServer();
  return { uri: `rest:${server.url}/${name}`, dir: `${server.dir}/${name}` };
}

/** The shared S3 server of this test process (gofakes3, in memory): one per process, started on use. */
let s3Server: Promise<{ url: string; proc: Proc }> | undefined;

/**
 * An S3 server on loopback standing in for a tenant's S3 storage (gofakes3 speaks the S3 wire protocol;
 * it accepts any signed key and creates buckets on first use).
 */
export function startS3Server(): Promise<{ url: string; proc: Proc }> {
  s3Server ??= (async () =>
    startLoopbackServer(
      "gofakes3",
      (port) => ["-backend", "memory", "-host", `127.0.0.1:${port}`, "-autobucket", "-quiet"],
      await tempDir("s3-server"),
    ))();
  return s3Server;
}

/** A restic repository in a fresh bucket of the shared S3 server, with credentials of its own. */
export async function createS3Repo(
  password = `pw-${crypto.randomUUID()}`,
): Promise<{ uri: string; password: string; keyId: string; secret: string }> {
  const [restic, server] = await Promise.all([peer("restic"), startS3Server()]);
  const uri = `s3:${server.url}/b-${crypto.randomUUID().slice(0, 8)}`;
  const [keyId, secret] = [
    `AKID${crypto.randomUUID().slice(0, 8).toUpperCase()}`,
    `s3-${crypto.randomUUID()}`,
  ];
  const cache = await tempDir("restic-cache");
  const out = await new Deno.Command(restic.path, {
    args: ["init", "--repo", uri],
    env: {
      RESTIC_PASSWORD: password,
      XDG_CACHE_HOME: cache,
      AWS_ACCESS_KEY_ID: keyId,
      AWS_SECRET_ACCESS_KEY: secret,
    },
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(`restic init (s3) failed: ${new TextDecoder().decode(out.stderr)}`);
  return { uri, password, keyId, secret };
}

/** A restic repository on the shared rest-server, initialized by the real restic (`restic init`). */
export async function createResticRepo(
  password = `pw-${crypto.randomUUID()}`,
): Promise<{ uri: string; password: string; dir: string }> {
  const restic = await peer("restic");
  const { uri, dir } = await restLocation();
  const cache = await tempDir("restic-cache");
  const out = await new Deno.Command(restic.path, {
    args: ["init", "--repo", uri],
    env: { RESTIC_PASSWORD: password, XDG_CACHE_HOME: cache },
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(`restic init failed: ${new TextDecoder().decode(out.stderr)}`);
  return { uri, password, dir };
}
