"""``make demo``: both reference scenarios end to end in a temporary folder.

Runs ``scenario1_job.py`` as written (a training job on a local compute target, watched
live in TensorBoard; it prints the URL and what TensorBoard showed), then
``scenario2_export.py`` (a scikit-learn sweep exported to TensorBoard), shows its root run
with ``runhistory runs show``, serves ``exportedTBlogs`` with the real TensorBoard, prints
its URL and what it shows (read back from TensorBoard's own HTTP API), starts the web UI
(``runhistory ui``) on the same workspace and prints the sweep as its runs table shows it, sorted
by mse, and keeps both serving until Ctrl-C when run from a terminal.
"""

from __future__ import annotations

import contextlib
import os
import re
import runpy
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

import httpx

from runhistory import Experiment, Workspace
from runhistory.tensorboard import Tensorboard

EXAMPLES = Path(__file__).resolve().parent


def main() -> None:
    """Run the demo."""
    folder = Path(tempfile.mkdtemp(prefix="runhistory-demo-"))
    os.chdir(folder)
    print(f"Demo folder: {folder}")
    print("\n== Scenario 1: a job that writes TensorBoard logs itself, watched live")
    runpy.run_path(str(EXAMPLES / "scenario1_job.py"), run_name="__main__")
    print("\n== Scenario 2: run history of a scikit-learn sweep, exported to TensorBoard")
    runpy.run_path(str(EXAMPLES / "scenario2_export.py"), run_name="__main__")
    root = next(Experiment(Workspace.from_config(), "export-to-tensorboard").get_runs())
    subprocess.run(["runhistory", "runs", "show", f"export-to-tensorboard:{root.number}"], check=True)
    with Tensorboard([], local_root="exportedTBlogs", port=0) as board, web_ui() as ui_url:
        describe(board.url)
        describe_sweep_in_ui(ui_url, root.id)
        if sys.stdin.isatty():
            print(f"\nTensorBoard is serving at {board.url} and the web UI at {ui_url} — press Ctrl-C to stop.")
            try:
                while True:
                    time.sleep(1)
            except KeyboardInterrupt:
                pass


def describe(url: str) -> None:
    """Print what TensorBoard serves: its runs, the root run's curves and the HParams sessions."""
    with httpx.Client(base_url=url, timeout=10) as client:
        runs = _wait_for_runs(client, 8)
        root = min(runs, key=len)
        print(f"\nTensorBoard at {url} shows {len(runs)} runs: {', '.join(sorted(runs))}")
        for tag in ("alpha", "mse"):
            points = client.get("data/plugin/scalars/scalars", params={"run": root, "tag": tag}).json()
            print(f"  {root} / {tag}: {len(points)} points, " + ", ".join(f"{p[2]:.4g}" for p in points))
        body = {
            "experimentName": "",
            "allowedStatuses": ["STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING", "STATUS_UNKNOWN"],
            "colParams": [],
            "startIndex": 0,
            "sliceSize": 100,
        }
        groups = client.post("data/plugin/hparams/session_groups", json=body).json()["sessionGroups"]
        print(f"  HParams: {len(groups)} sessions")
        for group in sorted(groups, key=lambda g: g["hparams"]["alpha"]):
            metrics = {m["name"]["tag"]: m["value"] for m in group["metricValues"]}
            print(f"    alpha={group['hparams']['alpha']:.1f}  mse={metrics['mse']:.2f}")


@contextlib.contextmanager
def web_ui() -> Iterator[str]:
    """``runhistory ui`` over this folder's workspace on a free port; yields its URL."""
    process = subprocess.Popen(["runhistory", "ui", "--port", "0"], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        found = re.search(r"http://\S+/", process.stdout.readline())
        if found is None:
            raise SystemExit("runhistory ui did not start (see its message above)")
        yield found.group(0)
    finally:
        process.terminate()
        process.wait(10)


def describe_sweep_in_ui(url: str, root_id: str) -> None:
    """Print the sweep's child runs as the UI's runs table shows them, best mse first."""
    page = httpx.get(
        f"{url}experiments/export-to-tensorboard",
        params={"parent": root_id, "order_by": "metrics.mse.last asc"},
        timeout=30,
    )
    page.raise_for_status()
    names = re.findall(r'data-key="attributes.display_name"><a href="[^"]+">([^<]+)</a>', page.text)
    print(f"\nThe web UI at {url} shows the sweep's {len(names)} child runs, best mse first: {', '.join(names)}")
    print(f"  {page.url}")


def _wait_for_runs(client: httpx.Client, count: int, timeout: float = 30) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        runs = client.get("data/runs").json()
        if len(runs) >= count or time.monotonic() > deadline:
            return runs
        time.sleep(0.2)


if __name__ == "__main__":
    main()
