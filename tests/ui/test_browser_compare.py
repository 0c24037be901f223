"""Compare and Open in TensorBoard in a real browser, from the sweep's runs table."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.ui.browser import chart_option, series_count, wait_for
from tests.ui.conftest import SWEEP_ALPHAS, PageWatch, SweepServer

pytestmark = pytest.mark.xdist_group("browser")


def select_runs(page, run_ids) -> None:
    """Tick the rows of ``run_ids`` in the runs table."""
    for run_id in run_ids:
        page.locator(f'input.select[data-run-id="{run_id}"]').check()
    expect(page.locator("#selected-count")).to_contain_text(str(len(run_ids)))


def test_compare_of_the_seven_draws_seven_curves_per_metric_and_a_parallel_plot(
    sweep_server: SweepServer, page, watch: PageWatch
) -> None:
    children = sweep_server.sweep.children
    page.goto(sweep_server.sweep_url())
    select_runs(page, list(children.values()))
    page.locator("button#compare").click()
    page.wait_for_url(re.compile(r"/compare\?runs="))
    assert set(page.url.split("runs=", 1)[1].split("&")[0].replace("%2C", ",").split(",")) == set(children.values())
    for metric in ("alpha", "mse"):
        selector = f'div.chart[data-metric="{metric}"]'
        expect(page.locator(selector)).to_be_visible()
        wait_for(lambda: series_count(page, selector), lambda count: count == 7, what=f"the {metric} chart's series")

    parallel = wait_for(lambda: chart_option(page, "#parallel-coordinates"), lambda option: bool(option and option["series"]),
                        what="the parallel-coordinates plot")
    assert parallel["series"][0]["type"] == "parallel"
    assert len(parallel["series"][0]["data"]) == 7  # one line per run
    axes = " ".join(str(axis.get("name", "")) for axis in parallel["parallelAxis"])
    assert "alpha" in axes and "mse" in axes
    differences = page.locator("table#differences").inner_text()
    assert "mse" in differences and "alpha" in differences
    assert not watch.errors


def test_open_in_tensorboard_serves_the_selected_runs(sweep_server: SweepServer, page, watch: PageWatch) -> None:
    chosen = [SWEEP_ALPHAS[0], SWEEP_ALPHAS[3]]
    page.goto(sweep_server.sweep_url())
    select_runs(page, [sweep_server.sweep.children[alpha] for alpha in chosen])
    page.locator("button#open-tensorboard").click()
    page.wait_for_url(re.compile(r"/tensorboard/[^/]+/"), timeout=90_000)
    base = re.match(r"(.*/tensorboard/[^/]+/)", page.url).group(1)
    expect(page).to_have_title(re.compile("TensorBoard"))

    def run_names() -> list[str]:
        answer = page.request.get(base + "data/runs")
        return answer.json() if answer.ok else []

    names = wait_for(run_names, lambda names: len(names) == 2, timeout=60, what="TensorBoard's runs")
    assert sorted(name.split("-")[0] for name in names) == [f"alpha{alpha}" for alpha in chosen]
    for name in names:
        points = page.request.get(base + "data/plugin/scalars/scalars", params={"run": name, "tag": "mse"}).json()
        assert len(points) == 1 and 3000 < points[0][2] < 4000
