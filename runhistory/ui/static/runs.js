// The runs table: filter, sort, columns, paging, tree of children, selection in the URL.
import { getJSON, pageData, postJSON, showError } from "./common.js";

const data = pageData();
const selected = new Set(data.selected || []);

function currentParams() {
  return new URLSearchParams(window.location.search);
}

function navigate(changes) {
  const params = currentParams();
  for (const [key, value] of Object.entries(changes)) {
    if (value === "" || value === null || value === undefined) params.delete(key);
    else params.set(key, value);
  }
  const query = params.toString();
  window.location.href = window.location.pathname + (query ? `?${query}` : "");
}

function applyFilter() {
  navigate({ filter: document.getElementById("filter").value.trim(), page: "" });
}

function sortBy(key) {
  const [current, direction] = (data.order_by || "").split(/ (?=[^ ]+$)/);
  const next = current === key && direction === "asc" ? `${key} desc` : `${key} asc`;
  navigate({ order_by: next, page: "" });
}

function applyColumns() {
  const keys = [...document.querySelectorAll("#column-picker input[type=checkbox][data-key]")]
    .filter((box) => box.checked)
    .map((box) => box.dataset.key);
  navigate({ columns: keys.join(","), page: "" });
}

function withSelection(href) {
  const url = new URL(href, window.location.origin);
  if (selected.size) url.searchParams.set("selected", [...selected].join(","));
  else url.searchParams.delete("selected");
  return url.pathname + url.search;
}

function selectionChanged() {
  const params = currentParams();
  if (selected.size) params.set("selected", [...selected].join(","));
  else params.delete("selected");
  const query = params.toString();
  window.history.replaceState(null, "", window.location.pathname + (query ? `?${query}` : ""));
  document.getElementById("selected-count").textContent = `${selected.size} selected`;
  for (const link of document.querySelectorAll("a#next-page[href], a#prev-page[href]")) {
    link.setAttribute("href", withSelection(link.getAttribute("href")));
  }
}

function onSelect(box) {
  if (box.checked) selected.add(box.dataset.runId);
  else selected.delete(box.dataset.runId);
  selectionChanged();
}

async function toggleChildren(button) {
  const row = button.closest("tr");
  const depth = Number(row.dataset.depth) + 1;
  if (button.getAttribute("aria-expanded") === "true") {
    removeDescendants(row);
    button.setAttribute("aria-expanded", "false");
    button.textContent = "▸";
    return;
  }
  const params = new URLSearchParams({ order_by: data.order_by || "", columns: (data.columns || []).join(","), depth });
  try {
    const answer = await getJSON(`/ui/api/runs/${encodeURIComponent(button.dataset.runId)}/children?${params}`);
    const holder = document.createElement("tbody");
    holder.innerHTML = answer.html; // rendered by the server with every value escaped
    let after = row;
    for (const child of [...holder.children]) {
      const box = child.querySelector("input.select");
      if (box && selected.has(box.dataset.runId)) box.checked = true;
      after.after(child);
      after = child;
    }
    button.setAttribute("aria-expanded", "true");
    button.textContent = "▾";
  } catch (error) {
    showError(String(error.message || error));
  }
}

function removeDescendants(row) {
  const depth = Number(row.dataset.depth);
  let next = row.nextElementSibling;
  while (next && Number(next.dataset.depth) > depth) {
    const gone = next;
    next = next.nextElementSibling;
    gone.remove();
  }
}

async function openTensorboard() {
  if (!selected.size) return showError("Select the runs to open in TensorBoard first.");
  try {
    const answer = await postJSON("/ui/api/tensorboard", { runs: [...selected] });
    window.location.href = answer.url;
  } catch (error) {
    showError(String(error.message || error));
  }
}

async function showCount() {
  // The page leaves a filtered view's count to this request, so that it is shown without waiting for it.
  const info = document.getElementById("page-info");
  if (!info || !info.dataset.countUrl) return;
  try {
    const { count } = await getJSON(info.dataset.countUrl);
    info.textContent = info.textContent.replace("…", String(count));
  } catch (error) {
    info.textContent = info.textContent.replace("…", "?");
  }
}

function compare() {
  if (selected.size < 1) return showError("Select the runs to compare first.");
  window.location.href = `/compare?runs=${[...selected].map(encodeURIComponent).join(",")}`;
}

document.getElementById("apply-filter").addEventListener("click", applyFilter);
document.getElementById("filter").addEventListener("keydown", (event) => {
  if (event.key === "Enter") applyFilter();
});
document.getElementById("apply-columns").addEventListener("click", applyColumns);
document.getElementById("compare").addEventListener("click", compare);
document.getElementById("open-tensorboard").addEventListener("click", openTensorboard);
for (const header of document.querySelectorAll("#runs th[data-key]")) {
  header.addEventListener("click", () => sortBy(header.dataset.key));
}
document.querySelector("#runs tbody").addEventListener("click", (event) => {
  const button = event.target.closest("button.expand");
  if (button) toggleChildren(button);
});
document.querySelector("#runs tbody").addEventListener("change", (event) => {
  if (event.target.matches("input.select")) onSelect(event.target);
});
showCount();
