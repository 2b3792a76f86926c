/**
 * Fixtures for Backrest client tests: a desired repo for an id and a restic repository, and an assertion
 * that a call fails with a given `BackrestError` kind.
 */
import assert from "node:assert/strict";
import {
  BACKENDS,
  BackrestError,
  type BackrestErrorKind,
  DEFAULT_REPOSITORY_POLICY,
  type DesiredRepo,
  desiredRepo,
} from "../../lib/backrest/mod.ts";

const enc = new TextEncoder();

/**
 * The DesiredRepo for `id` at `repo`, with extra Secret keys and restic flags. The client is tested here,
 * not the operator's repository policy: every backend (local paths too) and ambient credentials pass.
 */
export function repoFor(
  id: string,
  repo: { uri: string; password: string },
  extra: Record<string, string> = {},
  flags: string[] = [],
): Promise<DesiredRepo> {
  const data: Record<string, Uint8Array> = {
    RESTIC_REPOSITORY: enc.encode(repo.uri),
    RESTIC_PASSWORD: enc.encode(repo.password),
  };
  for (const [k, v] of Object.entries(extra)) data[k] = enc.encode(v);
  return desiredRepo({
    namespace: "ns",
    kind: "ReplicationSource",
    name: "n",
    secretData: data,
    settings: { idOverride: id, extraFlags: flags },
    // Anything goes, loopback storage included (the test repositories live there).
    policy: {
      ...DEFAULT_REPOSITORY_POLICY,
      allowedBackends: BACKENDS,
      allowAmbientCredentials: true,
      allowLocalAddresses: true,
    },
  });
}

/** Awaits `p` and asserts it fails with a BackrestError of `kind`; returns the error. */
export async function rejectsWith(p: Promise<unknown>, kind: BackrestErrorKind): Promise<BackrestError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof BackrestError, `expected BackrestError, got ${e}`);
    assert.equal(e.kind, kind, e.message);
    return e;
  }
  assert.fail(`expected a BackrestError of kind ${kind}`);
}
