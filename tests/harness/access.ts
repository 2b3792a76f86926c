/**
 * What a user may do, asked of the real apiserver's authorizer with a SubjectAccessReview: one request at
 * a time ({@linkcode can}), or a table of them written as sentences ({@linkcode assertAccess}).
 */
import assert from "node:assert/strict";
import type { ControlPlane } from "./control_plane.ts";

/** The authorization attributes of one request, as a SubjectAccessReview takes them. */
export interface Attributes {
  verb: string;
  group: string;
  resource: string;
  subresource?: string;
  /** Absent: cluster-wide. */
  namespace?: string;
}

/**
 * Asks the server whether `user` may do what `attrs` describe. A ServiceAccount
 * (`system:serviceaccount:<ns>:<name>`) is asked with the groups the apiserver gives its token.
 */
export async function can(cp: ControlPlane, user: string, attrs: Attributes): Promise<boolean> {
  const sa = /^system:serviceaccount:([^:]+):/.exec(user);
  const groups = sa
    ? ["system:serviceaccounts", `system:serviceaccounts:${sa[1]}`, "system:authenticated"]
    : ["system:authenticated"];
  const sar = await cp.json("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", {
    apiVersion: "authorization.k8s.io/v1",
    kind: "SubjectAccessReview",
    spec: { user, groups, resourceAttributes: attrs },
  }) as { status?: { allowed?: boolean } };
  return sar.status?.allowed === true;
}

/**
 * Asserts what `user` may and may not do, one sentence a request, as `kubectl auth can-i` spells it:
 * `may <verb> <resource>[.<group>][/<subresource>] [in <namespace>]` or `may not ...` (no `in`:
 * cluster-wide), e.g. `may update leases.coordination.k8s.io in backups`. Every sentence is asked; the
 * failure shows each one as the server answers it.
 */
export async function assertAccess(cp: ControlPlane, user: string, expected: string[]): Promise<void> {
  const answered: string[] = [];
  for (const sentence of expected) {
    const m = /^may (?:not )?(\S+) ([^\s/.]+)(?:\.([^\s/]+))?(?:\/(\S+))?(?: in (\S+))?$/.exec(sentence);
    if (!m) throw new Error(`not a sentence of assertAccess: ${sentence}`);
    const [, verb, resource, group, subresource, namespace] = m;
    const allowed = await can(cp, user, {
      verb: verb!,
      group: group ?? "",
      resource: resource!,
      ...(subresource ? { subresource } : {}),
      ...(namespace ? { namespace } : {}),
    });
    answered.push(sentence.replace(/^may (not )?/, allowed ? "may " : "may not "));
  }
  assert.deepEqual(answered, expected, `what ${user} may do`);
}
