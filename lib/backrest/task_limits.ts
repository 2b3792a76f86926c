/**
 * What one tenant's repo settings may ask of a shared Backrest, which runs one task at a time for every
 * namespace: a prune, check or forget scheduled every minute, restic raised above Backrest's own priority,
 * a request or a lock waited on for weeks, thousands of connections, or a check that reads the whole
 * repository all keep every other namespace's tasks waiting. Rules: each bound is the OperatorConfig's
 * `repositoryPolicy.taskLimits` (defaults in lib/api/operator_config.ts); a refusal names the field, what
 * it asks and the limit, so the tenant knows what to change and the admin what to raise; nothing is sent
 * while any setting is over a limit.
 */
import { cronMinGapMinutes, parseCron, type TaskLimits } from "../api/mod.ts";
import { parseDuration } from "../api/duration.ts";
import {
  type CheckPolicy,
  type CommandPrefix,
  CommandPrefix_CPUNiceLevel,
  CommandPrefix_IONiceLevel,
  type ForgetPolicy,
  type PrunePolicy,
  type Schedule,
} from "../../gen/v1/config_pb.ts";

/** The repo settings the limits look at: Backrest's messages and the flags in their canonical form. */
export interface TaskSettings {
  /** Canonical flags (`--name=value`, `--option=key=value`), see lib/api/restic_flags.ts. */
  flags: readonly string[];
  /**
   * Backrest's prune policy, when declared.
   * @ignore
   */
  prunePolicy?: PrunePolicy | undefined;
  /**
   * Backrest's check policy, when declared.
   * @ignore
   */
  checkPolicy?: CheckPolicy | undefined;
  /**
   * Backrest's forget policy, when declared.
   * @ignore
   */
  forgetPolicy?: ForgetPolicy | undefined;
  /**
   * Backrest's command prefix, when declared.
   * @ignore
   */
  commandPrefix?: CommandPrefix | undefined;
}

/** A setting over a limit: the field (as the Binding spells it) and a message naming the limit. */
export interface TaskLimitProblem {
  /** The spec.repo field, e.g. `prunePolicy.schedule`. */
  field: string;
  /** What is asked and what is allowed. */
  message: string;
}

const LIMITS = "the OperatorConfig's spec.repositoryPolicy.taskLimits";

/** Milliseconds as the largest whole unit that divides them (`90m`, `24h`, `45s`). */
function spell(ms: number): string {
  for (const [unit, size] of [["h", 3_600_000], ["m", 60_000], ["s", 1000]] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

/** The shortest time between two runs of `schedule`, in ms (`Infinity`: it never runs, or not twice). */
function scheduleMinIntervalMs(schedule: Schedule | undefined): number {
  const s = schedule?.schedule;
  switch (s?.case) {
    case "maxFrequencyDays":
      return s.value * 86_400_000;
    case "maxFrequencyHours":
      return s.value * 3_600_000;
    case "cron": {
      const parsed = parseCron(s.value);
      // Unreadable expressions are refused where the spec is parsed; Backrest would refuse them too.
      return parsed.ok ? cronMinGapMinutes(parsed.cron) * 60_000 : Infinity;
    }
    default:
      return Infinity;
  }
}

/** The first setting over `limits`, or `undefined`. */
export function taskLimitProblem(settings: TaskSettings, limits: TaskLimits): TaskLimitProblem | undefined {
  const schedules: [string, Schedule | undefined][] = [
    ["prunePolicy.schedule", settings.prunePolicy?.schedule],
    ["checkPolicy.schedule", settings.checkPolicy?.schedule],
    ["forgetPolicy.schedule", settings.forgetPolicy?.schedule],
  ];
  for (const [field, schedule] of schedules) {
    const every = scheduleMinIntervalMs(schedule);
    if (every < limits.minScheduleIntervalMs) {
      return {
        field,
        message: `${field} runs as often as every ${spell(every)}; ${LIMITS}.minScheduleInterval allows ` +
          `at most one run every ${spell(limits.minScheduleIntervalMs)} (Backrest runs one task at a time ` +
          "for every namespace)",
      };
    }
  }
  const mode = settings.checkPolicy?.mode;
  if (mode?.case === "readDataSubsetPercent" && mode.value > limits.maxReadDataSubsetPercent) {
    return {
      field: "checkPolicy.readDataSubsetPercent",
      message:
        `checkPolicy.readDataSubsetPercent ${mode.value} is above ${LIMITS}.maxReadDataSubsetPercent ` +
        `(${limits.maxReadDataSubsetPercent})`,
    };
  }
  const prefix = settings.commandPrefix;
  if (
    !limits.allowRaisedPriority && prefix &&
    (prefix.cpuNice === CommandPrefix_CPUNiceLevel.CPU_HIGH ||
      prefix.ioNice === CommandPrefix_IONiceLevel.IO_BEST_EFFORT_HIGH)
  ) {
    return {
      field: "commandPrefix",
      message: "commandPrefix raises restic above Backrest's default priority (CPU_HIGH or " +
        `IO_BEST_EFFORT_HIGH), ahead of every other namespace; ${LIMITS}.allowRaisedPriority decides`,
    };
  }
  for (const flag of settings.flags) {
    const [name, value] = [flag.slice(0, flag.indexOf("=")), flag.slice(flag.indexOf("=") + 1)];
    const waits: Record<string, [number, string]> = {
      "--stuck-request-timeout": [limits.maxStuckRequestTimeoutMs, "maxStuckRequestTimeout"],
      "--retry-lock": [limits.maxRetryLockMs, "maxRetryLock"],
    };
    const wait = waits[name];
    if (wait) {
      const ms = parseDuration(value) ?? Infinity;
      if (ms > wait[0]) {
        return {
          field: "extraFlags",
          message: `extraFlags ${name}=${value} is longer than ${LIMITS}.${wait[1]} (${spell(wait[0])})`,
        };
      }
    }
    const connections = /^--option=([a-z0-9]+)\.connections=([0-9]+)$/.exec(flag);
    if (connections && Number(connections[2]) > limits.maxConnections) {
      return {
        field: "extraFlags",
        message: `extraFlags -o ${connections[1]}.connections=${connections[2]} is above ` +
          `${LIMITS}.maxConnections (${limits.maxConnections})`,
      };
    }
  }
  return undefined;
}
