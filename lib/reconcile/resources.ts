/**
 * The Kubernetes resource types the reconcilers read and write, as the kube client wants them.
 * Objects stay `KubeObject` on the wire and in the caches; the reconcilers parse them with lib/api
 * where they use them, so a malformed object becomes a condition, never a crash.
 */
import {
  BINDING_RESOURCE,
  OPERATOR_CONFIG_RESOURCE,
  perVolSyncKind,
  type ResourceRef,
  VOLSYNC_KIND_INFO,
  type VolSyncKind,
} from "../api/mod.ts";
import { type ResourceType, resourceType } from "../kube/mod.ts";

function typeOf(ref: ResourceRef): ResourceType {
  return resourceType({
    group: ref.group,
    version: ref.version,
    resource: ref.plural,
    kind: ref.kind,
    namespaced: ref.namespaced,
  });
}

/** BackrestVolSyncBinding. */
export const bindingType: ResourceType = typeOf(BINDING_RESOURCE);
/** BackrestVolSyncOperatorConfig. */
export const operatorConfigType: ResourceType = typeOf(OPERATOR_CONFIG_RESOURCE);
/** Each VolSync kind's resource. */
export const volsyncTypes: { readonly [K in VolSyncKind]: ResourceType } = perVolSyncKind((kind) =>
  typeOf(VOLSYNC_KIND_INFO[kind].resource)
);
