/**
 * The chart's alerts and dashboard as data for tests: the PrometheusRule rendered by the real helm, its
 * rule groups as a Prometheus rules file for the real promtool, the dashboard's queries, and the metric
 * names both use. Rule: what is tested is what the chart renders, never a copy of it.
 */
import { parse, stringify } from "yaml";
import { CHART, helm, isObj, type Obj, ok, parseObjects } from "../packaging_support.ts";
import { peer } from "./peers.ts";
import { tempDir } from "./process.ts";

/**
 * Metrics the alerts and the dashboard use that the operator does not serve (none: the operator's own three,
 * lib/reconcile/metrics.ts, arrived). A test holds this list equal to what is really missing.
 */
export const PROPOSED_METRICS: readonly string[] = [];

/** Metrics Prometheus itself makes for every target. */
const PROMETHEUS_OWN = new Set(["up"]);

export interface Rule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

/** The PrometheusRule the chart renders with `set` (plus `metrics.prometheusRule.enabled=true`). */
export async function renderedRule(set: string[] = [], namespace = "backups"): Promise<Obj> {
  const out = ok(
    "helm template",
    await helm([
      "template",
      "bvo",
      CHART,
      "-n",
      namespace,
      "--set",
      "metrics.prometheusRule.enabled=true",
      ...set.flatMap((s) => ["--set", s]),
    ]),
  );
  const rules = parseObjects(out).filter((o) => o.kind === "PrometheusRule");
  if (rules.length !== 1) throw new Error(`expected one PrometheusRule, got ${rules.length}`);
  return rules[0]!;
}

/** The rule's groups as a Prometheus rules file (what the Prometheus Operator hands Prometheus). */
export function rulesFile(rule: Obj): string {
  const spec = rule.spec;
  if (!isObj(spec) || !Array.isArray(spec.groups)) throw new Error("PrometheusRule without spec.groups");
  return stringify({ groups: spec.groups });
}

/** Every alerting rule of the rendered PrometheusRule. */
export function alerts(rule: Obj): Rule[] {
  const doc = parse(rulesFile(rule)) as { groups: { rules: Rule[] }[] };
  return doc.groups.flatMap((g) => g.rules);
}

/** The shipped dashboard. */
export async function dashboard(): Promise<Obj> {
  const doc: unknown = JSON.parse(
    await Deno.readTextFile(`${CHART}/dashboards/backrest-volsync-operator.json`),
  );
  if (!isObj(doc)) throw new Error("the dashboard is not a JSON object");
  return doc;
}

/** Every PromQL query of the dashboard's panels (rows included), with its panel's title. */
export function dashboardQueries(dash: Obj): { title: string; expr: string }[] {
  const out: { title: string; expr: string }[] = [];
  const visit = (panels: unknown) => {
    if (!Array.isArray(panels)) return;
    for (const p of panels) {
      if (!isObj(p)) continue;
      for (const t of Array.isArray(p.targets) ? p.targets : []) {
        if (isObj(t) && typeof t.expr === "string") out.push({ title: String(p.title), expr: t.expr });
      }
      visit(p.panels);
    }
  };
  visit(dash.panels);
  return out;
}

/** A dashboard query as Prometheus receives it: Grafana's variables replaced by what they expand to. */
export function expandVariables(expr: string): string {
  return expr.replaceAll("$__rate_interval", "1m").replaceAll("$job", "(a|b)").replaceAll(
    "$namespace",
    "(a|b)",
  );
}

/**
 * Metric names a PromQL expression selects. Our queries always write a selector after a metric (`name{`),
 * which keeps this a plain scan; histogram series are reported as their family.
 */
export function metricNames(expr: string): string[] {
  const names = new Set<string>();
  for (const m of expr.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)\{/g)) {
    names.add(m[1]!.replace(/_bucket$/, ""));
  }
  return [...names].filter((n) => !PROMETHEUS_OWN.has(n)).sort();
}

/** Every operator metric the chart's alerts (both leader election variants) and dashboard use. */
export async function chartMetricNames(): Promise<string[]> {
  const exprs = [
    ...alerts(await renderedRule()).map((r) => r.expr),
    ...alerts(await renderedRule(["leaderElection.enabled=false"])).map((r) => r.expr),
    ...dashboardQueries(await dashboard()).map((q) => q.expr),
  ];
  return [...new Set(exprs.flatMap(metricNames))].sort();
}

/** Metric families an exposition (`/metrics`) declares with `# TYPE`, served or not yet sampled. */
export function exposedFamilies(text: string): string[] {
  return [...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!).sort();
}

/** Runs the pinned promtool in a temp dir holding `files`; returns its result. */
export async function promtool(
  args: string[],
  files: Record<string, string>,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const bin = (await peer("promtool")).path;
  const dir = await tempDir("promtool");
  for (const [name, text] of Object.entries(files)) await Deno.writeTextFile(`${dir}/${name}`, text);
  const out = await new Deno.Command(bin, { args, cwd: dir, stdout: "piped", stderr: "piped" }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}
