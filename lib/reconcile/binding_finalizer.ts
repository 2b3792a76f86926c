/**
 * A Binding's end: the `remove-repo` finalizer (held exactly while `deletionPolicy: Remove`), RemoveRepo on
 * deletion, and giving up the repo ids it held. Rules: RemoveRepo only for an id this Binding holds in the
 * ledger now, on the URL recorded there (neither its spec nor its status, writable by others, can aim it);
 * nothing is removed while paused, for a URL the allowlist no longer admits, or while the OperatorConfig in
 * force is not known to be current (config_gate.ts); a failure keeps the finalizer and retries, and
 * `deletionPolicy: Retain` always lets the object go.
 */
import { backrestURLAllowed, type Binding, FINALIZER_REMOVE_REPO, Reason } from "../api/mod.ts";
import {
  type BackrestApi,
  type BackrestConnection,
  BackrestError,
  describeFailure,
} from "../backrest/mod.ts";
import type { KubeClient, KubeObject } from "../kube/mod.ts";
import { type Action, done, type ReconcileContext } from "../runtime/mod.ts";
import type { EventSink, StatusWriter } from "./binding_status.ts";
import type { BindingInputs } from "./binding_inputs.ts";
import type { ClaimLedger } from "./claims.ts";
import type { ConfigGate } from "./config_gate.ts";
import { bindingType } from "./resources.ts";
import { RetryableError } from "./pipeline.ts";
import type { OperatorSettings } from "./settings.ts";

/** The finalizer steps of the Binding pipeline. */
export interface BindingFinalizer {
  /** Adds or drops the finalizer to match `deletionPolicy`; true when it wrote (the watch brings us back). */
  ensure(obj: KubeObject, b: Binding, signal: AbortSignal): Promise<boolean>;
  /** The object is being deleted: remove what it holds (with Remove), give up its ids, let it go. */
  handleDeletion(obj: KubeObject, b: Binding, key: string, ctx: ReconcileContext): Promise<Action>;
  /** Lets an object go without removing anything (its spec cannot be read). */
  drop(obj: KubeObject, signal: AbortSignal): Promise<void>;
  /** Gives up the ids held under `key` by any object but the one with `keepUid`. */
  releaseClaimsOf(key: string, keepUid: string | undefined, signal: AbortSignal): Promise<void>;
}

/** The finalizer steps over the given clients. */
export function bindingFinalizer(deps: {
  kube: KubeClient;
  claims: ClaimLedger;
  backrest: (connection: BackrestConnection) => BackrestApi;
  events: EventSink;
  status: StatusWriter;
  inputs: BindingInputs;
  settings: () => OperatorSettings;
  timeoutMs: number;
  gate?: Pick<ConfigGate, "check"> | undefined;
}): BindingFinalizer {
  async function drop(obj: KubeObject, signal: AbortSignal): Promise<void> {
    await deps.kube.patch(bindingType, obj.metadata.name ?? "", {
      metadata: {
        finalizers: (obj.metadata.finalizers ?? []).filter((f) => f !== FINALIZER_REMOVE_REPO),
        resourceVersion: obj.metadata.resourceVersion,
      },
    }, { namespace: obj.metadata.namespace, signal });
  }

  async function releaseClaimsOf(
    key: string,
    keepUid: string | undefined,
    signal: AbortSignal,
  ): Promise<void> {
    for (const claim of deps.claims.heldBy(key)) {
      if (claim.holder.uid !== keepUid) await deps.claims.release(claim, signal);
    }
  }

  async function handleDeletion(
    obj: KubeObject,
    b: Binding,
    key: string,
    ctx: ReconcileContext,
  ): Promise<Action> {
    if (!(obj.metadata.finalizers ?? []).includes(FINALIZER_REMOVE_REPO)) return done;
    const settings = deps.settings();
    const held = deps.claims.heldBy(key).filter((c) => c.holder.uid === b.metadata.uid);
    const report = (reason: string, message: string, error?: string) =>
      deps.status.report(obj, b, { ready: false, reason, message, ...(error ? { error } : {}) }, ctx.signal);
    if (b.spec.deletionPolicy === "Remove") {
      for (const claim of held) {
        if (claim.url === undefined) continue;
        if (settings.spec.paused) {
          await report(
            settings.halted ? Reason.OperatorConfigInvalid : Reason.Paused,
            `${settings.halted ?? "Paused"}: the repo is removed once the operator is resumed`,
          );
          return done;
        }
        if (!backrestURLAllowed(claim.url, settings.spec.backrestURLAllowlist)) {
          await report(
            Reason.RemoveFailed,
            "the Backrest URL the repo was applied to is not in the OperatorConfig's " +
              "backrestURLAllowlist any more; allow it again, or set spec.deletionPolicy to Retain to let go",
          );
          return done;
        }
        const auth = await deps.inputs.resolveAuth(b, settings, claim.url, ctx.signal);
        if ("problem" in auth) {
          await report(Reason.RemoveFailed, `cannot remove the repo: ${auth.problem}`);
          throw new RetryableError(auth.problem);
        }
        const api = deps.backrest({ url: claim.url, auth: auth.auth, timeoutMs: deps.timeoutMs });
        try {
          deps.gate?.check(settings);
          await api.removeRepo(claim.id, { signal: ctx.signal });
        } catch (e) {
          if (!(e instanceof BackrestError)) throw e;
          const message = `Backrest did not remove repo ${claim.id}: ${describeFailure(e)}. ` +
            "Fix the cause (e.g. a plan still uses the repo) or set spec.deletionPolicy to Retain to let go";
          ctx.log.debug("RemoveRepo failed", { repoId: claim.id, backrestText: e.message });
          await report(Reason.RemoveFailed, message, message);
          throw new RetryableError(`RemoveRepo failed (${e.kind})`);
        }
        deps.events.record(obj, "Normal", Reason.Removing, `Removed repo ${claim.id} from Backrest`);
        ctx.log.info("Backrest repo removed", { repoId: claim.id });
      }
    }
    for (const claim of held) await deps.claims.release(claim, ctx.signal);
    await drop(obj, ctx.signal);
    return done;
  }

  async function ensure(obj: KubeObject, b: Binding, signal: AbortSignal): Promise<boolean> {
    const finalizers = obj.metadata.finalizers ?? [];
    const has = finalizers.includes(FINALIZER_REMOVE_REPO);
    const want = b.spec.deletionPolicy === "Remove";
    if (has === want) return false;
    await deps.kube.patch(bindingType, obj.metadata.name ?? "", {
      metadata: {
        finalizers: want
          ? [...finalizers, FINALIZER_REMOVE_REPO]
          : finalizers.filter((f) => f !== FINALIZER_REMOVE_REPO),
        resourceVersion: obj.metadata.resourceVersion,
      },
    }, { namespace: obj.metadata.namespace, signal });
    return true;
  }

  return { ensure, handleDeletion, drop, releaseClaimsOf };
}
