/**
 * Repository settings declared on a Binding (`spec.repo`) or in the OperatorConfig
 * (`spec.bindingGeneration.defaultRepo`). The four policies are Backrest's own messages in their proto3
 * JSON form (camelCase names, enums as value names), so they pass to AddRepo unchanged. Rule: this parser
 * enforces what the CRD's schema and CEL rules enforce, so an object that slipped past admission (an older
 * CRD, a test fake) is refused with the same message instead of reaching Backrest.
 */

import { parseCron } from "./cron.ts";
import type { Parsed } from "./result.ts";
import { normalizeExtraFlags } from "./restic_flags.ts";
import {
  Errors,
  isRecord,
  join,
  type JsonObject,
  notAnObject,
  readBoolean,
  readEnum,
  readNumber,
  readObject,
  readString,
  readStringArray,
} from "./_fields.ts";

/** `Schedule.Clock` value names. */
export const CLOCKS = ["CLOCK_DEFAULT", "CLOCK_LOCAL", "CLOCK_UTC", "CLOCK_LAST_RUN_TIME"] as const;
/** A schedule clock. */
export type Clock = typeof CLOCKS[number];
/** `CommandPrefix.IONiceLevel` value names. */
export const IO_NICE_LEVELS = ["IO_DEFAULT", "IO_BEST_EFFORT_LOW", "IO_BEST_EFFORT_HIGH", "IO_IDLE"] as const;
/** An I/O priority. */
export type IONiceLevel = typeof IO_NICE_LEVELS[number];
/** `CommandPrefix.CPUNiceLevel` value names. */
export const CPU_NICE_LEVELS = ["CPU_DEFAULT", "CPU_HIGH", "CPU_LOW"] as const;
/** A CPU priority. */
export type CPUNiceLevel = typeof CPU_NICE_LEVELS[number];

/**
 * Backrest's `Schedule`: at most one of `disabled` (then true), `cron`, `maxFrequencyDays`,
 * `maxFrequencyHours` (a proto oneof); none set means the task never runs.
 */
export interface Schedule {
  /** Never run; true when set. */
  disabled?: boolean;
  /** Cron expression of five fields, as Backrest reads it (lib/api/cron.ts). */
  cron?: string;
  /** Run at most once every this many days (1 to int32 max). */
  maxFrequencyDays?: number;
  /** Run at most once every this many hours (1 to int32 max). */
  maxFrequencyHours?: number;
  /** Clock the schedule is computed on; CLOCK_LAST_RUN_TIME counts from the previous run. */
  clock?: Clock;
}

/** Backrest's `PrunePolicy`. `maxUnusedBytes` is an int64 on the wire (JSON number here). */
export interface PrunePolicy {
  /** When prune runs; absent: never. */
  schedule?: Schedule;
  /** Repack until at most this many bytes are unused; when non-zero it wins over `maxUnusedPercent`. */
  maxUnusedBytes?: number;
  /** Repack until at most this percentage (0 to 100) of the repository is unused. */
  maxUnusedPercent?: number;
}

/** Backrest's `CheckPolicy`: at most one of `structureOnly`, `readDataSubsetPercent` (a oneof). */
export interface CheckPolicy {
  /** When check runs; absent: never. */
  schedule?: Schedule;
  /** Check the repository structure only; no pack data is read. */
  structureOnly?: boolean;
  /** Also read and verify this percentage (0 to 100) of the pack data. */
  readDataSubsetPercent?: number;
}

/** Backrest's `RetentionPolicy.TimeBucketedCounts`. */
export interface TimeBucketedCounts {
  /** How many hourly snapshots to keep (the newest of each hour). */
  hourly?: number;
  /** How many daily snapshots to keep. */
  daily?: number;
  /** How many weekly snapshots to keep. */
  weekly?: number;
  /** How many monthly snapshots to keep. */
  monthly?: number;
  /** How many yearly snapshots to keep. */
  yearly?: number;
  /** Also keep the newest this many snapshots regardless of age. */
  keepLastN?: number;
}

