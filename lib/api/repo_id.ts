/**
 * Backrest repo ids: which are acceptable, the prototype's default id, the id a Binding registers, and which
 * ids belong to another namespace by name. Rule: every id rule lives here; the CRD, the mapping to Backrest
 * and the claim step all ask this module.
 */
import type { BindingSpec } from "./binding.ts";
import { VOLSYNC_KINDS, type VolSyncKind } from "./constants.ts";

/** The repo id pattern Backrest's UI enforces (and we enforce for it; the server itself checks less). */
export const REPO_ID_PATTERN = /^[a-zA-Z0-9_\-.]+$/;

/** Why `id` cannot be a Backrest repo id, or `undefined` when it can. */
export function repoIdProblem(id: string): string | undefined {
  if (id === "") return "must not be empty";
  if (!REPO_ID_PATTERN.test(id)) return "may contain only letters, digits, '_', '-' and '.'";
  if (id.startsWith("_") && id.endsWith("_")) return "must not both start and end with '_'";
  return undefined;
}

/** The prototype's default repo id: `volsync-<namespace>-<lowercase kind>-<name>`. Keep exactly. */
export function defaultRepoId(namespace: string, kind: VolSyncKind, name: string): string {
  return `volsync-${namespace}-${kind.toLowerCase()}-${name}`;
}

/** The repo id a Binding registers: `spec.repo.idOverride` when non-empty, else {@link defaultRepoId}. */
export function repoIdOf(binding: { metadata: { namespace: string }; spec: BindingSpec }): string {
  const override = binding.spec.repo.idOverride;
  return override !== undefined && override !== ""
    ? override
    : defaultRepoId(binding.metadata.namespace, binding.spec.source.kind, binding.spec.source.name);
}

/**
 * Whether `id` reads as another namespace's default id (`volsync-<namespace>-<kind>-<name>` with a namespace
 * other than `namespace`): an idOverride may not squat on ids that are another namespace's by name. Every
 * way of reading it counts (namespaces and names may both contain a kind's word).
 */
export function foreignDefaultId(id: string, namespace: string): boolean {
  if (!id.startsWith("volsync-")) return false;
  for (const kind of VOLSYNC_KINDS) {
    const word = `-${kind.toLowerCase()}-`;
    for (let at = id.indexOf(word); at >= 0; at = id.indexOf(word, at + 1)) {
      const ns = id.slice("volsync-".length, at);
      if (ns !== "" && ns !== namespace && at + word.length < id.length) return true;
    }
  }
  return false;
}
