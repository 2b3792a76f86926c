/**
 * Cron expressions as Backrest v1.14.1 reads them (github.com/gitploy-io/cronexpr v0.2.2, through
 * `internal/protoutil/schedule.go`): exactly five fields (minute, hour, day of month, month, day of week),
 * each a comma list of `*`, `N` or `N-M` with an optional `/step`, months and days also by three-letter
 * name; a day matches when its day of month **and** its weekday match (the library's star test is always
 * true, so it never takes the union). No seconds, no `@daily`, no `L`, `W` or `#`: Backrest refuses them.
 * Rules: values must lie within their field and steps must be at least 1, because the library loops from
 * the low value to the high one by the step (`*\/0` never ends, a huge range runs for minutes) while
 * validating a repo, holding up the AddRepo of every namespace; and the minimum gap between two runs is
 * computed here (in UTC) so the OperatorConfig can bound how often a tenant's prune or check runs.
 */

/** One field's grammar, without bounds: `*`, a number or a name, a range, an optional step of 1 to 99. */
const FIELD = "(\\*|[0-9]{1,2}|[A-Za-z]{3})(-([0-9]{1,2}|[A-Za-z]{3}))?(/[1-9][0-9]?)?" +
  "(,(\\*|[0-9]{1,2}|[A-Za-z]{3})(-([0-9]{1,2}|[A-Za-z]{3}))?(/[1-9][0-9]?)?)*";

/**
 * The shape of an expression Backrest accepts: five fields of {@linkcode FIELD}. Spelled as a string so the
 * CRD's CEL rule carries exactly this expression (a test compares them); bounds are checked by
 * {@linkcode parseCron}.
 */
export const CRON_PATTERN_SOURCE: string = `^\\s*${FIELD}(\\s+${FIELD}){4}\\s*$`;

const PATTERN = new RegExp(CRON_PATTERN_SOURCE);

const MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
const DAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

interface FieldSpec {
  name: string;
  min: number;
  max: number;
  names?: string[];
  /** First value a name stands for (1 for months, 0 for days). */
  nameBase?: number;
}

const FIELDS: readonly FieldSpec[] = [
  { name: "minute", min: 0, max: 59 },
  // The library's own bound is 0-24; hour 24 never matches, so it is refused here as the UI does.
  { name: "hour", min: 0, max: 23 },
  { name: "day of month", min: 1, max: 31 },
  { name: "month", min: 1, max: 12, names: MONTHS, nameBase: 1 },
  // 7 for Sunday never matches in Backrest (its validation says "check for DOW=7 usage").
  { name: "day of week", min: 0, max: 6, names: DAYS, nameBase: 0 },
];

/** A parsed expression: the values each field matches. */
export interface Cron {
  /** Minutes of the hour it runs at, ascending. */
  minutes: number[];
  /** Hours of the day it runs at, ascending. */
  hours: number[];
  /** Days of the month (1-31) it may run on. */
  daysOfMonth: ReadonlySet<number>;
  /** Months (1-12) it may run in. */
  months: ReadonlySet<number>;
  /** Weekdays (0 Sunday to 6) it may run on; a day must match both this and `daysOfMonth`. */
  daysOfWeek: ReadonlySet<number>;
}

function value(text: string, f: FieldSpec): number | undefined {
  if (/^[0-9]+$/.test(text)) return Number(text);
  const i = f.names?.indexOf(text.toUpperCase()) ?? -1;
  return i < 0 ? undefined : i + (f.nameBase ?? 0);
}

function parseField(text: string, f: FieldSpec): number[] | string {
  const out = new Set<number>();
  for (const item of text.split(",")) {
    const [range, stepText] = item.split("/") as [string, string | undefined];
    const step = stepText === undefined ? 1 : Number(stepText);
    let lo: number | undefined;
    let hi: number | undefined;
    if (range === "*") [lo, hi] = [f.min, f.max];
    else {
      const [a, b] = range.split("-") as [string, string | undefined];
      lo = value(a, f);
      hi = b === undefined ? (stepText === undefined ? lo : f.max) : value(b, f);
    }
    if (lo === undefined || hi === undefined) return `${f.name}: ${JSON.stringify(item)} names no value`;
    if (lo < f.min || hi > f.max || lo > hi) {
      return `${f.name}: ${JSON.stringify(item)} must lie within ${f.min}-${f.max}, low to high`;
    }
    if (step > f.max - f.min + 1) return `${f.name}: step ${step} is larger than the field`;
    for (let v = lo; v <= hi; v += step) out.add(v);
  }
  return [...out].sort((a, b) => a - b);
}

/** The parsed expression, or a problem naming the field (the expression is the tenant's own text). */
export function parseCron(expr: string): { ok: true; cron: Cron } | { ok: false; problem: string } {
  if (!PATTERN.test(expr)) {
    return {
      ok: false,
      problem: "must be five fields (minute hour day-of-month month day-of-week) of *, N, N-M, names and " +
        "/step, as Backrest reads them (no seconds, no @descriptors)",
    };
  }
  const fields = expr.trim().split(/\s+/);
  const sets: number[][] = [];
  for (let i = 0; i < FIELDS.length; i++) {
    const got = parseField(fields[i]!, FIELDS[i]!);
    if (typeof got === "string") return { ok: false, problem: got };
    sets.push(got);
  }
  return {
    ok: true,
    cron: {
      minutes: sets[0]!,
      hours: sets[1]!,
      daysOfMonth: new Set(sets[2]),
      months: new Set(sets[3]),
      daysOfWeek: new Set(sets[4]),
    },
  };
}

const DAY_MS = 86_400_000;
/** Days looked at: eight years from a leap year, so every month length and leap day is seen. */
const WINDOW_DAYS = 8 * 366;
const WINDOW_START = Date.UTC(2024, 0, 1);

/**
 * The shortest time between two consecutive runs of `cron`, in minutes (UTC; a local clock's DST change
 * can shorten one gap a year by an hour), or `Infinity` when it runs at most once in eight years.
 */
export function cronMinGapMinutes(cron: Cron): number {
  const times = cron.hours.flatMap((h) => cron.minutes.map((m) => h * 60 + m));
  if (times.length === 0) return Infinity;
  let gap = Infinity;
  for (let i = 1; i < times.length; i++) gap = Math.min(gap, times[i]! - times[i - 1]!);
  let previous: number | undefined;
  let dayGap = Infinity;
  for (let d = 0; d < WINDOW_DAYS; d++) {
    const day = new Date(WINDOW_START + d * DAY_MS);
    const matches = cron.daysOfMonth.has(day.getUTCDate()) && cron.months.has(day.getUTCMonth() + 1) &&
      cron.daysOfWeek.has(day.getUTCDay());
    if (!matches) continue;
    if (previous !== undefined) dayGap = Math.min(dayGap, d - previous);
    previous = d;
  }
  if (previous === undefined) return Infinity;
  return Math.min(gap, dayGap * 1440 - (times[times.length - 1]! - times[0]!));
}
