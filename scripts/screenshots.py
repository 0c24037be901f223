"""Screenshots of every page of the web UI into ``docs/ui-*.png`` (1280 x 800, Chromium).

    .venv/bin/python scripts/screenshots.py [--out docs]

In a temporary folder: runs ``examples/scenario2_export.py`` (the scikit-learn sweep), logs a
short training run with curves, starts ``runhistory ui`` on that workspace and saves the
experiments page, the sweep's runs sorted by mse with three selected, a run page, compare, the
TensorBoard page opened through the UI, and the sign-in page (``runhistory server
--require-tokens`` on the same workspace).
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
VIEWPORT = {"width": 1280, "height": 800}
SWEEP = "export-to-tensorboard"
CHARTS_DRAWN = """(n) => window.echarts && [...document.querySelectorAll('div.chart[data-metric]')].filter(div => {
  const chart = echarts.getInstanceByDom(div.querySelector('[_echarts_instance_]') || div);
  return chart && (chart.getOption().series || []).length > 0; }).length >= n"""


def make_workspace(folder: Path) -> Path:
    """Scenario 2's sweep and a training run with curves in ``folder/.runhistory``; returns that folder."""
    subprocess.run([sys.executable, str(REPO / "examples" / "scenario2_export.py")], cwd=folder, check=True,
                   stdout=subprocess.DEVNULL)
    from runhistory import Experiment, Workspace

    run = Experiment(Workspace.from_config(folder / ".runhistory"), "training").start_logging(display_name="resnet-small")
    run.tag("model", "resnet18")
    run.add_properties({"lr": "0.01", "batch": "64"})
    for step in range(2000):
        run.log("loss", 2.0 * math.exp(-step / 400) + 0.05 * math.sin(step / 7))
        run.log("accuracy", 1 - 0.9 * math.exp(-step / 500))
    run.complete()
    return folder / ".runhistory"


def free_port() -> int:
    """A loopback TCP port nobody listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start(command: list[str], url: str, log: Path) -> subprocess.Popen:
    """Start a server in its own process group; return once ``url`` answers."""
    process = subprocess.Popen(command, stdout=open(log, "wb"), stderr=subprocess.STDOUT, start_new_session=True)  # noqa: SIM115
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return process
        except OSError:
            time.sleep(0.2)
    stop(process)
    raise RuntimeError(f"{command[2:4]} did not answer at {url}: {log.read_text()[-1500:]}")


def stop(process: subprocess.Popen) -> None:
    """SIGTERM the server's process group, SIGKILL if it lingers."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=15)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def sweep_ids(workspace: Path) -> tuple[str, list[str], str]:
    """The sweep's root run, its children (by mse, best first) and the training run."""
    from runhistory import Workspace
    from runhistory.store.base import RunFilter

    store = Workspace.from_config(workspace).store
    sweep = store.get_experiment(SWEEP)
    root = store.list_runs(RunFilter(experiment_id=sweep.id, top_level_only=True))[0]
    children = store.list_runs(RunFilter(experiment_id=sweep.id, parent_id=root.id, order_by=("metrics.mse asc",)))
    training = store.list_runs(RunFilter(experiment_id=store.get_experiment("training").id))[0]
    return root.id, [run.id for run in children], training.id


def shoot(page: Any, url: str, path: Path, ready: str | None = None, arg: Any = None) -> None:
    """Open ``url``, wait for ``ready(arg)`` (JS) or the network to settle, save a PNG."""
    page.goto(url, wait_until="networkidle")
    if ready:
        page.wait_for_function(ready, arg=arg, timeout=30_000)
    page.wait_for_timeout(500)  # ECharts' entry animation
    page.screenshot(path=str(path))
    print(f"saved {path.relative_to(REPO) if path.is_relative_to(REPO) else path}")


def shoot_ui(page: Any, url: str, workspace: Path, out: Path) -> None:
    """The pages of ``runhistory ui``: experiments, runs, a run, compare, TensorBoard."""
    root, children, training = sweep_ids(workspace)
    shoot(page, url + "/", out / "ui-experiments.png", "() => !!document.querySelector('table#experiments')")
    query = urllib.parse.urlencode({"parent": root, "order_by": "metrics.mse.last asc", "selected": ",".join(children[:3])})
    shoot(page, f"{url}/experiments/{SWEEP}?{query}", out / "ui-runs.png", "() => !!document.querySelector('tr.run')")
    shoot(page, f"{url}/runs/{training}", out / "ui-run.png", CHARTS_DRAWN, 2)
    shoot(page, f"{url}/compare?runs={','.join(children)}", out / "ui-compare.png", CHARTS_DRAWN, 1)
    page.goto(f"{url}/experiments/{SWEEP}?{query}", wait_until="networkidle")
    page.click("button#open-tensorboard")
    page.wait_for_url("**/tensorboard/**", timeout=60_000)
    page.wait_for_load_state("networkidle", timeout=60_000)
    page.wait_for_timeout(4000)  # TensorBoard draws its cards after its own requests
    toggle = page.locator("button", has_text="Settings")
    if toggle.count() and page.get_by_text("Horizontal Axis").count():  # the settings pane TensorBoard opens on a wide window
        toggle.first.click()
        page.wait_for_timeout(500)
    page.screenshot(path=str(out / "ui-tensorboard.png"))
    print(f"saved {out / 'ui-tensorboard.png'}")


def shoot_signin(page: Any, workspace: Path, folder: Path, out: Path) -> None:
    """The sign-in page of ``runhistory server --require-tokens`` on the same workspace."""
    port = free_port()
    command = [sys.executable, "-m", "runhistory.cli.main", "server", "--workspace", str(workspace), "--port", str(port),
               "--require-tokens"]
    server = start(command, f"http://127.0.0.1:{port}/api/v1/health", folder / "server.log")
    try:
        shoot(page, f"http://127.0.0.1:{port}/", out / "ui-signin.png", "() => !!document.querySelector('#token')")
    finally:
        stop(server)


def main() -> None:
    """Make the workspace, serve it, save the screenshots."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO / "docs", help="the folder of the PNGs (default docs/)")
    out = parser.parse_args().out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="rh-screenshots-") as scratch:
        folder = Path(scratch)
        workspace = make_workspace(folder)
        port = free_port()
        command = [sys.executable, "-m", "runhistory.cli.main", "ui", "--workspace", str(workspace), "--port", str(port)]
        ui = start(command, f"http://127.0.0.1:{port}/api/v1/health", folder / "ui.log")
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
                page = browser.new_context(viewport=VIEWPORT).new_page()
                shoot_ui(page, f"http://127.0.0.1:{port}", workspace, out)
                shoot_signin(page, workspace, folder, out)
                browser.close()
        finally:
            stop(ui)


if __name__ == "__main__":
    main()
