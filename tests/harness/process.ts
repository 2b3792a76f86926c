/**
 * Child processes for the real peers: loopback ports, logs kept in a file, and cleanup that happens
 * even when a test fails, the runner is interrupted, or an earlier run died (stale pids are reaped).
 * Rule: every process the harness starts is registered here and killed by `stopAll()` or at exit.
 */

const live = new Set<Deno.ChildProcess>();
let hooked = false;

const runDir = `${
  Deno.env.get("XDG_CACHE_HOME") ?? `${Deno.env.get("HOME")}/.cache`
}/backrest-volsync-operator/run`;
const pidFile = `${runDir}/${Deno.pid}.pids`;

/** Kills what an earlier test process that died without cleanup (kill -9, OOM) left running. */
function reapOrphans(): void {
  Deno.mkdirSync(runDir, { recursive: true });
  for (const entry of Deno.readDirSync(runDir)) {
    const owner = Number(entry.name.split(".")[0]);
    if (!Number.isInteger(owner) || owner === Deno.pid) continue;
    try {
      Deno.kill(owner, "SIGCONT"); // signal 0 is not offered; SIGCONT is harmless to a live owner
      continue;
    } catch { /* owner is gone: its children are orphans */ }
    try {
      for (const pid of Deno.readTextFileSync(`${runDir}/${entry.name}`).split("\n").filter(Boolean)) {
        try {
          Deno.kill(Number(pid), "SIGKILL");
        } catch { /* already gone */ }
      }
      Deno.removeSync(`${runDir}/${entry.name}`);
    } catch { /* another process reaped it */ }
  }
}

function hookExit(): void {
  if (hooked) return;
  hooked = true;
  reapOrphans();
  const killAll = () => {
    for (const child of live) {
      try {
        child.kill("SIGKILL");
      } catch { /* already gone */ }
    }
    live.clear();
    try {
      Deno.removeSync(pidFile);
    } catch { /* none written */ }
  };
  globalThis.addEventListener("unload", killAll);
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, () => {
      killAll();
      Deno.exit(130);
    });
  }
}

/**
 * A free TCP port on 127.0.0.1 for a peer to bind next. Between our check and the peer's bind any process
 * could take it, and one that connects anywhere takes a port from the kernel's ephemeral range without
 * asking: with etcd, the apiserver and Backrest opening connections all the time, a port the kernel had
 * just picked as free (port 0) was taken that way ("bind: address already in use"). So the port is picked
 * below that range, where only an explicit bind can land, at random (other test processes pick too) and
 * never twice in this process.
 */
export function freePort(): number {
  ephemeralLow ??= readEphemeralLow();
  for (let i = 0; i < 100 && ephemeralLow - PICK_FLOOR > 1000; i++) {
    const port = PICK_FLOOR + Math.floor(Math.random() * (ephemeralLow - PICK_FLOOR));
    if (handedOut.has(port)) continue;
    try {
      Deno.listen({ hostname: "127.0.0.1", port }).close();
    } catch {
      continue; // someone holds it
    }
    handedOut.add(port);
    return port;
  }
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/** The lowest port picked: well clear of the ports system services use. */
const PICK_FLOOR = 20_000;
const handedOut = new Set<number>();

/** Where the kernel's ephemeral port range starts (Linux), read once. */
let ephemeralLow: number | undefined;

function readEphemeralLow(): number {
  try {
    const low = Number(
      Deno.readTextFileSync("/proc/sys/net/ipv4/ip_local_port_range").trim().split(/\s+/)[0],
    );
    if (Number.isInteger(low)) return low;
  } catch { /* not Linux, or not readable */ }
  return 32_768; // Linux's default
}

export interface Proc {
  readonly name: string;
  readonly child: Deno.ChildProcess;
  readonly logPath: string;
  /** Resolves with the exit status once the process ends. */
  readonly exited: Promise<Deno.CommandStatus>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
  stop(graceMs?: number): Promise<void>;
  /** SIGKILL and wait. */
  kill(): Promise<void>;
  /** The last `bytes` of its log, for error messages. */
  tail(bytes?: number): string;
}

export interface SpawnOptions {
  args: string[];
  env?: Record<string, string>;
  cwd?: string;
  /** Directory for `<name>.log`; the process's stdout and stderr go there. */
  logDir: string;
}

/** Starts `cmd` with its output in `<logDir>/<name>.log`. */
export async function spawn(name: string, cmd: string, opts: SpawnOptions): Promise<Proc> {
  hookExit();
  const logPath = `${opts.logDir}/${name}.log`;
  const log = await Deno.open(logPath, { create: true, append: true, write: true });
  const child = new Deno.Command(cmd, {
    args: opts.args,
    ...(opts.env ? { env: opts.env } : {}),
    ...(opts.cwd ? { cwd: opts.cwd } : {}),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  live.add(child);
  Deno.writeTextFileSync(pidFile, `${child.pid}\n`, { append: true });
  // Both streams through `log.write` (the file is opened to append): piping stdout to `log.writable` beside
  // it lost every byte of stdout here (Deno 2.9.6).
  const toLog = () =>
    new WritableStream<Uint8Array>({
      async write(chunk) {
        for (let off = 0; off < chunk.length;) off += await log.write(chunk.subarray(off));
      },
    });
  const pump = Promise.all([
    child.stdout.pipeTo(toLog()).catch(() => {}),
    child.stderr.pipeTo(toLog()).catch(() => {}),
  ]).finally(() => log.close());
  const exited = child.status.then(async (s) => {
    live.delete(child);
    await pump;
    return s;
  });
  const proc: Proc = {
    name,
    child,
    logPath,
    exited,
    async stop(graceMs = 5000) {
      try {
        child.kill("SIGTERM");
      } catch { /* gone */ }
      const timer = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch { /* gone */ }
      }, graceMs);
      await exited;
      clearTimeout(timer);
    },
    async kill() {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
      await exited;
    },
    tail(bytes = 3000) {
      try {
        const text = Deno.readTextFileSync(logPath);
        return text.slice(-bytes);
      } catch {
        return "";
      }
    },
  };
  return proc;
}

/**
 * Polls `check` until it returns true; throws with `describe()` (e.g. a log tail) after `timeoutMs`,
 * or at once if `proc` exits first.
 */
export async function waitUntil(
  what: string,
  check: () => Promise<boolean>,
  opts: { timeoutMs?: number; intervalMs?: number; proc?: Proc } = {},
): Promise<void> {
  const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
  let exited = false;
  opts.proc?.exited.then(() => exited = true);
  while (true) {
    try {
      if (await check()) return;
    } catch { /* not yet */ }
    if (exited) throw new Error(`${what}: ${opts.proc?.name} exited early; log tail:\n${opts.proc?.tail()}`);
    if (Date.now() > deadline) {
      throw new Error(
        `${what}: not ready after ${opts.timeoutMs ?? 30_000} ms${
          opts.proc ? `; log tail:\n${opts.proc.tail()}` : ""
        }`,
      );
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 100));
  }
}

/** A fresh temp dir under the run's root, removed at exit unless BVO_KEEP_TMP is set. */
export async function tempDir(prefix: string): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: `bvo-${prefix}-` });
  if (!Deno.env.get("BVO_KEEP_TMP")) {
    globalThis.addEventListener("unload", () => {
      try {
        Deno.removeSync(dir, { recursive: true });
      } catch { /* best effort */ }
    });
  }
  return dir;
}
