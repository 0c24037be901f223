"""A run with many series in a real browser: its charts are drawn as they come into view, so a
run with hundreds of metrics opens as fast as one with a few."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from runhistory import Experiment
from tests.ui.browser import UiServer, points_drawn, start_ui_server, wait_for
from tests.ui.conftest import PageWatch

pytestmark = pytest.mark.xdist_group("browser")
SERIES = 120


@pytest.fixture
def many_series(tmp_path: Path) -> Iterator[tuple[UiServer, str]]:
    ui = start_ui_server(tmp_path / "server")
    try:
        run = Experiment(ui.workspace, "wide").start_logging()
        for step in range(50):
            for index in range(SERIES):
                run.log(f"m{index:03d}", step * (index + 1))
        run.complete()
        yield ui, run.id
    finally:
        ui.stop()


def drawn(page) -> int:
    """How many of the page's charts have been drawn."""
    return page.evaluate(
        """() => [...document.querySelectorAll('div.chart[data-metric]')]
             .filter((div) => window.echarts && echarts.getInstanceByDom(div)).length"""
    )


def test_charts_are_drawn_as_they_come_into_view(many_series: tuple[UiServer, str], page, watch: PageWatch) -> None:
    ui, run_id = many_series
    page.goto(f"{ui.url}/runs/{run_id}")
    first = 'div.chart[data-metric="m000"]'
    assert wait_for(lambda: points_drawn(page, first), lambda n: n == 50, what="the first chart") == 50
    assert page.locator("div.chart[data-metric]").count() == SERIES
    assert 0 < drawn(page) < SERIES / 2  # only those in view (and just below it)
    last = f'div.chart[data-metric="m{SERIES - 1:03d}"]'
    assert points_drawn(page, last) == -1
    page.locator(last).scroll_into_view_if_needed()
    assert wait_for(lambda: points_drawn(page, last), lambda n: n == 50, what="the last chart, once in view") == 50
    assert not watch.errors
