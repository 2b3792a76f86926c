/**
 * Draws bench/results/chart.svg from the result JSON: each measured figure as a share of its target
 * (100% = the target; green within it, red beyond). docs/benchmarks.md shows the picture; the JSON stays the record.
 */
import { isRecord } from "../lib/kube/mod.ts";

interface Bar {
  label: string;
  file: string;
  target: string;
  limit: number;
  unit: string;
}

const BARS: readonly Bar[] = [
  {
    label: "Secret edit, operator share p50",
    file: "secret-edit",
    target: "operatorShareP50",
    limit: 20,
    unit: "ms",
  },
  {
    label: "Secret edit, operator share p99",
    file: "secret-edit",
    target: "operatorShareP99",
    limit: 100,
    unit: "ms",
  },
  {
    label: "1 000 Bindings: cold start to all Ready",
    file: "cold-start-1000",
    target: "allReady",
    limit: 20_000,
    unit: "ms",
  },
  {
    label: "5 000 Bindings: cold start to all Ready",
    file: "cold-start-5000",
    target: "allReady",
    limit: 60_000,
    unit: "ms",
  },
  {
    label: "1 000 Bindings: writes per Binding",
    file: "cold-start-1000",
    target: "writesPerBinding",
    limit: 3,
    unit: "",
  },
  {
    label: "1 000 auto-bindings to all Ready",
    file: "auto-binding-1000",
    target: "allReady",
    limit: 30_000,
    unit: "ms",
  },
  {
    label: "auto-binding: writes per Binding",
    file: "auto-binding-1000",
    target: "writesPerBinding",
    limit: 3,
    unit: "",
  },
  {
    label: "memory at 5 000 Bindings (resident, idle)",
    file: "memory",
    target: "rssAtMax",
    limit: 100,
    unit: "MB",
  },
];

function measured(json: unknown, target: string): number | undefined {
  if (!isRecord(json) || !isRecord(json.targets)) return undefined;
  const t = json.targets[target];
  return isRecord(t) && typeof t.measured === "number" ? t.measured : undefined;
}

function escape(s: string): string {
  return s.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");
}

/** Renders the chart from the JSON files in `dir`; returns the SVG text. */
export async function renderChart(dir: string): Promise<string> {
  const rowH = 26, labelW = 300, barW = 360, scaleMax = 2;
  const rows: string[] = [];
  let y = 40;
  for (const bar of BARS) {
    let value: number | undefined;
    try {
      value = measured(JSON.parse(await Deno.readTextFile(`${dir}/${bar.file}.json`)), bar.target);
    } catch { /* not run */ }
    const share = value === undefined ? 0 : value / bar.limit;
    const w = Math.max(1, Math.min(share, scaleMax) / scaleMax * barW);
    const color = value === undefined ? "#bbb" : share <= 1 ? "#3a8f3a" : "#c0392b";
    const text = value === undefined
      ? "not run"
      : `${Math.round(value * 100) / 100}${bar.unit ? ` ${bar.unit}` : ""} (${
        Math.round(share * 100)
      }% of ${bar.limit}${bar.unit ? ` ${bar.unit}` : ""})`;
    rows.push(
      `<text x="${labelW - 8}" y="${y + 16}" text-anchor="end">${escape(bar.label)}</text>`,
      `<rect x="${labelW}" y="${y + 4}" width="${w.toFixed(1)}" height="16" fill="${color}"/>`,
      `<text x="${labelW + w + 6}" y="${y + 16}">${escape(text)}</text>`,
    );
    y += rowH;
  }
  const targetX = labelW + barW / scaleMax;
  const height = y + 14;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${
      labelW + barW + 260
    }" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="10" y="20" font-size="14" font-weight="bold">backrest-volsync-operator benchmarks: measured / target</text>`,
    `<line x1="${targetX}" y1="32" x2="${targetX}" y2="${height - 6}" stroke="#333" stroke-dasharray="4 3"/>`,
    `<text x="${targetX + 4}" y="34">target</text>`,
    ...rows,
    `</svg>`,
    "",
  ].join("\n");
}

if (import.meta.main) {
  const dir = new URL("./results", import.meta.url).pathname;
  await Deno.writeTextFile(`${dir}/chart.svg`, await renderChart(dir));
}
