/**
 * The auto-binding reconciler: one managed Binding per eligible VolSync object (OperatorConfig policy,
 * kinds filter, the `backrest.garethgeorge.com/binding` opt-in/opt-out annotation), with the prototype's
 * names, label, annotations and a controller owner reference (garbage-collected with the object).
 * Rules: Bindings without the managed label are never touched; a managed Binding whose spec drifted is
 * put back; one whose object opts out or leaves the policy is deleted; while paused nothing happens, and
 * no write is made unless the settings it was decided on are in force and known to be current
 * (config_gate.ts; the controller holds the key otherwise). No two objects share a generated name
 * (`uniqueBindingName`); a managed Binding left under a name its object no longer has is deleted. Keys are
 * the VolSync object's `volsyncKey` (indexes.ts).
 */
import {
  ANNOTATION_MANAGED_BY,
  ANNOTATION_VOLSYNC_REF,
  API_VERSION,
  autoBindingWanted,
  BINDING_DEFAULTS,
  BINDING_KIND,
  FIELD_MANAGER,
  kindAllowed,
  LABEL_MANAGED,
  MANAGED_BY,
  uniqueBindingName,
  VOLSYNC_API_VERSION,
  volsyncRefValue,
} from "../api/mod.ts";
import type { KubeClient, KubeObject } from "../kube/mod.ts";
import { type Action, done, type ReconcileContext, requeueAfter, type Store } from "../runtime/mod.ts";
import type { VolSyncStores } from "./caches.ts";
import type { ConfigGate } from "./config_gate.ts";
import {
  generatedBindingKey,
  INDEX_BY_GENERATED_NAME,
  INDEX_BY_VOLSYNC_REF,
  parseVolsyncKey,
} from "./indexes.ts";
import { bindingType } from "./resources.ts";
import { sameJSON } from "../json.ts";
import type { OperatorSettings } from "./settings.ts";

/** What the auto-binding reconciler needs. */
export interface AutoBindingReconcilerDeps {
  /** Creates, updates and deletes the generated Bindings. */
  kube: KubeClient;
  /** Cache of Bindings, searched by VolSync reference and by name. */
  bindings: Store<KubeObject>;
  /** Caches of VolSync objects, by kind. */
  volsync: VolSyncStores;
  /** The settings in force, read on every reconcile (policy, kinds, defaultRepo, paused). */
  settings: () => OperatorSettings;
  /**
   * Checked right before every write: throws when the OperatorConfig is not known to be current or the
   * settings read are no longer in force (default: never).
   */
  gate?: Pick<ConfigGate, "check"> | undefined;
}

/** The spec a managed Binding should have, with the CRD's defaults filled in as the apiserver would. */
export function managedBindingSpec(
  settings: OperatorSettings,
  kind: string,
  name: string,
): Record<string, unknown> {
  const repo: Record<string, unknown> = {
    ...BINDING_DEFAULTS.repo,
    ...JSON.parse(JSON.stringify(settings.spec.bindingGeneration.defaultRepo)),
  };
  return {
    backrest: { url: settings.spec.defaultBackrest.url },
    source: { kind, name },
    repo,
    deletionPolicy: BINDING_DEFAULTS.deletionPolicy,
  };
}

