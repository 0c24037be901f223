// Compare: one chart per metric with a series per run, and a parallel-coordinates plot.
import { chartOf, draw, lineOption, pointsFor } from "./charts.js";
import { getJSON, pageData, showError } from "./common.js";

const data = pageData();

function axis() {
  return { x: document.getElementById("x-axis").value, log: document.getElementById("log-scale").checked };
}

const PARALLEL_REQUESTS = 3;

// One request per metric, a few at a time, each chart drawn as soon as its series arrive.
async function drawCurves() {
  const { x, log } = axis();
  const queue = [...document.querySelectorAll("div.chart[data-metric]")];
  async function worker() {
    for (let node = queue.shift(); node; node = queue.shift()) {
      const name = node.dataset.metric;
      const params = new URLSearchParams({ runs: data.runs.join(","), points: String(pointsFor(node)), x, metric: name });
      const answer = await getJSON(`/ui/api/compare?${params}`);
      draw(node, lineOption(name, answer.metrics[name] || [], { x, log }));
    }
  }
  await Promise.all(Array.from({ length: PARALLEL_REQUESTS }, worker));
}

function drawParallel() {
  const node = document.getElementById("parallel-coordinates");
  const chart = chartOf(node);
  const { axes, lines } = data.parallel;
  node.dataset.axes = String(axes.length);
  if (!chart || !axes.length) return;
  chart.setOption({
    animation: false,
    tooltip: {},
    parallelAxis: axes.map((one) => (one.type === "category" ? { ...one } : { dim: one.dim, name: one.name, type: "value", scale: true })),
    parallel: { left: 60, right: 80, top: 40, bottom: 30 },
    visualMap: colourBy(axes, lines),
    series: [{ type: "parallel", lineStyle: { width: 2, opacity: 0.7 }, data: lines.map((line) => ({ name: line.name, value: line.value })) }],
  });
}

// Lines coloured by the last axis (a metric's last value), so the best runs of a sweep stand out.
function colourBy(axes, lines) {
  const last = axes[axes.length - 1];
  const values = lines.map((line) => line.value[last.dim]).filter((value) => typeof value === "number");
  if (last.type !== "value" || values.length < 2) return undefined;
  return {
    type: "continuous",
    dimension: last.dim,
    min: Math.min(...values),
    max: Math.max(...values),
    right: 0,
    bottom: 20,
    calculable: false,
    inRange: { color: ["#1a9850", "#fee08b", "#d73027"] },
  };
}

function redraw() {
  drawCurves().catch((error) => showError(String(error.message || error)));
}

document.getElementById("x-axis").addEventListener("change", redraw);
document.getElementById("log-scale").addEventListener("change", redraw);
drawParallel();
redraw();
