/**
 * The operator-wide settings every reconciler reads: the last valid OperatorConfig spec (or the defaults
 * when none exists) and where it lives. Rules:
 * - It fails closed: until the OperatorConfig has been read, and while it has been invalid since the
 *   operator started (no valid spec ever seen), everything is paused and `halted` says why; the built-in
 *   defaults (an empty allowlist admits every URL) never stand in for a config that exists but is broken.
 * - Once a valid spec was in force, an invalid edit keeps it (a typo does not fail every Binding).
 * - It follows the OperatorConfig cache: every change the cache sees is put in force at once, in the
 *   cache's own handler (operator.ts), so the settings never lag the cache a reconcile could read; the
 *   OperatorConfig reconciler and the manager's start (for a config that does not exist) write it too,
 *   with the same function (`putInForce`). Listeners hear about every change so they can re-enqueue.
 */
import { defaultOperatorConfigSpec, type OperatorConfigSpec } from "../api/mod.ts";
import { sameJSON } from "./same.ts";

/** What the reconcilers need to know about the operator's configuration. */
export interface OperatorSettings {
  /** Namespace of the OperatorConfig: the one namespace whose Secrets the operator's own defaults use. */
  readonly configNamespace: string;
  /** Name of the OperatorConfig the operator reads. */
  readonly configName: string;
  /** The spec in force (`paused` while halted). */
  readonly spec: OperatorConfigSpec;
  /** Whether an OperatorConfig object exists (false: defaults are in force). */
  readonly found: boolean;
  /** Why everything is paused although the config does not say so (not read yet, or invalid since start). */
  readonly halted?: string | undefined;
}

/** Holds the settings in force and tells listeners when they change. */
export class SettingsHolder {
  #current: OperatorSettings;
  #everValid = false;
  readonly #listeners: ((next: OperatorSettings, previous: OperatorSettings) => void)[] = [];

  /** Starts halted (paused) until the OperatorConfig has been read and put in force. */
  constructor(configNamespace: string, configName: string) {
    this.#current = {
      configNamespace,
      configName,
      spec: { ...defaultOperatorConfigSpec(), paused: true },
      found: false,
      halted: "the OperatorConfig has not been read yet",
    };
  }

  /** The settings in force now. */
  get current(): OperatorSettings {
    return this.#current;
  }

  /** Puts `spec` in force (`undefined`: the config is gone, defaults apply). */
  set(spec: OperatorConfigSpec | undefined): void {
    this.#everValid = true;
    this.#update({ spec: spec ?? defaultOperatorConfigSpec(), found: spec !== undefined, halted: undefined });
  }

  /**
   * The config exists but is invalid (`why` names the problem): keeps the last valid settings, or, when
   * none was ever in force, halts everything.
   */
  invalid(why: string): void {
    if (this.#everValid) return;
    this.#update({
      spec: { ...defaultOperatorConfigSpec(), paused: true },
      found: true,
      halted: `the OperatorConfig ${this.#current.configNamespace}/${this.#current.configName} is invalid ` +
        `(${why}); nothing is done until it is fixed`,
    });
  }

  /** Calls `listener` after every change. */
  onChange(listener: (next: OperatorSettings, previous: OperatorSettings) => void): void {
    this.#listeners.push(listener);
  }

  #update(change: Pick<OperatorSettings, "spec" | "found" | "halted">): void {
    const previous = this.#current;
    const next: OperatorSettings = { ...previous, ...change };
    if (sameJSON(next, previous)) return;
    this.#current = next;
    for (const listener of this.#listeners) listener(next, previous);
  }
}