/** Builds the reconcile function. */
export function autoBindingReconciler(
  deps: AutoBindingReconcilerDeps,
): (key: string, ctx: ReconcileContext) => Promise<Action> {
  return async function reconcile(key: string, ctx: ReconcileContext): Promise<Action> {
    const ref = parseVolsyncKey(key);
    if (!ref) return done;
    const { kind, namespace, name } = ref;
    const settings = deps.settings();
    if (settings.spec.paused) return done;
    const store = deps.volsync[kind];
    const source = store.getByName(namespace, name);
    const sharing = store.byIndex(INDEX_BY_GENERATED_NAME, generatedBindingKey(namespace, kind, name));
    const bindingName = uniqueBindingName(kind, name, sharing.map((o) => o.metadata.name ?? ""));
    // Managed Bindings of this object under another name (the name moved when another object came to
    // share it, or went): gone, so one object has one Binding.
    for (const stale of deps.bindings.byIndex(INDEX_BY_VOLSYNC_REF, key)) {
      if (stale.metadata.name === bindingName || stale.metadata.deletionTimestamp) continue;
      deps.gate?.check(settings);
      await deps.kube.delete(bindingType, stale.metadata.name ?? "", {
        namespace,
        signal: ctx.signal,
        preconditions: { uid: stale.metadata.uid },
      });
      ctx.log.info("Managed Binding deleted: its object's generated name changed", {
        binding: stale.metadata.name,
        now: bindingName,
      });
    }
    const existing = deps.bindings.getByName(namespace, bindingName);
    const managed = existing?.metadata.labels?.[LABEL_MANAGED] === "true";
    const generation = settings.spec.bindingGeneration;
    const wanted = source !== undefined && !source.metadata.deletionTimestamp &&
      kindAllowed(generation, kind) &&
      autoBindingWanted(generation.policy, source.metadata.annotations ?? {}) &&
      settings.spec.defaultBackrest.url !== "";

    if (!wanted) {
      // One that names another object is that object's (a gone object's name can be the one another
      // object holds now): its own reconcile keeps or moves it.
      const ref = existing?.metadata.annotations?.[ANNOTATION_VOLSYNC_REF];
      const others = ref !== undefined && ref !== volsyncRefValue(kind, name);
      if (existing && managed && !existing.metadata.deletionTimestamp && !others) {
        deps.gate?.check(settings);
        await deps.kube.delete(bindingType, bindingName, {
          namespace,
          signal: ctx.signal,
          preconditions: { uid: existing.metadata.uid },
        });
        ctx.log.info("Managed Binding deleted: its VolSync object is no longer eligible", {
          binding: bindingName,
        });
      }
      return done;
    }
    if (existing && !managed) {
      // A user's own Binding holds the name: never touch it.
      ctx.log.debug("A Binding without the managed label holds the generated name; leaving it", {
        binding: bindingName,
      });
      return done;
    }
    if (existing && existing.metadata.annotations?.[ANNOTATION_VOLSYNC_REF] !== volsyncRefValue(kind, name)) {
      // Another object's, from before this object came to own the name: its own reconcile moves it.
      return requeueAfter(2000);
    }

    const ownerReferences = [{
      apiVersion: VOLSYNC_API_VERSION,
      kind,
      name,
      uid: source.metadata.uid ?? "",
      controller: true,
      blockOwnerDeletion: true,
    }];
    const labels = { ...(existing?.metadata.labels ?? {}), [LABEL_MANAGED]: "true" };
    const annotations = {
      ...(existing?.metadata.annotations ?? {}),
      [ANNOTATION_MANAGED_BY]: MANAGED_BY,
      [ANNOTATION_VOLSYNC_REF]: volsyncRefValue(kind, name),
    };
    const spec = managedBindingSpec(settings, kind, name);
    if (!existing) {
      deps.gate?.check(settings);
      await deps.kube.create(bindingType, {
        apiVersion: API_VERSION,
        kind: BINDING_KIND,
        metadata: { name: bindingName, namespace, labels, annotations, ownerReferences },
        spec,
      }, { signal: ctx.signal, fieldManager: FIELD_MANAGER });
      ctx.log.info("Managed Binding created", { binding: bindingName, volsync: volsyncRefValue(kind, name) });
      return done;
    }
    if (existing.metadata.deletionTimestamp) return done;
    const same = sameJSON(existing.spec, spec) && sameJSON(existing.metadata.labels, labels) &&
      sameJSON(existing.metadata.annotations, annotations) &&
      sameJSON(existing.metadata.ownerReferences, ownerReferences);
    if (same) return done;
    deps.gate?.check(settings);
    await deps.kube.update(bindingType, {
      ...existing,
      metadata: { ...existing.metadata, labels, annotations, ownerReferences },
      spec,
    }, { signal: ctx.signal, fieldManager: FIELD_MANAGER });
    ctx.log.info("Managed Binding brought back in line with the OperatorConfig", { binding: bindingName });
    return done;
  };
}
