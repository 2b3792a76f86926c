/**
 * A KubeClient that counts and records what goes through it (a Proxy over the real client): tests count
 * the operator's writes, benchmarks its requests per verb and resource. Watches count once, when opened.
 */
import type { KubeClient } from "../../lib/kube/mod.ts";

/** The verbs that write. */
export const WRITE_VERBS: ReadonlySet<string> = new Set([
  "create",
  "update",
  "patch",
  "apply",
  "updateStatus",
  "patchStatus",
  "applyStatus",
  "delete",
]);

/** Apiserver calls made through a KubeClient, per verb and per verb:resource. */
export interface KubeCounts {
  byVerb: Record<string, number>;
  byVerbResource: Record<string, number>;
  requests(): number;
  writes(): number;
  reset(): void;
  snapshot(): { requests: number; writes: number; byVerbResource: Record<string, number> };
}

/** One write made through the client: the verb and its arguments (type, name or object, body, options). */
export interface RecordedWrite {
  verb: string;
  args: unknown[];
}

/**
 * A Proxy over `kube` that counts every call by verb, records every write in `writes`, and every write
 * and `get` in `calls`, in the order they were made.
 */
export function countingKube(
  kube: KubeClient,
): { kube: KubeClient; counts: KubeCounts; writes: RecordedWrite[]; calls: RecordedWrite[] } {
  const writes: RecordedWrite[] = [];
  const calls: RecordedWrite[] = [];
  const counts: KubeCounts = {
    byVerb: {},
    byVerbResource: {},
    requests: () => Object.values(counts.byVerb).reduce((a, b) => a + b, 0),
    writes: () =>
      Object.entries(counts.byVerb).filter(([v]) => WRITE_VERBS.has(v)).reduce((a, [, n]) => a + n, 0),
    reset() {
      counts.byVerb = {};
      counts.byVerbResource = {};
    },
    snapshot: () => ({
      requests: counts.requests(),
      writes: counts.writes(),
      byVerbResource: { ...counts.byVerbResource },
    }),
  };
  const proxy = new Proxy(kube, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== "function" || typeof prop !== "string") return value;
      // Methods run on the real client (it keeps private fields), never on the proxy.
      return (...args: unknown[]) => {
        if (WRITE_VERBS.has(prop)) writes.push({ verb: prop, args });
        if (WRITE_VERBS.has(prop) || prop === "get") calls.push({ verb: prop, args });
        const type = args[0] as { resource?: string } | undefined;
        counts.byVerb[prop] = (counts.byVerb[prop] ?? 0) + 1;
        const key = `${prop}:${type?.resource ?? "?"}`;
        counts.byVerbResource[key] = (counts.byVerbResource[key] ?? 0) + 1;
        return value.apply(target, args);
      };
    },
  });
  return { kube: proxy, counts, writes, calls };
}
