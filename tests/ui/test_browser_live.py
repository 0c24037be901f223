"""A running job's page in a real browser: its chart and its driver log grow while the page is open."""

from __future__ import annotations

import tempfile
import textwrap
from pathlib import Path
from typing import Iterator

import pytest
from playwright.sync_api import expect

from runhistory import Experiment, ScriptRunConfig
from runhistory.compute import ComputeTarget, LocalCompute
from tests.ui.browser import UiServer, points_drawn, start_ui_server, wait_for
from tests.ui.conftest import PageWatch

pytestmark = pytest.mark.xdist_group("browser")

# Logs a point and prints a line every 0.3 s for up to a minute (the test cancels it sooner).
JOB = """
    import time
    from runhistory import Run
    run = Run.get_context()
    for step in range(200):
        run.log("loss", 1.0 / (step + 1))
        print(f"epoch {step}: loss {1.0 / (step + 1):.4f}", flush=True)
        time.sleep(0.3)
"""


@pytest.fixture
def live_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[UiServer]:
    """A server over a workspace with a local target whose job folders are in the test's folder."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    ui = start_ui_server(tmp_path / "server")
    try:
        yield ui
    finally:
        ui.stop()


def test_a_running_jobs_chart_and_log_grow_while_the_page_is_open(live_server: UiServer, page, watch: PageWatch, tmp_path: Path) -> None:
    ws = live_server.workspace
    target = ComputeTarget.create(ws, "here", LocalCompute.provisioning_configuration(working_directory=str(tmp_path / "jobs")))
    source = tmp_path / "project"
    source.mkdir()
    (source / "job.py").write_text(textwrap.dedent(JOB))
    run = Experiment(ws, "live").submit(ScriptRunConfig(source, "job.py", [], compute_target=target))
    try:
        wait_for(lambda: run.get_status(), lambda status: status == "Running", timeout=60, what="the job's status")
        wait_for(lambda: len(run.get_metrics().get("loss", [])), lambda n: n >= 2, timeout=60, what="the job's first points")
        page.goto(f"{live_server.url}/runs/{run.id}")
        expect(page.locator("#run-status")).to_contain_text("Running")

        chart = 'div.chart[data-metric="loss"]'
        first = wait_for(lambda: points_drawn(page, chart), lambda n: n >= 1, what="the loss chart")
        wait_for(lambda: points_drawn(page, chart), lambda n: n >= first + 3, timeout=45, what="the loss chart growing")

        log = page.locator("pre#driver-log")
        first_log = wait_for(lambda: log.inner_text(), lambda text: "epoch" in text, timeout=45, what="the driver log")
        wait_for(lambda: log.inner_text(), lambda text: text.count("epoch") > first_log.count("epoch") + 2,
                 timeout=45, what="the driver log growing")
        assert not watch.errors
    finally:
        run.cancel()
        run.wait_for_completion(timeout=60, raise_on_error=False)
    expect(page.locator("#run-status")).not_to_contain_text("Running", timeout=45_000)
