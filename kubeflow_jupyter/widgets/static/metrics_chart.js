// The JobMonitor's chart panel: an anywidget module, appended by metrics_chart.py to uPlot's
// IIFE build (which defines the module-scoped `uPlot`), so the whole module is one string and
// needs no network and no lab extension of its own.
//
// Model traits (set by the kernel, read here): `series` {metric: {replica: [[step, value], ...]}},
// `summary` {metric: {replica: {last: [step, value], best: [step, value], goal: "min"|"max"}}},
// `live` (the follow goes on).

const CHART_WIDTH = 260;
const CHART_HEIGHT = 110;
// Line colours per replica, from JupyterLab's theme so they read in light and dark themes
// (the sidebar's charts use the same list).
const REPLICA_COLORS = [
  ["--jp-brand-color1", "#1976d2"],
  ["--jp-warn-color1", "#f57c00"],
  ["--jp-success-color1", "#388e3c"],
  ["--jp-error-color1", "#d32f2f"],
  ["--jp-accent-color1", "#00897b"],
];

// Steps are integers: the x axis ticks at 1, 2, 5, 10, 20, 50, ... steps, never at 2.5.
const STEP_INCREMENTS = [];
for (let m = 1; m <= 1e15; m *= 10) STEP_INCREMENTS.push(m, 2 * m, 5 * m);

function cssVar(name, fallback) {
  return getComputedStyle(document.body).getPropertyValue(name).trim() || fallback;
}

function formatValue(v) {
  if (typeof v !== "number" || !isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) return v.toExponential(3);
  return String(Number(v.toPrecision(4)));
}

// uPlot's aligned data: x = every step any replica has, then one y array per replica (null
// where that replica has no value at that step; spanGaps draws across).
function alignedData(replicas, names) {
  const steps = new Set();
  for (const name of names) for (const [step] of replicas[name]) steps.add(step);
  const xs = Array.from(steps).sort((a, b) => a - b);
  const index = new Map(xs.map((x, i) => [x, i]));
  const ys = names.map((name) => {
    const y = new Array(xs.length).fill(null);
    for (const [step, value] of replicas[name]) y[index.get(step)] = value;
    return y;
  });
  return [xs, ...ys];
}

function element(tag, className, text) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (text !== undefined) el.textContent = text;
  return el;
}

function caption(metric, names, summary, colors) {
  const cap = element("figcaption", "kfj-mc-caption");
  const title = element("div", "kfj-mc-title");
  title.append(element("span", "kfj-mc-name", metric));
  const goal = Object.values(summary)[0]?.goal;
  if (goal) title.append(element("span", "kfj-mc-goal", goal === "max" ? "higher is better" : "lower is better"));
  cap.append(title);
  names.forEach((name, i) => {
    const s = summary[name];
    if (!s || !s.last || s.last.length < 2) return;
    const row = element("div", "kfj-mc-stats");
    row.dataset.replica = name;
    if (names.length > 1) {
      const swatch = element("span", "kfj-mc-swatch");
      swatch.style.background = colors[i];
      row.append(swatch, element("span", "kfj-mc-replica", name));
    }
    const last = element("span", "kfj-mc-last", "last ");
    last.title = `at step ${s.last[0]}`;
    last.append(element("b", "", formatValue(s.last[1])));
    row.append(last);
    if (s.best && s.best.length === 2) {
      const best = element("span", "kfj-mc-best", "best ");
      best.title = `${s.goal === "max" ? "highest" : "lowest"}, at step ${s.best[0]}`;
      best.append(element("b", "", formatValue(s.best[1])), ` @${s.best[0]}`);
      row.append(best);
    }
    cap.append(row);
  });
  return cap;
}

function render({ model, el }) {
  el.classList.add("kfj-metrics-chart");
  const header = element("div", "kfj-mc-header");
  const label = element("span", "kfj-mc-label", "Metrics");
  const state = element("span", "kfj-mc-state");
  header.append(label, state);
  const grid = element("div", "kfj-mc-grid");
  el.append(header, grid);
  // metric -> {figure, plot, shape, captionEl}; shape: the replica names (uPlot's series are fixed)
  const charts = new Map();

  function destroy(metric) {
    const chart = charts.get(metric);
    if (!chart) return;
    chart.plot.destroy();
    chart.figure.remove();
    charts.delete(metric);
  }

  function create(metric, names, data) {
    const figure = element("figure", "kfj-mc-metric");
    figure.dataset.metric = metric;
    const holder = element("div", "kfj-mc-plot");
    const colors = names.map((_, i) => cssVar(...REPLICA_COLORS[i % REPLICA_COLORS.length]));
    const axis = {
      stroke: cssVar("--jp-ui-font-color2", "#757575"),
      grid: { stroke: cssVar("--jp-border-color2", "#e0e0e0"), width: 1 },
      ticks: { stroke: cssVar("--jp-border-color2", "#e0e0e0"), width: 1 },
      font: `10px ${cssVar("--jp-ui-font-family", "sans-serif")}`,
      size: 30,
    };
    const plot = new uPlot(
      {
        width: CHART_WIDTH,
        height: CHART_HEIGHT,
        legend: { show: false },
        cursor: { drag: { x: false, y: false } },
        scales: { x: { time: false } },
        axes: [{ ...axis, incrs: STEP_INCREMENTS }, { ...axis, size: 46 }],
        series: [
          {},
          ...names.map((name, i) => ({
            label: name,
            stroke: colors[i],
            width: 1.5,
            points: { show: (u) => u.data[0].length <= 1 }, // a lone point has no line to show it
            spanGaps: true,
          })),
        ],
      },
      data,
      holder,
    );
    figure.append(element("figcaption"), holder);
    return { figure, plot, shape: names.join("\n"), colors };
  }

  function draw() {
    const series = model.get("series") || {};
    const summary = model.get("summary") || {};
    const live = model.get("live");
    state.textContent = live ? "live" : "ended";
    state.className = `kfj-mc-state kfj-mc-${live ? "live" : "ended"}`;
    for (const metric of Array.from(charts.keys())) if (!(metric in series)) destroy(metric);
    for (const [metric, replicas] of Object.entries(series)) {
      const names = Object.keys(replicas);
      const data = alignedData(replicas, names);
      let chart = charts.get(metric);
      if (chart && chart.shape !== names.join("\n")) {
        destroy(metric);
        chart = undefined;
      }
      if (!chart) {
        chart = create(metric, names, data);
        charts.set(metric, chart);
      } else {
        chart.plot.setData(data);
      }
      const cap = caption(metric, names, summary[metric] || {}, chart.colors);
      chart.figure.replaceChild(cap, chart.figure.firstChild);
      grid.append(chart.figure); // keeps the metrics in the kernel's order
    }
  }

  function redrawAll() {
    // uPlot paints on a canvas with colours read once: a new theme needs new charts.
    for (const metric of Array.from(charts.keys())) destroy(metric);
    draw();
  }

  const theme = new MutationObserver(redrawAll);
  theme.observe(document.body, { attributes: true, attributeFilter: ["data-jp-theme-light", "data-jp-theme-name"] });
  model.on("change:series", draw);
  model.on("change:summary", draw);
  model.on("change:live", draw);
  draw();
  return () => {
    theme.disconnect();
    model.off("change:series", draw);
    model.off("change:summary", draw);
    model.off("change:live", draw);
    for (const metric of Array.from(charts.keys())) destroy(metric);
  };
}

export default { render };
