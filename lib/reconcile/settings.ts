/**
 * The operator-wide settings every reconciler reads: the last valid OperatorConfig spec (or the defaults
 * when none exists) and where it lives. The OperatorConfig reconciler is the only writer; an invalid
 * config never replaces a valid one. Listeners hear about every change so they can re-enqueue.
 */
import { defaultOperatorConfigSpec, type OperatorConfigSpec } from "../api/mod.ts";
import { sameJSON } from "./same.ts";

/** What the reconcilers need to know about the operator's configuration. */
export interface OperatorSettings {
  /** Namespace of the OperatorConfig: the one namespace whose Secrets the operator's own defaults use. */
  readonly configNamespace: string;
  readonly configName: string;
  /** The spec in force. */
  readonly spec: OperatorConfigSpec;
  /** Whether an OperatorConfig object exists (false: defaults are in force). */
  readonly found: boolean;
}

/** Holds the settings in force and tells listeners when they change. */
export class SettingsHolder {
  #current: OperatorSettings;
  readonly #listeners: ((next: OperatorSettings, previous: OperatorSettings) => void)[] = [];

  constructor(configNamespace: string, configName: string) {
    this.#current = { configNamespace, configName, spec: defaultOperatorConfigSpec(), found: false };
  }

  /** The settings in force now. */
  get current(): OperatorSettings {
    return this.#current;
  }

  /** Puts `spec` in force (`undefined`: the config is gone, defaults apply). */
  set(spec: OperatorConfigSpec | undefined): void {
    const previous = this.#current;
    const next: OperatorSettings = {
      ...previous,
      spec: spec ?? defaultOperatorConfigSpec(),
      found: spec !== undefined,
    };
    if (sameJSON(next, previous)) return;
    this.#current = next;
    for (const listener of this.#listeners) listener(next, previous);
  }

  /** Calls `listener` after every change. */
  onChange(listener: (next: OperatorSettings, previous: OperatorSettings) => void): void {
    this.#listeners.push(listener);
  }
}
