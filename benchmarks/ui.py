"""The web UI: runhistory's pages against MLflow's UI on the same data, timed in a real browser.

    .venv/bin/python benchmarks/ui.py                  # 10,000 runs, 1M-point series, 10 x 10 x 100k compare
    .venv/bin/python benchmarks/ui.py --quick          # small data, a smoke run
    .venv/bin/python benchmarks/ui.py --skip-mlflow    # runhistory only
    .venv/bin/python benchmarks/ui.py --rebuild        # load the data again (cached under .bench/ui/)

The data (see ``benchmarks/ui_data.py``) is loaded once into an embedded runhistory workspace
and an MLflow SQLite database and reused. Each system's UI runs as its own server process
(``runhistory ui --workspace ...``; ``mlflow server --backend-store-uri sqlite:///...``, from
``.bench/mlflow-venv``). Chromium (``/usr/bin/chromium``, through Playwright) opens each view and
the clock stops when the view shows what it must (the expected run in the first row, the chart
drawn with its series). One unmeasured load per system first warms the browser's cache of the
static files; then the median of ``--repeat`` loads. Server time: the HTTP time of the page
request (runhistory's pages are rendered on the server; MLflow's table comes from ``runs/search``).
"""

from __future__ import annotations

import os
import sys

sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != os.path.dirname(os.path.abspath(__file__))]
sys.path.append(os.path.dirname(os.path.abspath(__file__)))

import argparse  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import time  # noqa: E402
import urllib.parse  # noqa: E402
import urllib.request  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Callable  # noqa: E402

import _common as c  # noqa: E402
import ui_data as d  # noqa: E402

SCRIPT = Path(__file__).resolve()
DATA_ROOT = c.BENCH_STATE_DIR / "ui"
CHROMIUM = "/usr/bin/chromium"
VIEWPORT = {"width": 1280, "height": 800}
TARGETS = {"first page": 1.0, "sorted": 0.5, "filtered": 0.5, "sort (server)": 0.2, "filter (server)": 0.2,
           "1M series": 1.0, "compare": 2.0}

NOTES = (
    "Browser figures: from navigation until the view shows what it must (the expected run in the first row of "
    "the table; every chart in view drawn with all its series); warm browser cache, median of 3.",
    "runhistory's runs page shows 50 runs a page, server-rendered; MLflow's fetches 100 (runs/search) and renders them.",
    "Server figures: the HTTP time of runhistory's page; of MLflow's runs/search as its UI sends it (after one "
    "unmeasured request of each).",
    "1M series: runhistory /runs/ID (downsampled on the server to <= 2,000 points, min/max per bucket); MLflow's "
    "run page (Model metrics), which asks get-history-bulk-interval for 320 sampled points.",
    "compare: runhistory /compare (10 charts x 10 runs, parallel coordinates, differences); MLflow's runs page in "
    "chart mode (its compare-runs page draws no curves): the 6 charts in view, each with the 10 runs.",
)

# --- workers (MLflow's runs in its venv) ---------------------------------------------------------


def ml_load(db: str, artifacts: str, runs: int, long_points: int, compare_points: int) -> dict[str, Any]:
    """Load the data into MLflow (a worker in MLflow's venv)."""
    return d.load_mlflow(db, artifacts, runs, long_points, compare_points)


# --- data ------------------------------------------------------------------------------------


def sizes(args: argparse.Namespace) -> dict[str, int]:
    if args.quick:
        return {"runs": args.runs or 300, "long_points": 20_000, "compare_points": 2_000}
    return {"runs": args.runs or 10_000, "long_points": 1_000_000, "compare_points": 100_000}


def data_dir(size: dict[str, int]) -> Path:
    return DATA_ROOT / f"runs{size['runs']}-long{size['long_points']}-cmp{size['compare_points']}"


def ensure_runhistory(folder: Path, size: dict[str, int], rebuild: bool) -> dict[str, Any]:
    """The runhistory workspace of this size (loaded unless cached) and what was loaded."""
    manifest = folder / "runhistory.json"
    if manifest.exists() and not rebuild:
        c.progress(f"reusing runhistory data in {folder / 'rh'}")
        return json.loads(manifest.read_text())
    shutil.rmtree(folder / "rh", ignore_errors=True)
    manifest.unlink(missing_ok=True)
    folder.mkdir(parents=True, exist_ok=True)
    c.progress(f"loading runhistory: {size}")
    loaded = d.load_runhistory(str(folder / "rh"), **size)
    c.progress(f"runhistory loaded in {loaded['seconds']:.1f} s")
    d.dump(manifest, loaded)
    return loaded


