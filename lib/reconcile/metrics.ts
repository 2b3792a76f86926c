/**
 * The operator's own metrics, beside controller-runtime's: whether each Binding is Ready (and why not),
 * every Backrest call by outcome, the repos drift repair found missing, and whether the OperatorConfig in
 * force is known to be current (with the reconciles held while it is not). Rules: labels carry namespaces,
 * names, reasons, RPC names, Connect codes and Backrest origins (scheme, host and port: a URL's path is a
 * tenant's to write, and would make one series per path, forever); never a Secret value or Backrest's
 * text. A Binding's series goes when the Binding goes, a Backrest's when no Binding names it any more.
 */
import { backrestOrigin } from "../api/mod.ts";
import type { BackrestApi, BackrestConnection } from "../backrest/mod.ts";
import { isRecord, type KubeObject, namespacedKey } from "../kube/mod.ts";
import type { InformerHandler, Store } from "../runtime/mod.ts";
import { BackrestError } from "../backrest/mod.ts";
import type { Counter, Gauge, Registry } from "../observe/mod.ts";

/** The operator's metrics, registered once per process. */
export interface OperatorMetrics {
  /** `backrest_volsync_binding_ready{binding_namespace,binding,reason}`: 1 when Ready, else 0. */
  readonly bindingReady: Gauge;
  /** `backrest_volsync_backrest_requests_total{backrest,method,code}`; code `ok` or the Connect code. */
  readonly backrestRequests: Counter;
  /** `backrest_volsync_drift_repairs_total{backrest}`: repos found missing and re-enqueued. */
  readonly driftRepairs: Counter;
  /** `backrest_volsync_operator_config_known`: 1 while Backrest may be called (config_gate.ts), else 0. */
  readonly configKnown: Gauge;
  /** `backrest_volsync_config_holds_total{controller}`: reconciles held while the config was not known. */
  readonly configHolds: Counter;
}

/** Registers the operator's metrics in `registry`. */
export function createOperatorMetrics(registry: Registry): OperatorMetrics {
  return {
    bindingReady: registry.gauge({
      name: "backrest_volsync_binding_ready",
      help: "Whether the Binding's repo is registered in Backrest (1) or not (0), with the Ready reason",
      labelNames: ["binding_namespace", "binding", "reason"],
    }),
    backrestRequests: registry.counter({
      name: "backrest_volsync_backrest_requests_total",
      help: "Calls to Backrest by Backrest URL, method and result (ok, or the Connect code)",
      labelNames: ["backrest", "method", "code"],
    }),
    driftRepairs: registry.counter({
      name: "backrest_volsync_drift_repairs_total",
      help: "Repos drift repair found missing from a Backrest and re-enqueued",
      labelNames: ["backrest"],
    }),
    configKnown: registry.gauge({
      name: "backrest_volsync_operator_config_known",
      help: "Whether the OperatorConfig in force is known to be current, every cache being current (1): " +
        "Backrest is called only then",
      labelNames: [],
    }),
    configHolds: registry.counter({
      name: "backrest_volsync_config_holds_total",
      help: "Reconciles held (no Backrest call, no status write) while the OperatorConfig was not known",
      labelNames: ["controller"],
    }),
  };
}

/** The `backrest` label of a Backrest URL: its origin. */
export function backrestLabel(url: string): string {
  return backrestOrigin(url) ?? "invalid";
}

/** Drops the series of every Backrest whose origin is not in `used` (the origins current Bindings name). */
export function dropUnusedBackrests(m: OperatorMetrics, used: ReadonlySet<string>): void {
  for (const metric of [m.backrestRequests, m.driftRepairs]) {
    for (const origin of metric.labelValues("backrest")) {
      if (!used.has(origin)) metric.removeWhere({ backrest: origin });
    }
  }
}

/** What the sweeper reads of a Binding: the Backrest URLs it names (spec, and status while it holds a repo). */
function urlsOf(obj: KubeObject): string[] {
  const spec = isRecord(obj.spec) && isRecord(obj.spec.backrest) ? obj.spec.backrest.url : undefined;
  const status = isRecord(obj.status) ? obj.status.backrestURL : undefined;
  return [spec, status].filter((u): u is string => typeof u === "string");
}

