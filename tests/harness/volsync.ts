/**
 * VolSync's side of the story without VolSync's controller or a kubelet: what its restic mover does to the
 * repository, and what VolSync then writes into the ReplicationSource's status. Both follow VolSync
 * v0.16.0's sources: `mover-restic/entry.sh` (the mover script), `internal/controller/mover/restic/`
 * (its env, mounts and log filter) and `internal/controller/statemachine/` (the status around a sync).
 * Rule: the mover reads only what VolSync hands it (the repository Secret's keys as env, the PVC at
 * `/data`, a cache at `/cache`), so a snapshot made here is one VolSync would have made.
 */

import type { ControlPlane } from "./control_plane.ts";
import { peer } from "./peers.ts";
import { tempDir } from "./process.ts";

/** What the mover leaves behind: the snapshot it saved and the log VolSync keeps in `latestMoverStatus`. */
export interface MoverRun {
  /** restic's short snapshot id, as printed by `snapshot <id> saved`. */
  snapshotId: string;
  /** The mover's output through VolSync's success filter (`LogLineFilterSuccess`). */
  logs: string;
}

/** A fresh directory holding `files` (relative path -> content): the contents of the source PVC. */
export async function pvcWith(files: Record<string, string>): Promise<string> {
  const dir = await tempDir("pvc");
  for (const [path, content] of Object.entries(files)) {
    const full = `${dir}/${path}`;
    await Deno.mkdir(full.slice(0, full.lastIndexOf("/")), { recursive: true });
    await Deno.writeTextFile(full, content);
  }
  return dir;
}

/** entry.sh's lines that VolSync keeps in `latestMoverStatus.logs` after a successful job (logfilter.go). */
const SUCCESS_LINE = new RegExp(
  [
    String.raw`^\s*([pP]rocessed)\s.+([fF]iles)`,
    String.raw`^\s*([sS]napshot)\s.+([sS]aved)`,
    String.raw`^\s*(No eligible)`,
    String.raw`(No data)`,
    String.raw`(Directory is empty)`,
    String.raw`^\s*([cC]reated)`,
    String.raw`^\s*([rR]epository)\s.+([oO]pened)`,
    String.raw`^\s*([rR]estoring)`,
    String.raw`^\s*([nN]o parent snapshot)`,
    String.raw`^\s*([uU]sing parent snapshot)`,
    String.raw`^\s*([aA]dded to the repository)`,
    String.raw`^\s*([sS]uccessfully)`,
    String.raw`(RESTORE_OPTIONS)`,
    String.raw`([iI]nitialize [dD]ir)`,
    String.raw`^\s*([fF]atal)`,
    String.raw`^\s*(ERROR)`,
    String.raw`^\s*([rR]estic completed in)`,
  ].join("|"),
);

/**
 * Runs the restic mover's `backup` operation on `pvc` with `env` (the repository Secret's keys):
 * `restic backup --host volsync --exclude='lost+found' .` from `/data`, with `RESTIC_CACHE_DIR=/cache` and
 * `RESTIC_PROGRESS_FPS=0.1`, as entry.sh does in the mover pod. The PVC must appear at `/data` for restic
 * to record VolSync's path, so restic runs in its own mount namespace (`unshare`), chrooted into
 * a tmpfs holding only the PVC, a cache and the restic binary (static, as the peer is built): nothing on
 * the host is touched. The repository must exist (entry.sh's `restic init` step is not repeated here).
 */