/** Backrest's `RetentionPolicy`: exactly one of the three (a oneof). */
export interface RetentionPolicy {
  /** Keep the newest this many snapshots (at least 1). */
  policyKeepLastN?: number;
  /** Keep by time buckets; at least one count is above zero. */
  policyTimeBucketed?: TimeBucketedCounts;
  /** Keep every snapshot; true when set. */
  policyKeepAll?: boolean;
}

/** Backrest's `ForgetPolicy`; an active schedule needs a retention policy. */
export interface ForgetPolicy {
  /** When `restic forget` runs; absent: never. */
  schedule?: Schedule;
  /** Which snapshots forget keeps; required when the schedule is active. */
  retention?: RetentionPolicy;
}

/** Backrest's `CommandPrefix`. */
export interface CommandPrefix {
  /** I/O scheduling class (ionice) of the restic processes Backrest runs for the repo. */
  ioNice?: IONiceLevel;
  /** CPU priority (nice) of those processes. */
  cpuNice?: CPUNiceLevel;
}

/** Settings shared by `spec.repo` and `defaultRepo`. Absent means "not declared". */
export interface RepoSettings {
  /**
   * May take over a repo id that already exists in Backrest and that no Binding applied (created in the
   * UI or by another tool), when the OperatorConfig allows adoption.
   */
  adopt?: boolean;
  /** Let Backrest remove stale restic locks before forget and prune. */
  autoUnlock?: boolean;
  /** Let Backrest create the restic repository when none exists; otherwise wait for VolSync to create it. */
  autoInitialize?: boolean;
  /** ReplicationSource only: after each completed sync, have Backrest index snapshots and refresh stats. */
  triggerTasksOnSnapshot?: boolean;
  /** restic flags from the allowlist, as written; `normalizeExtraFlags` gives the form sent to Backrest. */
  extraFlags?: string[];
  /** When non-empty, only these repository Secret keys reach restic's env (narrows, never widens). */
  envAllowlist?: string[];
  /** Backrest's prune schedule and limits for the repo. */
  prunePolicy?: PrunePolicy;
  /** Backrest's check schedule and depth for the repo. */
  checkPolicy?: CheckPolicy;
  /** Backrest's forget schedule and retention for the repo. */
  forgetPolicy?: ForgetPolicy;
  /** CPU and I/O priority of the restic processes Backrest runs for the repo. */
  commandPrefix?: CommandPrefix;
}

const INT32_MAX = 2147483647;
/**
 * The longest `maxFrequencyDays` / `maxFrequencyHours` (a hundred years): Backrest adds them to a time as
 * a Go duration, which overflows past 106 751 days and would put the next run in the past.
 */
export const MAX_FREQUENCY_DAYS = 36_500;
/** See {@linkcode MAX_FREQUENCY_DAYS}. */
export const MAX_FREQUENCY_HOURS = MAX_FREQUENCY_DAYS * 24;

function count(...present: boolean[]): number {
  return present.filter((p) => p).length;
}

function parseSchedule(obj: JsonObject, path: string, errors: Errors): Schedule {
  const out: Schedule = {};
  const disabled = readBoolean(obj, "disabled", path, errors);
  if (disabled === false) errors.add(join(path, "disabled"), "must be true when set; omit it otherwise");
  if (disabled !== undefined) out.disabled = disabled;
  const cron = readString(obj, "cron", path, errors, { maxLength: 256 });
  if (cron !== undefined) {
    const parsed = parseCron(cron);
    if (parsed.ok) out.cron = cron;
    else errors.add(join(path, "cron"), parsed.problem);
  }
  const days = readNumber(obj, "maxFrequencyDays", path, errors, {
    integer: true,
    minimum: 1,
    maximum: MAX_FREQUENCY_DAYS,
  });
  if (days !== undefined) out.maxFrequencyDays = days;
  const hours = readNumber(obj, "maxFrequencyHours", path, errors, {
    integer: true,
    minimum: 1,
    maximum: MAX_FREQUENCY_HOURS,
  });
  if (hours !== undefined) out.maxFrequencyHours = hours;
  const clock = readEnum(obj, "clock", path, errors, CLOCKS);
  if (clock !== undefined) out.clock = clock;
  if (
    count(
      has(obj, "disabled"),
      has(obj, "cron"),
      has(obj, "maxFrequencyDays"),
      has(obj, "maxFrequencyHours"),
    ) > 1
  ) {
    errors.add(path, "set at most one of disabled, cron, maxFrequencyDays, maxFrequencyHours");
  }
  return out;
}