/**
 * An informer handler that, a second after a Binding goes or changes its Backrest, drops the series of
 * every Backrest no Binding in `bindings` names any more (one pass for a burst of deletions).
 */
export function unusedBackrestSweeper(
  m: OperatorMetrics,
  bindings: Store<KubeObject>,
): InformerHandler<KubeObject> {
  let pending: ReturnType<typeof setTimeout> | undefined;
  const sweep = () => {
    pending = undefined;
    const used = new Set(bindings.list().flatMap(urlsOf).map(backrestLabel));
    dropUnusedBackrests(m, used);
  };
  return (e) => {
    const moved = e.type === "update" && urlsOf(e.old).some((u) => !urlsOf(e.object).includes(u));
    if ((e.type === "delete" || moved) && pending === undefined) {
      const timer = setTimeout(sweep, 1000);
      Deno.unrefTimer(timer);
      pending = timer;
    }
  };
}

/** Keeps one `bindingReady` series per Binding: a new reason replaces the old series. */
export class ReadyGauge {
  readonly #gauge: Gauge;
  readonly #reasons = new Map<string, string>();

  /** `gauge` is `OperatorMetrics.bindingReady` (labels `binding_namespace`, `binding`, `reason`). */
  constructor(gauge: Gauge) {
    this.#gauge = gauge;
  }

  /** The Binding `namespace/name` is now ready or not, for `reason`. */
  set(namespace: string, name: string, ready: boolean, reason: string): void {
    const key = namespacedKey(namespace, name);
    const before = this.#reasons.get(key);
    if (before !== undefined && before !== reason) {
      this.#gauge.remove({ binding_namespace: namespace, binding: name, reason: before });
    }
    this.#reasons.set(key, reason);
    this.#gauge.set({ binding_namespace: namespace, binding: name, reason }, ready ? 1 : 0);
  }

  /** The Binding `namespace/name` is gone. */
  drop(key: string): void {
    const reason = this.#reasons.get(key);
    if (reason === undefined) return;
    this.#reasons.delete(key);
    const slash = key.indexOf("/");
    this.#gauge.remove({ binding_namespace: key.slice(0, slash), binding: key.slice(slash + 1), reason });
  }
}

/** The Connect code of a failed call, snake_case (a connection failure is `unavailable`). */
function codeOf(e: unknown): string {
  if (!(e instanceof BackrestError)) return "unknown";
  if (e.code) return e.code;
  switch (e.kind) {
    case "deadline":
      return "deadline_exceeded";
    case "invalid":
      return "invalid_argument";
    case "unsupported":
      return "unimplemented";
    case "failed":
      return "unknown";
    default:
      return e.kind;
  }
}

/** Backrest clients from `factory` whose every call is counted in `counter`. */
export function countedBackrest(
  factory: (connection: BackrestConnection) => BackrestApi,
  counter: Counter,
): (connection: BackrestConnection) => BackrestApi {
  return (connection) => {
    const api = factory(connection);
    const backrest = backrestLabel(connection.url);
    async function counted<T>(method: string, call: () => Promise<T>): Promise<T> {
      try {
        const out = await call();
        counter.inc({ backrest, method, code: "ok" });
        return out;
      } catch (e) {
        counter.inc({ backrest, method, code: codeOf(e) });
        throw e;
      }
    }
    return {
      url: api.url,
      addRepo: (r, o) => counted("AddRepo", () => api.addRepo(r, o)),
      removeRepo: (id, o) => counted("RemoveRepo", () => api.removeRepo(id, o)),
      checkRepoExists: (r, o) => counted("CheckRepoExists", () => api.checkRepoExists(r, o)),
      doRepoTask: (id, task, o) => counted("DoRepoTask", () => api.doRepoTask(id, task, o)),
      listRepoIds: (o) => counted("GetSummaryDashboard", () => api.listRepoIds(o)),
      probe: (o) => counted("Probe", () => api.probe(o)),
    };
  };
}
