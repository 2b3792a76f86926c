/**
 * The keys and store indexes every controller shares. Rules: one key shape per identity, built here (or,
 * for the store's own key, by `namespacedKey` / `objectKey` in lib/kube) and nowhere else: a Binding, a
 * Secret and a claim holder are `<namespace>/<name>`; a VolSync object is `<namespace>/<Kind>/<name>` (in
 * indexes and as the auto-binding queue's key); the Binding a VolSync object would generate is
 * `<namespace>/<generated name>`; index functions are pure and read the raw object, so they also index what
 * does not parse.
 */
import {
  ANNOTATION_VOLSYNC_REF,
  bindingNameFor,
  isVolSyncKind,
  LABEL_MANAGED,
  parseBinding,
  repoIdOf,
  VOLSYNC_KINDS,
  type VolSyncKind,
} from "../api/mod.ts";
import { isRecord, type KubeObject, namespacedKey } from "../kube/mod.ts";
import type { IndexFunc } from "../runtime/mod.ts";

/** The key of a VolSync object: `<namespace>/<Kind>/<name>`. */
export function volsyncKey(namespace: string, kind: VolSyncKind, name: string): string {
  return `${namespace}/${kind}/${name}`;
}

/** The parts of a {@linkcode volsyncKey}, or undefined for anything else. */
export function parseVolsyncKey(
  key: string,
): { namespace: string; kind: VolSyncKind; name: string } | undefined {
  const [namespace, kind, ...rest] = key.split("/");
  const name = rest.join("/");
  return namespace && isVolSyncKind(kind) && name ? { namespace, kind, name } : undefined;
}

/** The key of the Binding auto-binding would generate for the VolSync object `kind` `name` in `namespace`. */
export function generatedBindingKey(namespace: string, kind: VolSyncKind, name: string): string {
  return namespacedKey(namespace, bindingNameFor(kind, name));
}

/** Index of Bindings by the repo id they ask for (one id has one owner across every Backrest). */
export const INDEX_BY_REPO = "byRepo";
/** Index of Bindings by their VolSync object's {@linkcode volsyncKey}. */
export const INDEX_BY_SOURCE = "bySource";
/** Index of Bindings by their auth Secret: `<namespace>/<name>`. */
export const INDEX_BY_AUTH_SECRET = "byAuthSecret";
/** Index of managed (generated) Bindings by their VolSync object's {@linkcode volsyncKey}. */
export const INDEX_BY_VOLSYNC_REF = "byVolSyncRef";
/** Index of VolSync objects by their repository Secret: `<namespace>/<name>`. */
export const INDEX_BY_REPOSITORY_SECRET = "byRepositorySecret";
/** Index of VolSync objects by the prototype's generated Binding name: `<namespace>/<name>`. */
export const INDEX_BY_GENERATED_NAME = "byGeneratedName";

function field(obj: unknown, ...path: string[]): unknown {
  let cur = obj;
  for (const key of path) cur = isRecord(cur) ? cur[key] : undefined;
  return cur;
}

/** Index functions for the Binding cache. */
export const bindingIndexers = {
  [INDEX_BY_REPO]: (obj) => {
    const parsed = parseBinding(obj);
    return parsed.ok ? [repoIdOf(parsed.value)] : [];
  },
  [INDEX_BY_SOURCE]: (obj) => {
    const kind = field(obj.spec, "source", "kind");
    const name = field(obj.spec, "source", "name");
    return isVolSyncKind(kind) && typeof name === "string" && obj.metadata.namespace
      ? [volsyncKey(obj.metadata.namespace, kind, name)]
      : [];
  },
  [INDEX_BY_AUTH_SECRET]: (obj) => {
    const name = field(obj.spec, "backrest", "authRef", "name");
    return typeof name === "string" && name ? [namespacedKey(obj.metadata.namespace, name)] : [];
  },
  [INDEX_BY_VOLSYNC_REF]: (obj) => {
    if (obj.metadata.labels?.[LABEL_MANAGED] !== "true" || !obj.metadata.namespace) return [];
    const ref = obj.metadata.annotations?.[ANNOTATION_VOLSYNC_REF] ?? "";
    const slash = ref.indexOf("/");
    const kind = VOLSYNC_KINDS.find((k) => k.toLowerCase() === ref.slice(0, slash));
    return kind && slash > 0 ? [volsyncKey(obj.metadata.namespace, kind, ref.slice(slash + 1))] : [];
  },
} satisfies Record<string, IndexFunc<KubeObject>>;

/** Index functions for the cache of VolSync objects of `kind`. */
export function volsyncIndexers(
  kind: VolSyncKind,
): Record<typeof INDEX_BY_REPOSITORY_SECRET | typeof INDEX_BY_GENERATED_NAME, IndexFunc<KubeObject>> {
  return {
    [INDEX_BY_REPOSITORY_SECRET]: (obj) => {
      const repository = field(obj.spec, "restic", "repository");
      return typeof repository === "string" && repository
        ? [namespacedKey(obj.metadata.namespace, repository)]
        : [];
    },
    [INDEX_BY_GENERATED_NAME]: (obj) =>
      obj.metadata.name ? [generatedBindingKey(obj.metadata.namespace ?? "", kind, obj.metadata.name)] : [],
  } satisfies Record<string, IndexFunc<KubeObject>>;
}