function has(obj: JsonObject, key: string): boolean {
  return obj[key] !== undefined && obj[key] !== null;
}

function scheduleOf(obj: JsonObject, path: string, errors: Errors): Schedule | undefined {
  const s = readObject(obj, "schedule", path, errors);
  return s === undefined ? undefined : parseSchedule(s, join(path, "schedule"), errors);
}

function parsePrunePolicy(obj: JsonObject, path: string, errors: Errors): PrunePolicy {
  const out: PrunePolicy = {};
  const schedule = scheduleOf(obj, path, errors);
  if (schedule !== undefined) out.schedule = schedule;
  const bytes = readNumber(obj, "maxUnusedBytes", path, errors, { integer: true, minimum: 0 });
  if (bytes !== undefined) out.maxUnusedBytes = bytes;
  const percent = readNumber(obj, "maxUnusedPercent", path, errors, { minimum: 0, maximum: 100 });
  if (percent !== undefined) out.maxUnusedPercent = percent;
  return out;
}

function parseCheckPolicy(obj: JsonObject, path: string, errors: Errors): CheckPolicy {
  const out: CheckPolicy = {};
  const schedule = scheduleOf(obj, path, errors);
  if (schedule !== undefined) out.schedule = schedule;
  const structureOnly = readBoolean(obj, "structureOnly", path, errors);
  if (structureOnly !== undefined) out.structureOnly = structureOnly;
  const subset = readNumber(obj, "readDataSubsetPercent", path, errors, { minimum: 0, maximum: 100 });
  if (subset !== undefined) out.readDataSubsetPercent = subset;
  if (has(obj, "structureOnly") && has(obj, "readDataSubsetPercent")) {
    errors.add(path, "set at most one of structureOnly, readDataSubsetPercent");
  }
  return out;
}

const BUCKETS = ["hourly", "daily", "weekly", "monthly", "yearly", "keepLastN"] as const;

function parseRetention(obj: JsonObject, path: string, errors: Errors): RetentionPolicy {
  const out: RetentionPolicy = {};
  const lastN = readNumber(obj, "policyKeepLastN", path, errors, {
    integer: true,
    minimum: 1,
    maximum: INT32_MAX,
  });
  if (lastN !== undefined) out.policyKeepLastN = lastN;
  const bucketed = readObject(obj, "policyTimeBucketed", path, errors);
  if (bucketed !== undefined) {
    const at = join(path, "policyTimeBucketed");
    const counts: TimeBucketedCounts = {};
    let any = false;
    for (const key of BUCKETS) {
      const n = readNumber(bucketed, key, at, errors, { integer: true, minimum: 0, maximum: INT32_MAX });
      if (n !== undefined) {
        counts[key] = n;
        if (n > 0) any = true;
      }
    }
    if (!any) errors.add(at, "set at least one count above zero");
    out.policyTimeBucketed = counts;
  }
  const keepAll = readBoolean(obj, "policyKeepAll", path, errors);
  if (keepAll === false) errors.add(join(path, "policyKeepAll"), "must be true when set; omit it otherwise");
  if (keepAll !== undefined) out.policyKeepAll = keepAll;
  if (count(has(obj, "policyKeepLastN"), has(obj, "policyTimeBucketed"), has(obj, "policyKeepAll")) !== 1) {
    errors.add(path, "set exactly one of policyKeepLastN, policyTimeBucketed, policyKeepAll");
  }
  return out;
}