export async function moverBackup(env: Record<string, string>, pvc: string): Promise<MoverRun> {
  const restic = await peer("restic");
  const root = await tempDir("mover-root");
  const script = [
    "set -e",
    "root=$1 data=$2 restic=$3; shift 3",
    'mount -t tmpfs -o mode=0755 tmpfs "$root"',
    'mkdir -p "$root/data" "$root/cache" "$root/tmp" "$root/bin"',
    'mount --bind "$data" "$root/data"',
    'touch "$root/bin/restic"',
    'mount --bind "$restic" "$root/bin/restic"',
    'exec unshare --root="$root" --wd=/data -- /bin/restic "$@"',
  ].join("\n");
  const started = Date.now();
  const out = await new Deno.Command("unshare", {
    args: [
      // As root a mount namespace alone will do (and works where unprivileged user namespaces are
      // restricted); otherwise a user namespace maps us to root inside it. Mounts stay private to it.
      ...(Deno.uid() === 0 ? [] : ["--user", "--map-root-user"]),
      "--mount",
      "--propagation=private",
      "--",
      "/bin/sh",
      "-c",
      script,
      "mover",
      root,
      pvc,
      restic.path,
      "backup",
      "--host",
      "volsync",
      "--exclude=lost+found",
      ".",
    ],
    clearEnv: true,
    env: {
      ...env,
      PATH: "/usr/sbin:/usr/bin:/sbin:/bin",
      DATA_DIR: "/data",
      RESTIC_CACHE_DIR: "/cache",
      RESTIC_PROGRESS_FPS: "0.1",
    },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  const stderr = new TextDecoder().decode(out.stderr);
  if (!out.success) {
    // restic's own words only: the env (the Secret's values) is never part of an error here.
    const hint = /^(unshare|mount|sh):/m.test(stderr)
      ? " (the mover needs root, or unprivileged user namespaces: on Ubuntu 24.04 " +
        "sysctl kernel.apparmor_restrict_unprivileged_userns=0)"
      : "";
    throw new Error(`mover backup failed (exit ${out.code})${hint}: ${stderr.slice(-800)}`);
  }
  const snapshotId = /^snapshot ([0-9a-f]+) saved$/m.exec(stdout)?.[1];
  if (!snapshotId) throw new Error(`mover backup printed no saved snapshot:\n${stdout}`);
  // The pod log holds both streams; restic writes its summary to stdout and its notes to stderr.
  const lines = [
    ...stderr.split("\n"),
    ...stdout.split("\n"),
    `Restic completed in ${Math.round((Date.now() - started) / 1000)}s`,
  ];
  return { snapshotId, logs: lines.filter((l) => SUCCESS_LINE.test(l)).join("\n") };
}

interface ReplicationSourceLike {
  metadata: { name: string; namespace: string };
  spec?: { restic?: { repository?: string }; trigger?: { schedule?: string; manual?: string } };
  status?: { lastSyncTime?: string };
}

const RS = "/apis/volsync.backube/v1alpha1";

/** The keys of a Secret as strings (as the mover pod sees them in its env). */
async function secretEnv(cp: ControlPlane, ns: string, name: string): Promise<Record<string, string>> {
  const s = await cp.json("GET", `/api/v1/namespaces/${ns}/secrets/${name}`) as {
    data?: Record<string, string>;
  };
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(s.data ?? {})) {
    env[k] = new TextDecoder().decode(Uint8Array.from(atob(v), (c) => c.charCodeAt(0)));
  }
  return env;
}

/** metav1.Time: RFC 3339 in UTC, whole seconds. */
function metaTime(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(".000Z", "Z");
}

/**
 * The first minute after `from` matching a 5-field cron spec in UTC (numbers, `*`, ranges, lists and
 * steps): enough for the schedules tests write, as VolSync computes `nextSyncTime` from the last sync.
 */
export function nextCron(spec: string, from: Date): Date | undefined {
  const fields = spec.trim().split(/\s+/);
  if (fields.length !== 5) return undefined;
  const matches = (field: string, value: number) =>
    field.split(",").some((part) => {
      const [range = "*", stepText] = part.split("/");
      const step = stepText === undefined ? 1 : Number(stepText);
      const [lo, hi] = range === "*"
        ? [0, Infinity]
        : range.includes("-")
        ? range.split("-").map(Number)
        : [Number(range), stepText === undefined ? Number(range) : Infinity];
      return lo !== undefined && hi !== undefined && value >= lo && value <= hi && (value - lo) % step === 0;
    });
  const t = new Date(Math.floor(from.getTime() / 60_000) * 60_000);
  for (let i = 0; i < 366 * 24 * 60; i++) {
    t.setTime(t.getTime() + 60_000);
    const [m = "", h = "", dom = "", mon = "", dow = ""] = fields;
    if (
      matches(m, t.getUTCMinutes()) && matches(h, t.getUTCHours()) && matches(dom, t.getUTCDate()) &&
      matches(mon, t.getUTCMonth() + 1) && matches(dow, t.getUTCDay())
    ) return new Date(t);
  }
  return undefined;
}

/** One completed sync, as the ReplicationSource's status shows it afterwards. */
export interface CompletedSync extends MoverRun {
  lastSyncTime: string;
}

/**
 * One complete VolSync sync of the ReplicationSource `ns/name` (restic mover): the status VolSync writes
 * when the sync starts (`lastSyncStartTime`, Synchronizing=True), the mover's backup of `pvc` with the
 * repository Secret the source names, then the status after the job succeeded and cleanup ran
 * (`latestMoverStatus`, `lastSyncTime`, `lastSyncDuration`, `nextSyncTime` for a schedule or
 * `lastManualSync` for a manual trigger, `lastSyncStartTime` cleared, Synchronizing=False). A new
 * `lastSyncTime` (whole seconds, like metav1.Time) is guaranteed to differ from the previous one.
 */
export async function volsyncSync(
  cp: ControlPlane,
  ns: string,
  name: string,
  pvc: string,
): Promise<CompletedSync> {
  const path = `${RS}/namespaces/${ns}/replicationsources/${name}`;
  const rs = await cp.json("GET", path) as ReplicationSourceLike;
  const repository = rs.spec?.restic?.repository;
  if (!repository) throw new Error(`ReplicationSource ${ns}/${name} has no spec.restic.repository`);
  const patch = (status: Record<string, unknown>) =>
    cp.json("PATCH", `${path}/status`, { status }, { "content-type": "application/merge-patch+json" });

  const start = Date.now();
  await patch({
    lastSyncStartTime: metaTime(start),
    conditions: [{
      type: "Synchronizing",
      status: "True",
      reason: "SyncInProgress",
      message: "Synchronization in-progress",
      lastTransitionTime: metaTime(start),
    }],
  });
  const run = await moverBackup(await secretEnv(cp, ns, repository), pvc);
  // metav1.Time has whole seconds: a second sync within the same second would look like the first.
  while (metaTime(Date.now()) === rs.status?.lastSyncTime) await new Promise((r) => setTimeout(r, 50));
  const end = Date.now();
  const schedule = rs.spec?.trigger?.schedule;
  const manual = rs.spec?.trigger?.manual;
  const next = schedule ? nextCron(schedule, new Date(end)) : undefined;
  const lastSyncTime = metaTime(end);
  await patch({
    latestMoverStatus: { result: "Successful", logs: run.logs },
    lastSyncTime,
    lastSyncDuration: `${((end - start) / 1000).toFixed(3)}s`,
    lastSyncStartTime: null,
    ...(next ? { nextSyncTime: metaTime(next.getTime()) } : {}),
    ...(manual ? { lastManualSync: manual } : {}),
    conditions: [{
      type: "Synchronizing",
      status: "False",
      reason: manual ? "WaitingForManual" : "WaitingForSchedule",
      message: manual ? "Waiting for manual trigger" : "Waiting for next scheduled synchronization",
      lastTransitionTime: lastSyncTime,
    }],
  });
  return { ...run, lastSyncTime };
}
