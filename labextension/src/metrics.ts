/**
 * The sidebar's metrics data: replies of `jobs/<name>/metrics` merged into one series per
 * (metric, replica), bounded like the server's (first/last/min/max per bucket), and what a
 * chart shows (aligned data, last and best value). No JupyterLab imports: unit-tested in node.
 */

/** Which way is better, as the server says (`goals`): loss-like `min`, accuracy-like `max`. */
export type Goal = 'min' | 'max';

export interface IMetricsReply {
  name: string;
  replicas: string[];
  series: { [metric: string]: { [replica: string]: [number, number][] } };
  goals: { [metric: string]: Goal };
  cursor: string;
  reset: boolean;
  live: boolean;
  errors: { [source: string]: string };
}

/** One metric of one replica, in step order. */
export interface ISeries {
  steps: number[];
  values: number[];
}

/** Most points a series keeps in the page (the server keeps 10,000; a 300 px chart needs far fewer). */
export const MAX_CHART_POINTS = 2000;

/** Keep each bucket's first, last, lowest and highest point: at most `limit / 2` points remain. */
export function downsample(series: ISeries, limit: number): ISeries {
  const n = series.steps.length;
  if (n <= limit) {
    return series;
  }
  const buckets = Math.max(Math.floor(limit / 8), 1);
  const keep: number[] = [];
  for (let b = 0; b < buckets; b++) {
    const lo = Math.floor((b * n) / buckets);
    const hi = Math.floor(((b + 1) * n) / buckets);
    if (lo >= hi) {
      continue;
    }
    let low = lo;
    let high = lo;
    for (let i = lo; i < hi; i++) {
      if (series.values[i] < series.values[low]) {
        low = i;
      }
      if (series.values[i] > series.values[high]) {
        high = i;
      }
    }
    keep.push(
      ...Array.from(new Set([lo, low, high, hi - 1])).sort((a, b) => a - b)
    );
  }
  return {
    steps: keep.map(i => series.steps[i]),
    values: keep.map(i => series.values[i])
  };
}

/** Add points to a series: appended, inserted in step order, or replacing the value at a step. */
export function mergePoints(
  series: ISeries,
  points: [number, number][],
  limit = MAX_CHART_POINTS
): ISeries {
  const steps = series.steps.slice();
  const values = series.values.slice();
  for (const [step, value] of points) {
    const n = steps.length;
    if (n === 0 || step > steps[n - 1]) {
      steps.push(step);
      values.push(value);
      continue;
    }
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (steps[mid] < step) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    if (steps[lo] === step) {
      values[lo] = value;
    } else {
      steps.splice(lo, 0, step);
      values.splice(lo, 0, value);
    }
  }
  return downsample({ steps, values }, limit);
}

/** Every metric of a job as the sidebar holds it, kept current by `apply(reply)`. */
export class MetricsData {
  /** metric → replica → series, metrics in the order they first came. */
  series = new Map<string, Map<string, ISeries>>();
  goals = new Map<string, Goal>();
  cursor: string | null = null;
  live = true;
  errors: { [source: string]: string } = {};

  constructor(readonly limit = MAX_CHART_POINTS) {}

  /** Merge one reply; true when it changed anything. */
  apply(reply: IMetricsReply): boolean {
    let changed = false;
    if (reply.reset && this.series.size > 0) {
      this.series.clear();
      changed = true;
    }
    for (const [metric, replicas] of Object.entries(reply.series)) {
      let held = this.series.get(metric);
      if (!held) {
        held = new Map();
        this.series.set(metric, held);
      }
      for (const [replica, points] of Object.entries(replicas)) {
        if (points.length === 0) {
          continue;
        }
        const before = held.get(replica) ?? { steps: [], values: [] };
        held.set(replica, mergePoints(before, points, this.limit));
        changed = true;
      }
    }
    for (const [metric, goal] of Object.entries(reply.goals)) {
      this.goals.set(metric, goal);
    }
    changed = changed || this.live !== reply.live;
    this.cursor = reply.cursor;
    this.live = reply.live;
    this.errors = reply.errors ?? {};
    return changed;
  }

  goal(metric: string): Goal {
    return this.goals.get(metric) ?? 'min';
  }
}

export interface IPointValue {
  step: number;
  value: number;
}

/** The last value (highest step) and the best one (lowest or highest value; the earliest on ties). */
export function lastAndBest(
  series: ISeries,
  goal: Goal
): { last: IPointValue | null; best: IPointValue | null } {
  const n = series.steps.length;
  if (n === 0) {
    return { last: null, best: null };
  }
  let best = 0;
  for (let i = 1; i < n; i++) {
    const v = series.values[i];
    if (goal === 'max' ? v > series.values[best] : v < series.values[best]) {
      best = i;
    }
  }
  return {
    last: { step: series.steps[n - 1], value: series.values[n - 1] },
    best: { step: series.steps[best], value: series.values[best] }
  };
}

/**
 * uPlot's aligned data for one metric: x = every step any replica has (sorted), then one
 * row per replica with null where it has no value at that step (uPlot bridges no gaps).
 */
export function alignedData(
  replicas: Map<string, ISeries>
): [number[], ...(number | null)[][]] {
  const xs = Array.from(
    new Set(Array.from(replicas.values()).flatMap(s => s.steps))
  ).sort((a, b) => a - b);
  const index = new Map(xs.map((x, i) => [x, i]));
  const rows = Array.from(replicas.values()).map(s => {
    const row: (number | null)[] = new Array(xs.length).fill(null);
    s.steps.forEach((step, i) => {
      row[index.get(step)!] = s.values[i];
    });
    return row;
  });
  return [xs, ...rows];
}

/** A value as people read metrics: 4 significant digits, exponent form when tiny or huge. */
export function formatValue(value: number): string {
  if (!Number.isFinite(value)) {
    return String(value);
  }
  const magnitude = Math.abs(value);
  if (magnitude !== 0 && (magnitude < 1e-3 || magnitude >= 1e6)) {
    return value.toExponential(3);
  }
  return String(Number(value.toPrecision(4)));
}