def ensure_mlflow(folder: Path, size: dict[str, int], rebuild: bool) -> dict[str, Any]:
    """The MLflow database of this size (loaded unless cached) and what was loaded."""
    manifest = folder / "mlflow.json"
    if manifest.exists() and not rebuild:
        c.progress(f"reusing MLflow data in {folder / 'mlflow.db'}")
        return json.loads(manifest.read_text())
    for stale in ("mlflow.db", "mlflow.db-wal", "mlflow.db-shm"):
        (folder / stale).unlink(missing_ok=True)
    manifest.unlink(missing_ok=True)
    folder.mkdir(parents=True, exist_ok=True)
    c.progress(f"loading MLflow: {size}")
    args = {"db": str(folder / "mlflow.db"), "artifacts": str(folder / "mlflow-artifacts"), **size}
    loaded = c.run_worker(SCRIPT, "ml_load", args, python=c.mlflow_python(), cwd=str(folder))
    c.progress(f"MLflow loaded in {loaded['seconds']:.1f} s")
    d.dump(manifest, loaded)
    return loaded


# --- servers ---------------------------------------------------------------------------------


def start_runhistory_ui(folder: Path, log: Path) -> tuple[Any, str]:
    port = c.free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "runhistory.cli.main", "ui", "--workspace", str(folder / "rh"), "--port", str(port)]
    return c.start_server(command, f"{url}/api/v1/health", log), url


def start_mlflow_ui(folder: Path, log: Path) -> tuple[Any, str]:
    port = c.free_port()
    url = f"http://127.0.0.1:{port}"
    mlflow = Path(c.mlflow_python()).parent / "mlflow"
    command = [str(mlflow), "server", "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
               "--default-artifact-root", str(folder / "mlflow-artifacts"), "--host", "127.0.0.1", "--port", str(port),
               "--workers", "1"]
    return c.start_server(command, f"{url}/health", log), url


def http_seconds(url: str) -> float:
    """The time of one GET of ``url`` (the whole body read)."""
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=120) as response:
        response.read()
    return time.perf_counter() - started


def http_post_seconds(url: str, body: dict[str, Any]) -> float:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=120) as response:
        response.read()
    return time.perf_counter() - started


# --- browser timing ----------------------------------------------------------------------------


class Browser:
    """One Chromium with one page; ``time_view`` loads a URL and waits for a condition."""

    def __init__(self, timeout_s: float) -> None:
        from playwright.sync_api import sync_playwright

        self.timeout_s = timeout_s
        self._playwright = sync_playwright().start()
        self._browser = self._playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        self._context = self._browser.new_context(viewport=VIEWPORT)
        self.page = self._context.new_page()

    def time_view(self, url: str, ready_js: str, arg: Any = None, before: Callable[[Any], None] | None = None) -> float | None:
        """Seconds from navigating to ``url`` until ``ready_js(arg)`` is true; None after the timeout.

        ``before(page)`` runs first, untimed (e.g. open a page whose header is then clicked: then
        ``url`` is None and the click is what is timed, through ``arg``'s ``click`` selector).
        """
        from playwright.sync_api import Error as PlaywrightError

        page = self.page
        page.goto("about:blank")
        if before is not None:
            before(page)
        started = time.perf_counter()
        try:
            if url is not None:
                page.goto(url, wait_until="commit", timeout=self.timeout_s * 1000)
            page.wait_for_function(ready_js, arg=arg, timeout=self.timeout_s * 1000, polling=10)
        except PlaywrightError as exc:
            c.progress(f"  not ready in {self.timeout_s:g} s: {url} ({str(exc).splitlines()[0][:160]})")
            return None
        return time.perf_counter() - started

    def close(self) -> None:
        self._context.close()
        self._browser.close()
        self._playwright.stop()


