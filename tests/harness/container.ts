/**
 * The operator's image as a container, on a machine with neither a Docker engine nor `denort`:
 * `buildImage()` writes an OCI image layout with the Dockerfile's runtime contract (its final stage's USER,
 * ENV and EXPOSE, no shell, glibc and libgcc from Debian's `libc6` and `libgcc-s1`, the packages distroless
 * cc is made of) around the `deno` CLI, the program and its cached modules, since `deno compile` cannot
 * finish here; `runPod()` unpacks it and runs the operator's pod template with runc as a kubelet would:
 * the pod's uid and gid, a read-only root, no capabilities, no new privileges, an emptyDir at /tmp, the
 * service-account token mounted where the kubelet mounts it, the container's memory limit and CPU share,
 * its env and args, and the pod's grace period on SIGTERM.
 * What differs from the released image: `deno run` of the sources instead of the compiled binary (the
 * same permission set and V8 flags); the host's network namespace (the test apiserver and Backrest listen
 * on loopback), so the pod's ports are free ones; no seccomp profile (runc has no RuntimeDefault), and
 * ephemeral storage is not metered.
 * Rules: runs only as root with runc on PATH (`containerSupport()` says why not); every container gets
 * its own runc state dir and is deleted when stopped.
 */
import { isRecord } from "../../lib/json.ts";
import { binaryFlags, DENO, imageEnv, ROOT, SERVICE_ACCOUNT_DIR } from "./operator_process.ts";
import { containerArgs, containerEnv, type PodTemplate } from "./pod.ts";
import { type Proc, spawn, tempDir, waitUntil } from "./process.ts";
import type { ControlPlane } from "./control_plane.ts";

/** Why containers cannot run on this machine, or null when they can. */
export async function containerSupport(): Promise<string | null> {
  if (Deno.uid() !== 0) return "runc needs root (uid 0), this is uid " + Deno.uid();
  try {
    const out = await new Deno.Command("runc", { args: ["--version"], stdout: "piped", stderr: "piped" })
      .output();
    if (!out.success) return "runc --version failed";
  } catch {
    return "runc is not installed (apt-get install runc)";
  }
  try {
    await Deno.stat("/sys/fs/cgroup/memory");
  } catch {
    try {
      await Deno.stat("/sys/fs/cgroup/cgroup.controllers");
    } catch {
      return "no cgroup hierarchy is mounted at /sys/fs/cgroup";
    }
  }
  return null;
}

async function run(cmd: string, args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}) {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped", ...opts }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

async function must(cmd: string, args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}) {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")}: exit ${r.code}: ${r.stderr}`);
  return r.stdout;
}

async function sha256File(path: string): Promise<string> {
  return (await must("sha256sum", [path])).split(" ")[0]!;
}

