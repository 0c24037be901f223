// ECharts helpers: one line chart per metric (canvas, no animation; the server downsamples).

const charts = new Map();

export function echartsReady() {
  return typeof window.echarts !== "undefined";
}

export function chartOf(node) {
  let chart = charts.get(node);
  if (!chart && echartsReady()) {
    chart = window.echarts.init(node, null, { renderer: "canvas" });
    charts.set(node, chart);
  }
  return chart;
}

// Points to ask the server for: two per pixel across (a min and a max per bucket), at most 4000.
export function pointsFor(node) {
  return Math.max(200, Math.min(4000, Math.round((node.clientWidth || 800) * 2)));
}

export function lineOption(name, series, { x = "step", log = false } = {}) {
  return {
    animation: false,
    grid: { left: 60, right: 20, top: 30, bottom: 40 },
    tooltip: { trigger: "axis" },
    legend: series.length > 1 ? { type: "scroll", top: 0 } : { show: false },
    xAxis: x === "time" ? { type: "time" } : { type: "value", name: "step", scale: true },
    yAxis: { type: log ? "log" : "value", scale: true },
    series: series.map((one) => ({
      name: one.label || name,
      type: "line",
      showSymbol: one.x.length < 50, // a few points (a sweep's child) would be invisible as bare lines
      large: false,
      sampling: undefined,
      data: one.x.map((value, i) => [x === "time" ? value * 1000 : value, log && one.y[i] <= 0 ? null : one.y[i]]),
    })),
  };
}

export function draw(node, option) {
  const chart = chartOf(node);
  if (chart) chart.setOption(option, true);
  node.dataset.drawn = String(option.series ? option.series.length : 0);
}

window.addEventListener("resize", () => charts.forEach((chart) => chart.resize()));