def median_or_none(samples: list[float | None]) -> float | None:
    """The median, a sample that did not finish counting as endless: None when most did not finish."""
    ordered = sorted(samples, key=lambda s: float("inf") if s is None else s)
    return ordered[(len(ordered) - 1) // 2] if ordered else None  # the lower median: no mean with an endless one


def repeat(times: int, measure: Callable[[], float | None], label: str) -> float | None:
    """The median of ``times`` measurements; stops early once most of them cannot finish."""
    samples: list[float | None] = []
    for _ in range(times):
        samples.append(measure())
        if sum(s is None for s in samples) > times // 2:
            break
    c.progress(f"{label}: " + ", ".join(c.fmt_seconds(s) if s is not None else "timeout" for s in samples))
    return median_or_none(samples)


# --- what "ready" means on each page -------------------------------------------------------

RH_FIRST_ROW = """(id) => { const r = document.querySelector('table#runs tr.run'); return !!r && r.dataset.runId === id; }"""
RH_CHARTS = """([n, series]) => {
  if (!window.echarts) return false;
  const charts = [...document.querySelectorAll('div.chart[data-metric]')];
  if (charts.length < n) return false;
  return charts.every(div => { const chart = echarts.getInstanceByDom(div.querySelector('[_echarts_instance_]') || div);
    if (!chart) return false; const opt = chart.getOption(); return opt && opt.series && opt.series.length >= series
      && opt.series.every(s => s.data && s.data.length > 0); });
}"""
ML_FIRST_ROW = """(name) => {
  const cells = [...document.querySelectorAll('.ag-row[row-index="0"]')];
  return cells.some(r => r.innerText.includes(name));
}"""
ML_PLOTS = """([plots, traces]) => {
  const drawn = [...document.querySelectorAll('.js-plotly-plot')].filter(plot =>
    [...plot.querySelectorAll('.scatterlayer .trace')].filter(t =>
      [...t.querySelectorAll('path.js-line')].some(p => (p.getAttribute('d') || '').length > 100)).length >= traces);
  return drawn.length >= plots;
}"""



# --- the views -------------------------------------------------------------------------------


def rh_views(url: str, rh: dict[str, Any], runs: int) -> dict[str, tuple[str, str, Any]]:
    """{view: (URL, ready condition, its argument)} of runhistory's pages."""
    want = d.expectations(runs)
    ids = rh["ids"]
    table = f"{url}/experiments/{d.TABLE_EXPERIMENT}"
    return {
        "first page": (table, RH_FIRST_ROW, ids[want["newest"]]),
        "sorted": (f"{table}?{urllib.parse.urlencode({'order_by': 'metrics.m0.last asc'})}", RH_FIRST_ROW, ids[want["sorted_first"]]),
        "filtered": (f"{table}?{urllib.parse.urlencode({'filter': d.FILTER})}", RH_FIRST_ROW, ids[want["filtered_first"]]),
        "1M series": (f"{url}/runs/{rh['long_run']}", RH_CHARTS, [1, 1]),
        "compare": (f"{url}/compare?runs={','.join(rh['compare_runs'])}", RH_CHARTS, [len(d.COMPARE_METRICS), d.COMPARE_RUNS]),
    }


def ml_views(url: str, ml: dict[str, Any], runs: int) -> dict[str, tuple[str, str, Any]]:
    """The same views in MLflow's UI: its runs page (URL search params), run page, chart view of the 10 runs."""
    want = d.expectations(runs)
    exps = ml["experiments"]
    table = f"{url}/#/experiments/{exps[d.TABLE_EXPERIMENT]}/runs"
    sort = urllib.parse.urlencode({"orderByKey": "metrics.`m0`", "orderByAsc": "true"}, quote_via=urllib.parse.quote)
    search = urllib.parse.urlencode({"searchFilter": d.FILTER}, quote_via=urllib.parse.quote)
    return {
        "first page": (table, ML_FIRST_ROW, want["newest"]),
        "sorted": (f"{table}?{sort}", ML_FIRST_ROW, want["sorted_first"]),
        "filtered": (f"{table}?{search}", ML_FIRST_ROW, want["filtered_first"]),
        "1M series": (f"{url}/#/experiments/{exps[d.LONG_EXPERIMENT]}/runs/{ml['long_run']}/model-metrics", ML_PLOTS, [1, 1]),
        # MLflow's compare-runs page draws no curves; its runs page in chart mode overlays them (the
        # charts in view: 6 of the 10 metrics at 1280 x 800, each with the 10 runs).
        "compare": (f"{url}/#/experiments/{exps[d.COMPARE_EXPERIMENT]}/runs?compareRunsMode=CHART", ML_PLOTS, [6, d.COMPARE_RUNS]),
    }


def warm_median(times: int, request: Callable[..., float], *args: Any) -> float:
    """The median of ``times`` timed requests after one unmeasured one (a server's first request
    of a kind also pays for its caches, templates and query plans)."""
    request(*args)
    return c.median([request(*args) for _ in range(times)])


def rh_server_times(url: str, rh: dict[str, Any], runs: int, times: int) -> dict[str, float]:
    views = rh_views(url, rh, runs)
    pairs = {"sort (server)": "sorted", "filter (server)": "filtered"}
    return {label: warm_median(times, http_seconds, views[name][0]) for label, name in pairs.items()}


def ml_server_times(url: str, ml: dict[str, Any], times: int) -> dict[str, float]:
    """MLflow's runs/search as its UI sends it for the sorted and the filtered view."""
    search = f"{url}/ajax-api/2.0/mlflow/runs/search"
    base = {"experiment_ids": [ml["experiments"][d.TABLE_EXPERIMENT]], "run_view_type": "ACTIVE_ONLY", "max_results": 100}
    bodies = {
        "sort (server)": {**base, "order_by": ["metrics.`m0` ASC"]},
        "filter (server)": {**base, "filter": d.FILTER, "order_by": ["attributes.start_time DESC"]},
    }
    return {name: warm_median(times, http_post_seconds, search, body) for name, body in bodies.items()}


def time_system(browser: Browser, views: dict[str, tuple[str, str, Any]], times: int, label: str) -> dict[str, float | None]:
    """Median seconds of each view (None: did not finish); one unmeasured load of the first page first."""
    first_url, first_ready, first_arg = views["first page"]
    browser.time_view(first_url, first_ready, first_arg)
    found: dict[str, float | None] = {}
    for name, (url, ready, arg) in views.items():
        found[name] = repeat(times, lambda: browser.time_view(url, ready, arg), f"{label}: {name}")
    return found


def measure(args: argparse.Namespace, size: dict[str, int], folder: Path, system: str, loaded: dict[str, Any]) -> dict[str, float | None]:
    """Start one system's UI server, time its views in Chromium, stop it."""
    log = folder / f"{system}-server.log"
    process, url = (start_runhistory_ui if system == "runhistory" else start_mlflow_ui)(folder, log)
    browser = Browser(args.timeout)
    try:
        views = (rh_views if system == "runhistory" else ml_views)(url, loaded, size["runs"])
        # Server times first: later, MLflow may still be busy with a view that timed out.
        if system == "runhistory":
            found = rh_server_times(url, loaded, size["runs"], args.repeat)
        else:
            found = ml_server_times(url, loaded, args.repeat)
        found.update(time_system(browser, views, args.repeat, system))
    finally:
        browser.close()
        c.stop_server(process)
    return found


def report(size: dict[str, int], rh: dict[str, float | None], ml: dict[str, float | None] | None, loads: dict[str, float], timeout: float) -> None:
    title = (f"Web UI, Chromium at 1280 x 800: {size['runs']:,} runs x 10 metrics x 5 tags; a {size['long_points']:,}-point "
             f"series; compare of 10 runs x 10 metrics x {size['compare_points']:,} points (median seconds)")
    table = c.Table(title, ["View", "runhistory", "MLflow", "MLflow / runhistory", "target", "runhistory meets it"])
    for name, target in TARGETS.items():
        mine = rh.get(name)
        theirs = None if ml is None else ml.get(name)
        if ml is None:
            other = "skipped"
        else:
            other = c.fmt_seconds(theirs) if theirs is not None else f"did not finish in {timeout:g} s"
        ratio = c.fmt_ratio(theirs / mine) if mine and theirs else ""
        meets = "" if mine is None else ("yes" if mine <= target else "no")
        table.add(name, c.fmt_seconds(mine) or f"did not finish in {timeout:g} s", other, ratio, f"<= {target:g} s", meets)
    c.print_table(table)
    for note in NOTES:
        print(f"- {note}")
    print("Loading: " + "; ".join(f"{name} {seconds:.1f} s" for name, seconds in loads.items()))


# --- main ------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=None, help="runs in the table experiment (default 10,000; 300 with --quick)")
    parser.add_argument("--quick", action="store_true", help="small data: a smoke run")
    parser.add_argument("--skip-mlflow", action="store_true", help="time runhistory only")
    parser.add_argument("--rebuild", action="store_true", help="load the data again even if cached")
    parser.add_argument("--load-only", action="store_true", help="load (or check) the data, time nothing")
    parser.add_argument("--repeat", type=int, default=3, help="loads per view (the median is reported)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds a view may take before it counts as not finished")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    size = sizes(args)
    folder = data_dir(size)
    ml = None if args.skip_mlflow else ensure_mlflow(folder, size, args.rebuild)
    rh = ensure_runhistory(folder, size, args.rebuild)
    if args.load_only:
        return
    loads = {"runhistory": rh["seconds"], **({"MLflow": ml["seconds"]} if ml else {})}
    rh_times = measure(args, size, folder, "runhistory", rh)
    ml_times = None if ml is None else measure(args, size, folder, "mlflow", ml)
    report(size, rh_times, ml_times, loads, args.timeout)


if __name__ == "__main__" and not c.worker_main(globals()):
    main()
