/**
 * The OperatorConfig reconciler: validates the one BackrestVolSyncOperatorConfig the operator follows,
 * puts a valid spec in force (the settings holder tells everyone), and reports in the config's own status.
 * Rule: an invalid config is reported and never replaces the last valid settings, so a typo in the config
 * does not fail every Binding; one that is invalid from the start halts everything (settings.ts). A
 * missing config means the defaults (auto-binding Disabled, not paused).
 */
import {
  type Condition,
  ConditionType,
  formatErrors,
  type OperatorConfig,
  type OperatorConfigStatus,
  type ParsedResource,
  parseOperatorConfig,
  parseOperatorConfigStatus,
  Reason,
  setCondition,
} from "../api/mod.ts";
import { isRecord, type KubeClient, type KubeObject, namespacedKey } from "../kube/mod.ts";
import { type Action, done, type ReconcileContext, type Store } from "../runtime/mod.ts";
import type { EventSink } from "./binding_status.ts";
import { operatorConfigType } from "./resources.ts";
import { sameJSON } from "../json.ts";
import type { SettingsHolder } from "./settings.ts";

/** What the OperatorConfig reconciler needs. */
export interface OperatorConfigReconcilerDeps {
  /** Writes the OperatorConfig's status. */
  kube: KubeClient;
  /** Cache of the one OperatorConfig the operator reads. */
  configs: Store<KubeObject>;
  /** Where the parsed spec is put in force. */
  holder: SettingsHolder;
  /** Where the InvalidSpec Warning goes (once per distinct message). */
  events: EventSink;
  /** Clock for the condition's transition time (default: the system clock). */
  now?: () => Date;
}

/**
 * Puts the config object (or its absence) in force in `holder`, as the reconciler does; `main`'s start
 * calls it too, before any Binding is reconciled. Returns the parse (undefined: no config).
 */
export function putInForce(
  holder: SettingsHolder,
  obj: KubeObject | undefined,
): ParsedResource<OperatorConfig> | undefined {
  if (!obj) {
    holder.set(undefined);
    return undefined;
  }
  const parsed = parseOperatorConfig(obj);
  if (parsed.ok) holder.set(parsed.value.spec);
  else holder.invalid(formatErrors(parsed.errors));
  return parsed;
}

/** Builds the reconcile function. */
export function operatorConfigReconciler(
  deps: OperatorConfigReconcilerDeps,
): (key: string, ctx: ReconcileContext) => Promise<Action> {
  const now = deps.now ?? (() => new Date());
  return async function reconcile(key: string, ctx: ReconcileContext): Promise<Action> {
    const { configNamespace, configName } = deps.holder.current;
    if (key !== namespacedKey(configNamespace, configName)) return done;
    const obj = deps.configs.get(key);
    const parsed = putInForce(deps.holder, obj);
    if (!obj || !parsed) {
      ctx.log.info("No OperatorConfig; defaults in force (auto-binding Disabled)");
      return done;
    }
    const previous = parseOperatorConfigStatus(obj.status);
    const generation = obj.metadata.generation;
    const gen = generation !== undefined ? { observedGeneration: generation } : {};
    let ready: Pick<Condition, "status" | "reason" | "message">;
    if (parsed.ok) {
      ready = {
        status: "True",
        reason: Reason.Accepted,
        message: parsed.value.spec.paused
          ? "Accepted; the operator is paused: no Backrest calls, no auto-binding"
          : `Accepted; auto-binding policy ${parsed.value.spec.bindingGeneration.policy}`,
      };
    } else {
      const message = deps.holder.current.halted
        ? `invalid spec, nothing is done until it is fixed: ${formatErrors(parsed.errors)}`
        : `invalid spec, the last valid settings stay in force: ${formatErrors(parsed.errors)}`;
      const before = previous.conditions.find((c) => c.type === ConditionType.Ready);
      if (before?.reason !== Reason.InvalidSpec || before.message !== message) {
        deps.events.record(obj, "Warning", Reason.InvalidSpec, message);
      }
      ctx.log.info(
        deps.holder.current.halted
          ? "OperatorConfig is invalid; everything is paused until it is fixed"
          : "OperatorConfig is invalid; keeping the last valid settings",
        { reason: Reason.InvalidSpec },
      );
      ready = { status: "False", reason: Reason.InvalidSpec, message };
    }
    const status: OperatorConfigStatus = {
      ...previous,
      ...gen,
      conditions: setCondition(previous.conditions, { type: ConditionType.Ready, ...ready, ...gen }, now()),
    };
    const after = JSON.parse(JSON.stringify(status));
    if (!sameJSON(isRecord(obj.status) ? obj.status : {}, after)) {
      await deps.kube.patchStatus(operatorConfigType, obj.metadata.name ?? "", { status: after }, {
        namespace: obj.metadata.namespace,
        signal: ctx.signal,
      });
    }
    return done;
  };
}
