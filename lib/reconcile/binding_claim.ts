/**
 * The claim step of the Binding pipeline: a Binding applies a repo id only while it holds the id's claim
 * (claims.ts). Rules: an id held by another Binding is `RepoIdConflict`, whatever the ages (the message
 * names the holder only within the tenant's own namespace); a free id is
 * taken at once when it is the Binding's own namespace's default id, one it (or an earlier version of this
 * operator) applied before claims existed, or one it adopts with the OperatorConfig's consent; any other
 * free id is first looked up in the shared listing and left alone when Backrest already holds it; an
 * `idOverride` shaped like another namespace's default id is never accepted.
 */
import { type Binding, ConditionType, defaultRepoId, isConditionTrue, Reason } from "../api/mod.ts";
import { type BackrestConnection, BackrestError } from "../backrest/mod.ts";
import { failureOutcome } from "./outcomes.ts";
import type { ReconcileContext } from "../runtime/mod.ts";
import { notReady, type Stop, stopWith } from "./pipeline.ts";
import type { ClaimLedger, Holder } from "./claims.ts";
import type { ConfigGate } from "./config_gate.ts";
import type { RepoListings } from "./repo_listings.ts";
import type { OperatorSettings } from "./settings.ts";

/** How old a listing may be when it decides whether an id already exists in Backrest. */
const LISTING_MAX_AGE_MS = 5_000;
/** When an id that exists in Backrest unowned is asked for again (it may have been removed meanwhile). */
const EXISTS_RECHECK_MS = 300_000;

/**
 * Whether the status is the Go prototype's record of applying this very spec: no `repoId` (ours always
 * sets it), an input hash, and Ready for the current generation.
 */
export function appliedByPrototype(b: Binding): boolean {
  const s = b.status;
  return s.repoId === undefined && s.lastAppliedInputHash !== undefined &&
    s.observedGeneration === b.metadata.generation && isConditionTrue(s.conditions, ConditionType.Ready);
}

/** The claim step over the ledger and the shared listings. */
export function bindingClaim(deps: {
  claims: ClaimLedger;
  listings: Pick<RepoListings, "ids">;
  gate?: Pick<ConfigGate, "check"> | undefined;
}): (
  b: Binding,
  key: string,
  id: string,
  connection: BackrestConnection,
  settings: OperatorSettings,
  ctx: ReconcileContext,
) => Promise<true | Stop> {
  /** Whether an unclaimed id is the Binding's to take without asking Backrest whether it exists. */
  function mayTake(b: Binding, id: string, settings: OperatorSettings): boolean {
    const ns = b.metadata.namespace ?? "";
    if (id === defaultRepoId(ns, b.spec.source.kind, b.spec.source.name)) return true;
    if (b.spec.repo.adopt && settings.spec.repositoryPolicy.allowAdoption) return true;
    // Applied by an earlier version of this operator, before claims existed (the Go prototype's are claimed
    // at first sight: appliedByPrototype).
    return b.status.repoId === id;
  }

  return async function claim(b, key, id, connection, settings, ctx) {
    const holder: Holder = { key, uid: b.metadata.uid ?? "" };
    const current = deps.claims.get(id);
    // A tenant reads this message and its Event: it names the holder only when the holder is in the same
    // namespace; another namespace's Binding is named in the operator's log, for the admin.
    const conflict = (other: Holder): Stop => {
      const slash = other.key.indexOf("/");
      const sameNamespace = other.key.slice(0, slash) === (b.metadata.namespace ?? "");
      if (!sameNamespace) {
        ctx.log.info("Repo id held by a Binding in another namespace", { repoId: id, holder: other.key });
      }
      const holder = sameNamespace ? `Binding ${other.key.slice(slash + 1)}` : "another Binding";
      return notReady(
        Reason.RepoIdConflict,
        `${holder} holds repo id ${id} (it applied it first); set spec.repo.idOverride ` +
          "to a free id (neither Binding overwrites the other)",
      );
    };
    if (current && current.holder.key !== key) return conflict(current.holder);
    if (current && current.holder.uid === holder.uid && current.url === connection.url) return true;
    // Free, or held by this Binding under an older uid or URL.
    if (!current && !mayTake(b, id, settings)) {
      let ids: ReadonlySet<string>;
      try {
        deps.gate?.check(settings);
        ids = await deps.listings.ids(connection.url, {
          maxAgeMs: LISTING_MAX_AGE_MS,
          signal: ctx.signal,
          extra: connection,
        });
      } catch (e) {
        if (!(e instanceof BackrestError)) throw e;
        const c = failureOutcome(e, "GetSummaryDashboard");
        return stopWith(
          { ready: false, reason: c.reason, message: c.message, error: c.message },
          c.retry ? { retry: c.message } : {},
        );
      }
      if (ids.has(id)) {
        return stopWith({
          ready: false,
          reason: Reason.RepoExistsInBackrest,
          message: `repo id ${id} already exists in Backrest and no Binding applied it (created in the ` +
            "Backrest UI or by another tool); it is left alone. Use another spec.repo.idOverride, or set " +
            "spec.repo.adopt: true where the OperatorConfig's repositoryPolicy.allowAdoption permits it",
        }, { requeueMs: EXISTS_RECHECK_MS });
      }
    }
    const got = await deps.claims.acquire(id, holder, connection.url, ctx.signal);
    return got.ok ? true : conflict(got.holder);
  };
}
