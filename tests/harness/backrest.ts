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
import type { Config } from "../../gen/v1/config_pb.ts";
import { peer } from "./peers.ts";
import { freePort, type Proc, spawn, tempDir, waitUntil } from "./process.ts";

/** A user seeded into Backrest's config; enables authentication. */
export interface BackrestUser {
  username: string;
  password: string;
}

export interface BackrestOptions {
  auth?: BackrestUser;
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
        restic.path,
      ],
      env: { BACKREST_RESTIC_COMMAND: restic.path, XDG_CACHE_HOME: `${dir}/cache` },
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
  };
}

/** A restic repository on local disk, initialized by the real restic (`restic init`). */
export async function createResticRepo(
  password = `pw-${crypto.randomUUID()}`,
): Promise<{ uri: string; password: string }> {
  const restic = await peer("restic");
  const uri = `${await tempDir("restic-repo")}/repo`;
  const cache = await tempDir("restic-cache");
  const out = await new Deno.Command(restic.path, {
    args: ["init", "--repo", uri],
    env: { RESTIC_PASSWORD: password, XDG_CACHE_HOME: cache },
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(`restic init failed: ${new TextDecoder().decode(out.stderr)}`);
  return { uri, password };
}
