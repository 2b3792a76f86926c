/**
 * Resource types: where a kind lives in the API (group, version, plural, scope) and the parser that turns
 * wire JSON into its TypeScript type. Rule: every object the client returns went through `parse`.
 */

import { type KubeObject, parseKubeObject } from "./object.ts";

/** An API resource and the parser for its objects. */
export interface ResourceType<T extends KubeObject = KubeObject> {
  /** API group; "" for the core group. */
  readonly group: string;
  /** API version within the group, e.g. `v1`. */
  readonly version: string;
  /** Plural resource name as in the URL (e.g. `configmaps`). */
  readonly resource: string;
  /** The kind its objects carry, e.g. `ConfigMap`. */
  readonly kind: string;
  /** Whether its objects live in a namespace (paths then carry `namespaces/<ns>`). */
  readonly namespaced: boolean;
  /** Checks and types one object; throws `TypeError` when malformed. */
  readonly parse: (value: unknown) => T;
}

/** Declares a resource type (with {@linkcode parseKubeObject} unless a parser is given). */
export function resourceType<T extends KubeObject = KubeObject>(
  spec: Omit<ResourceType<T>, "parse">,
  parse: (value: unknown) => T,
): ResourceType<T>;
/** Declares an untyped resource type whose objects go through {@linkcode parseKubeObject}. */
export function resourceType(spec: Omit<ResourceType, "parse">): ResourceType;
export function resourceType(
  spec: Omit<ResourceType, "parse">,
  parse: (value: unknown) => KubeObject = parseKubeObject,
): ResourceType {
  return { ...spec, parse };
}

/** URL path of a collection or an object (optionally a subresource). */
export function resourcePath(
  type: Pick<ResourceType, "group" | "version" | "resource" | "namespaced">,
  where: { namespace?: string | undefined; name?: string | undefined; subresource?: string | undefined } = {},
): string {
  let path = type.group ? `/apis/${type.group}/${type.version}` : `/api/${type.version}`;
  if (type.namespaced && where.namespace) path += `/namespaces/${encodeURIComponent(where.namespace)}`;
  path += `/${type.resource}`;
  if (where.name !== undefined) path += `/${encodeURIComponent(where.name)}`;
  if (where.subresource) path += `/${where.subresource}`;
  return path;
}

/** core/v1 ConfigMap (untyped body). */
export const configMaps: ResourceType = resourceType({
  group: "",
  version: "v1",
  resource: "configmaps",
  kind: "ConfigMap",
  namespaced: true,
});

/** core/v1 Secret. Read data only with `get`; cache only metadata (see `listMetadata`). */
export const secrets: ResourceType = resourceType({
  group: "",
  version: "v1",
  resource: "secrets",
  kind: "Secret",
  namespaced: true,
});

/** core/v1 Namespace. */
export const namespaces: ResourceType = resourceType({
  group: "",
  version: "v1",
  resource: "namespaces",
  kind: "Namespace",
  namespaced: false,
});
