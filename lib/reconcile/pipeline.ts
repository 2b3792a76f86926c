/**
 * The Binding pipeline's own vocabulary: what a step hands the next, how a step ends the reconcile (a
 * {@linkcode Stop}: what to report, and whether to retry with backoff, come back later or wait for an input
 * to change), and the two errors the pipeline throws. Rule: a step returns `Step<T>`; the pipeline tells a
 * stop from the step's value by its tag, never by its shape.
 */
import { isRecord } from "../json.ts";
import type { Outcome, StatusExtra } from "./binding_status.ts";

/** Ends a reconcile early: what to report, and whether to retry (with this log text) or wait for a change. */
export interface Stop {
  /** The tag: this is a stop, not what a step hands the next. */
  readonly stopped: true;
  /** What the status says. */
  stop: Outcome;
  /** Status fields to record with it. */
  extra?: StatusExtra;
  /** Retry with backoff; the text goes to the log (never a Secret value). */
  retry?: string;
  /** Come back after this many ms. */
  requeueMs?: number;
}

/** What a step returns: what the next step needs, or a stop. */
export type Step<T> = T | Stop;

/** A stop reporting `stop`, with `more` (status fields, retry, requeue). */
export function stopWith(stop: Outcome, more: Omit<Stop, "stopped" | "stop"> = {}): Stop {
  return { stopped: true, stop, ...more };
}

/** A stop the user must act on: not Ready, for `reason`, until an input changes. */
export function notReady(reason: string, message: string): Stop {
  return stopWith({ ready: false, reason, message });
}

/** Whether a step ended the reconcile. */
export function isStop(v: unknown): v is Stop {
  return isRecord(v) && v.stopped === true;
}

/** Thrown after status was written, so the runtime retries with backoff. Carries no Secret data. */
export class RetryableError extends Error {
  /** Always `"RetryableError"`. */
  override readonly name = "RetryableError";
}

/** Reading a Secret failed for a reason other than its absence (RBAC, apiserver trouble): retried. */
export class SecretReadError extends Error {
  /** `"SecretReadError"`, or a subclass's name. */
  override readonly name: string = "SecretReadError";
}