function parseForgetPolicy(obj: JsonObject, path: string, errors: Errors): ForgetPolicy {
  const out: ForgetPolicy = {};
  const schedule = scheduleOf(obj, path, errors);
  if (schedule !== undefined) out.schedule = schedule;
  const retention = readObject(obj, "retention", path, errors);
  if (retention !== undefined) out.retention = parseRetention(retention, join(path, "retention"), errors);
  if (scheduleActive(schedule) && !has(obj, "retention")) {
    errors.add(
      path,
      "an active schedule needs a retention policy (policyKeepLastN, policyTimeBucketed or policyKeepAll)",
    );
  }
  return out;
}

/** Whether a schedule will fire (set, and its oneof is cron or a max frequency). */
export function scheduleActive(schedule: Schedule | undefined): boolean {
  return schedule !== undefined &&
    (schedule.cron !== undefined || schedule.maxFrequencyDays !== undefined ||
      schedule.maxFrequencyHours !== undefined);
}

function parseCommandPrefix(obj: JsonObject, path: string, errors: Errors): CommandPrefix {
  const out: CommandPrefix = {};
  const io = readEnum(obj, "ioNice", path, errors, IO_NICE_LEVELS);
  if (io !== undefined) out.ioNice = io;
  const cpu = readEnum(obj, "cpuNice", path, errors, CPU_NICE_LEVELS);
  if (cpu !== undefined) out.cpuNice = cpu;
  return out;
}

/** Reads the shared repo settings of `obj` (found at `path`), recording errors (for the resource parsers). */
export function readRepoSettings(obj: JsonObject, path: string, errors: Errors): RepoSettings {
  const out: RepoSettings = {};
  const adopt = readBoolean(obj, "adopt", path, errors);
  if (adopt !== undefined) out.adopt = adopt;
  const autoUnlock = readBoolean(obj, "autoUnlock", path, errors);
  if (autoUnlock !== undefined) out.autoUnlock = autoUnlock;
  const autoInitialize = readBoolean(obj, "autoInitialize", path, errors);
  if (autoInitialize !== undefined) out.autoInitialize = autoInitialize;
  const trigger = readBoolean(obj, "triggerTasksOnSnapshot", path, errors);
  if (trigger !== undefined) out.triggerTasksOnSnapshot = trigger;
  const flags = readStringArray(obj, "extraFlags", path, errors, { maxLength: 256, maxItems: 32 });
  if (flags !== undefined) {
    const normalized = normalizeExtraFlags(flags);
    if (!normalized.ok) errors.add(join(path, "extraFlags"), normalized.problem);
    out.extraFlags = flags;
  }
  const allow = readStringArray(obj, "envAllowlist", path, errors, { maxLength: 253, maxItems: 64 });
  if (allow !== undefined) out.envAllowlist = allow;
  const prune = readObject(obj, "prunePolicy", path, errors);
  if (prune !== undefined) out.prunePolicy = parsePrunePolicy(prune, join(path, "prunePolicy"), errors);
  const check = readObject(obj, "checkPolicy", path, errors);
  if (check !== undefined) out.checkPolicy = parseCheckPolicy(check, join(path, "checkPolicy"), errors);
  const forget = readObject(obj, "forgetPolicy", path, errors);
  if (forget !== undefined) out.forgetPolicy = parseForgetPolicy(forget, join(path, "forgetPolicy"), errors);
  const prefix = readObject(obj, "commandPrefix", path, errors);
  if (prefix !== undefined) {
    out.commandPrefix = parseCommandPrefix(prefix, join(path, "commandPrefix"), errors);
  }
  return out;
}

/** Parses a repo settings object (e.g. a `defaultRepo` alone); `path` prefixes error paths. */
export function parseRepoSettings(v: unknown, path = ""): Parsed<RepoSettings> {
  if (!isRecord(v)) return notAnObject(v, path);
  const errors = new Errors();
  const value = readRepoSettings(v, path, errors);
  return errors.empty ? { ok: true, value } : { ok: false, errors: errors.list };
}