async function sha256Text(text: string): Promise<string> {
  const d = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** Where the image's files live inside it. */
export const APP_DIR = "/app";
export const DENO_BIN = "/usr/bin/deno";
export const DENO_DIR = "/deno-dir";

/** An OCI image layout on disk. */
export interface Image {
  /** The layout directory (oci-layout, index.json, blobs/). */
  layout: string;
  /** The reference the index names it by, e.g. `backrest-volsync-operator-test:0.1.0`. */
  ref: string;
  /** The image config (`config` of the OCI image configuration). */
  config: ImageConfig;
  /** Paths in the root filesystem layer. */
  files: string[];
}

export interface ImageConfig {
  User: string;
  Env: string[];
  Entrypoint: string[];
  WorkingDir: string;
  ExposedPorts: Record<string, Record<string, never>>;
}

/** The Dockerfile's final stage: USER and EXPOSE (its ENV is `imageEnv()`). */
export function dockerfileContract(): { user: string; exposed: string[] } {
  const lines = Deno.readTextFileSync(`${ROOT}/Dockerfile`).replace(/\\\n/g, " ").split("\n").map((l) =>
    l.trim()
  );
  const final = lines.slice(lines.findLastIndex((l) => /^FROM\s/.test(l)));
  const user = final.find((l) => l.startsWith("USER "))?.slice(5).trim();
  const expose = final.find((l) => l.startsWith("EXPOSE "))?.slice(7).trim().split(/\s+/);
  if (!user || !expose) throw new Error("the Dockerfile's final stage has no USER or EXPOSE");
  return { user, exposed: expose.map((p) => (p.includes("/") ? p : `${p}/tcp`)) };
}

/** Copies the files of Debian packages installed here into `rootfs`, as the package installed them. */
async function copyPackages(rootfs: string, packages: string[]): Promise<void> {
  for (const pkg of packages) {
    for (const path of (await must("dpkg", ["-L", pkg])).split("\n").filter((p) => p.startsWith("/"))) {
      if (/^\/usr\/share\/(doc|lintian|man|locale|bug)\//.test(path)) continue;
      const info = await Deno.lstat(path).catch(() => null);
      if (!info || info.isDirectory) continue;
      // /lib and /lib64 are links into /usr on Debian: place each file at its real directory.
      const dir = await Deno.realPath(path.slice(0, path.lastIndexOf("/")) || "/");
      const target = `${rootfs}${dir}/${path.slice(path.lastIndexOf("/") + 1)}`;
      await Deno.mkdir(`${rootfs}${dir}`, { recursive: true });
      if (info.isSymlink) await Deno.symlink(await Deno.readLink(path), target).catch(() => {});
      else await Deno.copyFile(path, target);
    }
  }
}

let depsDir: Promise<string> | undefined;

/**
 * The program's npm and remote modules as `deno install --frozen --entrypoint main.ts` caches them (the
 * Dockerfile's step), in a DENO_DIR of their own, built once per deno.lock and Deno version.
 */
function programModules(): Promise<string> {
  depsDir ??= (async () => {
    const version = (await must(DENO, ["--version"])).split("\n")[0]!.split(" ")[1]!;
    const key = (await sha256Text(`${version}\n${await Deno.readTextFile(`${ROOT}/deno.lock`)}`)).slice(
      0,
      16,
    );
    const cache = `${
      Deno.env.get("XDG_CACHE_HOME") ?? `${Deno.env.get("HOME")}/.cache`
    }/backrest-volsync-operator`;
    const dir = `${cache}/image/deno-dir-${key}`;
    try {
      await Deno.stat(`${dir}/.done`);
      return dir;
    } catch { /* build it */ }
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    await Deno.mkdir(dir, { recursive: true });
    await must(DENO, ["install", "--frozen", "--entrypoint", "main.ts"], {
      cwd: ROOT,
      env: { ...Deno.env.toObject(), DENO_DIR: dir, DENO_NO_UPDATE_CHECK: "1" },
    });
    await Deno.writeTextFile(`${dir}/.done`, "");
    return dir;
  })();
  return depsDir;
}

/** Builds the image: an OCI image layout of one uncompressed layer, named `ref`. */
export async function buildImage(ref: string): Promise<Image> {
  const dir = await tempDir("image");
  const rootfs = `${dir}/rootfs`;
  await Deno.mkdir(rootfs);
  // distroless: /lib and /lib64 link into /usr; a root and a nonroot (65532) user; /tmp; CA certificates.
  for (
    const d of [
      "usr/lib",
      "usr/lib64",
      "usr/bin",
      "etc/ssl/certs",
      "home/nonroot",
      "tmp",
      "proc",
      "sys",
      "dev",
    ]
  ) {
    await Deno.mkdir(`${rootfs}/${d}`, { recursive: true });
  }
  await Deno.symlink("usr/lib", `${rootfs}/lib`);
  await Deno.symlink("usr/lib64", `${rootfs}/lib64`);
  await Deno.chmod(`${rootfs}/tmp`, 0o1777);
  await Deno.writeTextFile(
    `${rootfs}/etc/passwd`,
    "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n",
  );
  await Deno.writeTextFile(`${rootfs}/etc/group`, "root:x:0:\nnonroot:x:65532:\n");
  await Deno.copyFile("/etc/ssl/certs/ca-certificates.crt", `${rootfs}/etc/ssl/certs/ca-certificates.crt`);
  await copyPackages(rootfs, ["libc6", "libgcc-s1"]);
  // The runtime, the program (what the Dockerfile copies into its build stage) and its modules.
  const denoPath = (await must(DENO, ["eval", "--quiet", "console.log(Deno.execPath())"])).trim();
  await Deno.copyFile(denoPath, `${rootfs}${DENO_BIN}`);
  await Deno.chmod(`${rootfs}${DENO_BIN}`, 0o755);
  await Deno.mkdir(`${rootfs}${APP_DIR}`);
  for (const f of ["deno.json", "deno.lock", "main.ts"]) {
    await Deno.copyFile(`${ROOT}/${f}`, `${rootfs}${APP_DIR}/${f}`);
  }
  await must("cp", ["-r", `${ROOT}/lib`, `${ROOT}/gen`, `${rootfs}${APP_DIR}/`]);
  await must("find", [`${rootfs}${APP_DIR}/lib`, "-name", "*_test.ts", "-delete"]);
  await must("cp", ["-r", await programModules(), `${rootfs}${DENO_DIR}`]);
  await Deno.remove(`${rootfs}${DENO_DIR}/.done`);

  // The layer: owned by root, as an image build leaves it.
  await Deno.mkdir(`${dir}/layout/blobs/sha256`, { recursive: true });
  const layerTmp = `${dir}/layer.tar`;
  await must("tar", [
    "--numeric-owner",
    "--owner=0",
    "--group=0",
    "--sort=name",
    "-C",
    rootfs,
    "-cf",
    layerTmp,
    ".",
  ]);
  const files = (await must("tar", ["-tf", layerTmp])).split("\n").filter(Boolean).map((f) =>
    f.replace(/^\.\/?/, "/")
  );
  const layerDigest = await sha256File(layerTmp);
  const layerSize = (await Deno.stat(layerTmp)).size;
  await Deno.rename(layerTmp, `${dir}/layout/blobs/sha256/${layerDigest}`);
  await Deno.remove(rootfs, { recursive: true });

  const contract = dockerfileContract();
  const env = {
    PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    SSL_CERT_FILE: "/etc/ssl/certs/ca-certificates.crt",
    DENO_DIR,
    DENO_NO_UPDATE_CHECK: "1",
    ...imageEnv(),
  };
  const config: ImageConfig = {
    User: contract.user,
    Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
    // The compiled binary's permission set and V8 flags, given to `deno run`; nothing may be fetched.
    Entrypoint: [DENO_BIN, "run", "--cached-only", "--frozen", ...binaryFlags(), `${APP_DIR}/main.ts`],
    WorkingDir: APP_DIR,
    ExposedPorts: Object.fromEntries(contract.exposed.map((p) => [p, {}])),
  };
  const blob = async (obj: unknown) => {
    const text = JSON.stringify(obj);
    const digest = await sha256Text(text);
    await Deno.writeTextFile(`${dir}/layout/blobs/sha256/${digest}`, text);
    return { digest: `sha256:${digest}`, size: new TextEncoder().encode(text).length };
  };
  const configBlob = await blob({
    architecture: Deno.build.arch === "x86_64" ? "amd64" : "arm64",
    os: "linux",
    config,
    rootfs: { type: "layers", diff_ids: [`sha256:${layerDigest}`] },
  });
  const manifest = await blob({
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: { mediaType: "application/vnd.oci.image.config.v1+json", ...configBlob },
    layers: [{
      mediaType: "application/vnd.oci.image.layer.v1.tar",
      digest: `sha256:${layerDigest}`,
      size: layerSize,
    }],
  });
  await Deno.writeTextFile(`${dir}/layout/oci-layout`, JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  await Deno.writeTextFile(
    `${dir}/layout/index.json`,
    JSON.stringify({
      schemaVersion: 2,
      manifests: [{
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        ...manifest,
        annotations: { "org.opencontainers.image.ref.name": ref },
      }],
    }),
  );
  return { layout: `${dir}/layout`, ref, config, files };
}

/** Reads an image back from its layout: config and layer paths, by the index's reference. */
async function readImage(layout: string, ref: string): Promise<{ config: ImageConfig; layers: string[] }> {
  const json = async (digest: string): Promise<unknown> =>
    JSON.parse(await Deno.readTextFile(`${layout}/blobs/sha256/${digest.replace(/^sha256:/, "")}`));
  const index: unknown = JSON.parse(await Deno.readTextFile(`${layout}/index.json`));
  const entry = (isRecord(index) && Array.isArray(index.manifests) ? index.manifests : []).find((m) =>
    isRecord(m) && isRecord(m.annotations) && m.annotations["org.opencontainers.image.ref.name"] === ref
  );
  if (!isRecord(entry)) throw new Error(`the image layout has no ${ref}`);
  const manifest = await json(String(entry.digest));
  if (!isRecord(manifest) || !isRecord(manifest.config) || !Array.isArray(manifest.layers)) {
    throw new Error("not an image manifest");
  }
  const config = await json(String(manifest.config.digest));
  if (!isRecord(config) || !isRecord(config.config)) throw new Error("not an image config");
  return {
    config: config.config as unknown as ImageConfig,
    layers: manifest.layers.filter(isRecord).map((l) =>
      `${layout}/blobs/sha256/${String(l.digest).replace(/^sha256:/, "")}`
    ),
  };
}

/** A quantity as bytes (`128Mi`, `64M`, `1Gi`). */
export function bytes(q: string): number {
  const m = /^(\d+)(Ki|Mi|Gi|K|M|G)?$/.exec(q);
  if (!m) throw new Error(`quantity ${q} is not understood here`);
  const unit = { Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, K: 1e3, M: 1e6, G: 1e9 }[m[2] ?? ""] ?? 1;
  return Number(m[1]) * unit;
}

/** CPU shares of a request (`50m` -> 51), as the kubelet computes them for cgroup v1. */
export function cpuShares(q: string): number {
  const milli = q.endsWith("m") ? Number(q.slice(0, -1)) : Number(q) * 1000;
  return Math.max(2, Math.floor((milli * 1024) / 1000));
}

function field(v: unknown, path: string): unknown {
  let cur = v;
  for (const k of path.split(".")) {
    cur = isRecord(cur) ? cur[k] : Array.isArray(cur) ? cur[Number(k)] : undefined;
  }
  return cur;
}

export interface RunningContainer {
  readonly id: string;
  readonly proc: Proc;
  /** The container's init process, as the host sees it. */
  pid(): Promise<number>;
  /** Runs a program in the container (as the pod's user); its exit code and output. */
  exec(args: string[]): Promise<{ code: number; stdout: string; stderr: string }>;
  /** The host's path of the container's memory cgroup (cgroup v1). */
  memoryCgroup(): Promise<string>;
  /**
   * What the kubelet does to end the pod: SIGTERM, then SIGKILL once the grace period has passed.
   * Returns the exit status and whether it took the SIGKILL.
   */
  terminate(): Promise<{ code: number; killed: boolean }>;
  logs(): string;
}

/**
 * Runs the operator's container of `template` from `image` with runc, as a kubelet would for a pod named
 * `pod.name` in `pod.namespace`, with a token of `pod.serviceAccount`.
 */
export async function runPod(
  cp: ControlPlane,
  image: Image,
  template: PodTemplate,
  pod: { name: string; namespace: string; serviceAccount: string },
): Promise<RunningContainer> {
  const c = template.container;
  if (c.image !== image.ref) throw new Error(`the pod runs ${c.image}, the image built is ${image.ref}`);
  const { config, layers } = await readImage(image.layout, image.ref);
  const dir = await tempDir("container");
  const rootfs = `${dir}/bundle/rootfs`;
  await Deno.mkdir(rootfs, { recursive: true });
  for (const layer of layers) await must("tar", ["--numeric-owner", "-xf", layer, "-C", rootfs]);

  // The service-account volume, as the kubelet projects it: token, ca.crt and namespace, read-only.
  const sa = `${dir}/serviceaccount`;
  await Deno.mkdir(sa);
  await Deno.writeTextFile(`${sa}/token`, await cp.serviceAccountToken(pod.namespace, pod.serviceAccount));
  await Deno.writeTextFile(`${sa}/ca.crt`, cp.ca);
  await Deno.writeTextFile(`${sa}/namespace`, pod.namespace);
  for (const f of ["token", "ca.crt", "namespace"]) await Deno.chmod(`${sa}/${f}`, 0o644);

  const spec = template.spec;
  const cspec = field(spec, "containers.0");
  const uid = Number(
    field(cspec, "securityContext.runAsUser") ?? field(spec, "securityContext.runAsUser") ??
      config.User.split(":")[0],
  );
  const gid = Number(
    field(cspec, "securityContext.runAsGroup") ?? field(spec, "securityContext.runAsGroup") ??
      config.User.split(":")[1] ?? uid,
  );
  const readOnly = field(cspec, "securityContext.readOnlyRootFilesystem") === true;
  const noNewPrivileges = field(cspec, "securityContext.allowPrivilegeEscalation") === false;
  const dropped = field(cspec, "securityContext.capabilities.drop");
  if (!(Array.isArray(dropped) && dropped.includes("ALL"))) {
    throw new Error("the container keeps capabilities");
  }
  const memory = field(cspec, "resources.limits.memory");
  const cpu = field(cspec, "resources.requests.cpu");

  const port = new URL(cp.server).port;
  const env: Record<string, string> = {};
  for (const kv of config.Env) env[kv.slice(0, kv.indexOf("="))] = kv.slice(kv.indexOf("=") + 1);
  Object.assign(env, {
    HOSTNAME: pod.name,
    HOME: "/home/nonroot",
    KUBERNETES_SERVICE_HOST: "127.0.0.1",
    KUBERNETES_SERVICE_PORT: port,
  });
  Object.assign(env, containerEnv(c, pod));

  const mounts: Record<string, unknown>[] = [
    { destination: "/proc", type: "proc", source: "proc" },
    {
      destination: "/dev",
      type: "tmpfs",
      source: "tmpfs",
      options: ["nosuid", "strictatime", "mode=755", "size=65536k"],
    },
    {
      destination: "/dev/pts",
      type: "devpts",
      source: "devpts",
      options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"],
    },
    {
      destination: "/dev/shm",
      type: "tmpfs",
      source: "shm",
      options: ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
    },
    { destination: "/dev/mqueue", type: "mqueue", source: "mqueue", options: ["nosuid", "noexec", "nodev"] },
    { destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", "ro"] },
    { destination: SERVICE_ACCOUNT_DIR, type: "bind", source: sa, options: ["rbind", "ro"] },
  ];
  // emptyDir volumes as tmpfs of their size limit, where the container mounts them.
  const volumes = new Map<string, unknown>();
  for (const v of Array.isArray(spec.volumes) ? spec.volumes : []) {
    if (isRecord(v)) volumes.set(String(v.name), v);
  }
  for (
    const m of Array.isArray(field(cspec, "volumeMounts")) ? field(cspec, "volumeMounts") as unknown[] : []
  ) {
    const v = volumes.get(String(field(m, "name")));
    if (!isRecord(v) || !isRecord(v.emptyDir)) {
      throw new Error(`volume ${String(field(m, "name"))} is not an emptyDir`);
    }
    const size = typeof v.emptyDir.sizeLimit === "string" ? [`size=${bytes(v.emptyDir.sizeLimit)}`] : [];
    mounts.push({
      destination: String(field(m, "mountPath")),
      type: "tmpfs",
      source: "tmpfs",
      options: ["nosuid", "nodev", "mode=1777", ...size],
    });
  }

  const id = `bvo-${pod.name}-${crypto.randomUUID().slice(0, 8)}`;
  const runtime = {
    ociVersion: "1.0.2",
    process: {
      terminal: false,
      user: { uid, gid },
      args: [...config.Entrypoint, ...containerArgs(c, env)],
      env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
      cwd: config.WorkingDir,
      capabilities: { bounding: [], effective: [], permitted: [], inheritable: [], ambient: [] },
      noNewPrivileges,
    },
    root: { path: "rootfs", readonly: readOnly },
    hostname: pod.name,
    mounts,
    linux: {
      // No network namespace: the container shares the host's, where the test peers listen on loopback.
      namespaces: [{ type: "pid" }, { type: "ipc" }, { type: "uts" }, { type: "mount" }],
      resources: {
        devices: [{ allow: false, access: "rwm" }],
        ...(typeof memory === "string" ? { memory: { limit: bytes(memory), swap: bytes(memory) } } : {}),
        ...(typeof cpu === "string" ? { cpu: { shares: cpuShares(cpu) } } : {}),
      },
      maskedPaths: [
        "/proc/acpi",
        "/proc/kcore",
        "/proc/keys",
        "/proc/latency_stats",
        "/proc/timer_list",
        "/proc/timer_stats",
        "/proc/sched_debug",
        "/sys/firmware",
        "/proc/scsi",
      ],
      readonlyPaths: [
        "/proc/asound",
        "/proc/bus",
        "/proc/fs",
        "/proc/irq",
        "/proc/sys",
        "/proc/sysrq-trigger",
      ],
    },
  };
  await Deno.writeTextFile(`${dir}/bundle/config.json`, JSON.stringify(runtime, null, 2));
  const state = `${dir}/runc-state`;
  const runc = (...args: string[]) => run("runc", ["--root", state, ...args]);
  const proc = await spawn(id, "runc", {
    args: ["--root", state, "run", "--bundle", `${dir}/bundle`, id],
    logDir: dir,
    env: { PATH: Deno.env.get("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin" },
  });
  const grace = Number(field(spec, "terminationGracePeriodSeconds") ?? 30);
  let deleted = false;
  const remove = async () => {
    if (deleted) return;
    deleted = true;
    await runc("delete", "--force", id);
  };
  globalThis.addEventListener("unload", () => {
    if (!deleted) new Deno.Command("runc", { args: ["--root", state, "delete", "--force", id] }).outputSync();
  });
  const container: RunningContainer = {
    id,
    proc,
    async pid() {
      const s: unknown = JSON.parse(await must("runc", ["--root", state, "state", id]));
      return Number(field(s, "pid"));
    },
    exec: (args) => runc("exec", "--user", `${uid}:${gid}`, id, ...args),
    async memoryCgroup() {
      const pid = await container.pid();
      const line = (await Deno.readTextFile(`/proc/${pid}/cgroup`)).split("\n").find((l) =>
        /:memory:/.test(l)
      );
      if (!line) throw new Error("no memory cgroup (cgroup v1) for the container");
      return `/sys/fs/cgroup/memory${line.slice(line.lastIndexOf(":") + 1)}`;
    },
    async terminate() {
      await runc("kill", id, "TERM");
      let killed = false;
      const timer = setTimeout(async () => {
        killed = true;
        await runc("kill", id, "KILL");
      }, grace * 1000);
      const status = await proc.exited;
      clearTimeout(timer);
      await remove();
      return { code: status.code, killed };
    },
    logs: () => {
      try {
        return Deno.readTextFileSync(proc.logPath);
      } catch {
        return "";
      }
    },
  };
  return container;
}

/** Waits until the container's readiness probe answers 200 (or the container exits). */
export async function waitReady(container: RunningContainer, template: PodTemplate): Promise<void> {
  const c = template.container;
  await waitUntil(`${container.id} ${c.readinessPath}`, async () => {
    const res = await fetch(`http://127.0.0.1:${c.readinessPort}${c.readinessPath}`);
    await res.body?.cancel();
    return res.status === 200;
  }, { proc: container.proc, timeoutMs: 90_000 });
}
