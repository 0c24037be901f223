// A run's page: metric charts (live while the run is open), status, driver log, cancel.
import { draw, lineOption, pointsFor } from "./charts.js";
import { getJSON, pageData, postJSON, showError } from "./common.js";

const data = pageData();
const runUrl = `/ui/api/runs/${encodeURIComponent(data.run_id)}`;
const counts = new Map();
let logOffset = 0;
let open = data.open;
const POLL_MS = 2000;

function axis() {
  return { x: document.getElementById("x-axis").value, log: document.getElementById("log-scale").checked };
}

const drawing = new Set();

async function drawMetric(node) {
  if (drawing.has(node)) return; // one read at a time per chart; the next poll catches up
  drawing.add(node);
  try {
    const name = node.dataset.metric;
    const { x, log } = axis();
    const series = await getJSON(`${runUrl}/metrics/${encodeURIComponent(name)}?points=${pointsFor(node)}&x=${x}`);
    counts.set(name, series.count);
    node.dataset.count = String(series.count);
    draw(node, lineOption(name, [series], { x, log }));
  } finally {
    drawing.delete(node);
  }
}

// Charts are drawn when they come into view (a run may have thousands of series): one shown now
// is drawn again as its count changes; one out of view is only marked stale, drawn when seen.
const shown = new Set();
const stale = new Set();
const observer = new IntersectionObserver(
  (entries) => {
    for (const entry of entries) {
      if (!entry.isIntersecting) {
        shown.delete(entry.target);
        continue;
      }
      shown.add(entry.target);
      if (stale.delete(entry.target)) drawMetric(entry.target).catch(report);
    }
  },
  { rootMargin: "300px" },
);

function watchChart(node) {
  stale.add(node);
  observer.observe(node);
}

function redraw(node) {
  if (shown.has(node)) return drawMetric(node).catch(report);
  stale.add(node);
  return Promise.resolve();
}

function drawAll() {
  return Promise.all([...document.querySelectorAll("div.chart[data-metric]")].map(redraw));
}

function addChart(name) {
  const figure = document.createElement("figure");
  figure.className = "chart-box";
  const caption = document.createElement("figcaption");
  caption.textContent = name;
  const node = document.createElement("div");
  node.className = "chart";
  node.dataset.metric = name;
  figure.append(caption, node);
  document.getElementById("charts").append(figure);
  return node;
}

function report(error) {
  showError(String(error.message || error));
}

function showTime(id, seconds) {
  const node = document.getElementById(id);
  if (node && seconds != null && !node.textContent.trim()) node.textContent = new Date(seconds * 1000).toLocaleString();
}

function formatDuration(seconds) {
  if (seconds < 60) return `${seconds.toFixed(1)}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m ${String(Math.floor(seconds % 60)).padStart(2, "0")}s`;
  return `${Math.floor(minutes / 60)}h ${String(minutes % 60).padStart(2, "0")}m`;
}

async function followLog() {
  const answer = await getJSON(`${runUrl}/log?offset=${logOffset}`);
  if (answer.text) {
    const log = document.getElementById("driver-log");
    log.append(document.createTextNode(answer.text));
    log.scrollTop = log.scrollHeight;
  }
  logOffset = answer.offset;
  return answer.text.length > 0;
}

async function poll() {
  const state = await getJSON(runUrl);
  const status = document.getElementById("run-status");
  status.textContent = state.status;
  status.dataset.status = state.status;
  showTime("run-start", state.start_time);
  showTime("run-end", state.end_time);
  document.getElementById("run-duration").textContent = state.duration == null ? "" : formatDuration(state.duration);
  const charted = new Set(data.metrics || []);
  for (const [name, count] of Object.entries(state.metrics)) {
    let node = document.querySelector(`div.chart[data-metric="${CSS.escape(name)}"]`);
    if (!node && !charted.has(name) && count > 0) {
      // a metric that appeared since the page was rendered: chart it when it is numeric
      const series = await getJSON(`${runUrl}/metrics/${encodeURIComponent(name)}?points=4`).catch(() => null);
      if (!series || series.text) continue;
      node = addChart(name);
      charted.add(name);
      watchChart(node);
    }
    if (node && counts.get(name) !== count) await redraw(node);
  }
  data.metrics = [...charted];
  let more = true;
  while (more) more = await followLog();
  if (!state.open) {
    open = false;
    document.getElementById("cancel-run")?.remove();
  }
}

async function loop() {
  try {
    await poll();
  } catch (error) {
    report(error);
  }
  if (open) window.setTimeout(loop, POLL_MS);
}

document.getElementById("x-axis").addEventListener("change", drawAll);
document.getElementById("log-scale").addEventListener("change", drawAll);
document.getElementById("cancel-run")?.addEventListener("click", async (event) => {
  try {
    const answer = await postJSON(`${runUrl}/cancel`, {});
    document.getElementById("run-status").textContent = answer.status;
    event.target.disabled = true;
  } catch (error) {
    report(error);
  }
});

for (const node of document.querySelectorAll("div.chart[data-metric]")) watchChart(node);
loop();
