/**
 * The OperatorConfig reconciler: validates the one BackrestVolSyncOperatorConfig the operator follows,
 * puts a valid spec in force (the settings holder tells everyone), and reports in the config's own status.
 * Rule: an invalid config is reported and never replaces the last valid settings, so a typo in the config
 * does not fail every Binding. A missing config means the defaults (auto-binding Disabled, not paused).
 */
import {
  ConditionType,
  formatErrors,
  type OperatorConfigStatus,
  parseOperatorConfig,
  parseOperatorConfigStatus,
  Reason,
  setCondition,
} from "../api/mod.ts";
import { isRecord, type KubeClient, type KubeObject } from "../kube/mod.ts";
import { type Action, done, type ReconcileContext, type Store } from "../runtime/mod.ts";
import type { EventSink } from "./binding.ts";
import { operatorConfigType } from "./resources.ts";
import { sameJSON } from "./same.ts";
import type { SettingsHolder } from "./settings.ts";

/** What the OperatorConfig reconciler needs. */
export interface OperatorConfigReconcilerDeps {
  kube: KubeClient;
  configs: Store<KubeObject>;
  holder: SettingsHolder;
  events: EventSink;
  now?: () => Date;
}

/** Builds the reconcile function. */
export function operatorConfigReconciler(
  deps: OperatorConfigReconcilerDeps,
): (key: string, ctx: ReconcileContext) => Promise<Action> {
  const now = deps.now ?? (() => new Date());
  return async function reconcile(key: string, ctx: ReconcileContext): Promise<Action> {
    const { configNamespace, configName } = deps.holder.current;
    if (key !== `${configNamespace}/${configName}`) return done;
    const obj = deps.configs.get(key);
    if (!obj) {
      deps.holder.set(undefined);
      ctx.log.info("No OperatorConfig; defaults in force (auto-binding Disabled)");
      return done;
    }
    const parsed = parseOperatorConfig(obj);
    const previous = parseOperatorConfigStatus(obj.status);
    const generation = obj.metadata.generation;
    const gen = generation !== undefined ? { observedGeneration: generation } : {};
    let status: OperatorConfigStatus;
    if (parsed.ok) {
      deps.holder.set(parsed.value.spec);
      status = {
        ...previous,
        ...gen,
        conditions: setCondition(previous.conditions, {
          type: ConditionType.Ready,
          status: "True",
          reason: Reason.Accepted,
          message: parsed.value.spec.paused
            ? "Accepted; the operator is paused: no Backrest calls, no auto-binding"
            : `Accepted; auto-binding policy ${parsed.value.spec.bindingGeneration.policy}`,
          ...gen,
        }, now()),
      };
    } else {
      const message = `invalid spec, the last valid settings stay in force: ${formatErrors(parsed.errors)}`;
      const before = previous.conditions.find((c) => c.type === ConditionType.Ready);
      if (before?.reason !== Reason.InvalidSpec || before.message !== message) {
        deps.events.record(obj, "Warning", Reason.InvalidSpec, message);
      }
      ctx.log.info("OperatorConfig is invalid; keeping the last valid settings", {
        reason: Reason.InvalidSpec,
      });
      status = {
        ...previous,
        ...gen,
        conditions: setCondition(previous.conditions, {
          type: ConditionType.Ready,
          status: "False",
          reason: Reason.InvalidSpec,
          message,
          ...gen,
        }, now()),
      };
    }
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
