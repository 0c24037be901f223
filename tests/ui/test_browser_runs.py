"""The runs table in a real browser: scenario 2's sweep, sorted and filtered."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from runhistory import Workspace
from tests.ui.browser import UiProcess, cell_texts
from tests.ui.conftest import SWEEP_ALPHAS, PageWatch, SweepServer, log_sweep

pytestmark = pytest.mark.xdist_group("browser")

NAME, ALPHA, MSE = "attributes.display_name", "metrics.alpha.last", "metrics.mse.last"


def test_the_sweep_shows_its_seven_children_with_alpha_and_mse(sweep_server: SweepServer, page, watch: PageWatch) -> None:
    page.goto(sweep_server.sweep_url())
    rows = page.locator("table#runs tr.run")
    expect(rows).to_have_count(7)
    expect(page.locator(f'table#runs th[data-key="{ALPHA}"]')).to_be_visible()
    expect(page.locator(f'table#runs th[data-key="{MSE}"]')).to_be_visible()
    assert sorted(cell_texts(page, NAME)) == sorted(f"alpha{alpha}" for alpha in SWEEP_ALPHAS)
    shown = dict(zip(cell_texts(page, NAME), cell_texts(page, ALPHA)))
    assert {name: float(value) for name, value in shown.items()} == {f"alpha{a}": a for a in SWEEP_ALPHAS}
    for alpha, run_id in sweep_server.sweep.children.items():
        cell = page.locator(f'table#runs tr.run[data-run-id="{run_id}"] td[data-key="{MSE}"]')
        assert float(cell.inner_text().replace(",", "")) == pytest.approx(sweep_server.sweep.mse[alpha], rel=1e-3)
    assert not watch.errors


def test_sorting_by_mse_puts_alpha_0_4_first(sweep_server: SweepServer, page, watch: PageWatch) -> None:
    mse = sweep_server.sweep.mse
    assert min(mse, key=mse.get) == 0.4  # the sweep's best alpha (scenario 2's data)
    page.goto(sweep_server.sweep_url())
    page.locator(f'table#runs th[data-key="{MSE}"]').click()
    page.wait_for_url(re.compile(r"order_by=metrics\.mse"))
    expect(page.locator(f'table#runs tr.run[data-depth="0"] td[data-key="{NAME}"]').first).to_have_text("alpha0.4")
    in_order = [f"alpha{alpha}" for alpha in sorted(mse, key=mse.get)]
    assert cell_texts(page, NAME) == in_order
    assert "parent=" + sweep_server.sweep.root_id in page.url  # still the sweep's children

    page.locator(f'table#runs th[data-key="{MSE}"]').click()  # again: descending
    page.wait_for_url(re.compile(r"order_by=metrics\.mse[^&]*desc"))
    expect(page.locator(f'table#runs tr.run[data-depth="0"] td[data-key="{NAME}"]').first).to_have_text(in_order[-1])
    assert cell_texts(page, NAME) == in_order[::-1]

    page.goto(page.url)  # the URL alone reproduces the view
    assert cell_texts(page, NAME) == in_order[::-1]
    assert not watch.errors


def test_a_filter_narrows_the_sweep(sweep_server: SweepServer, page, watch: PageWatch) -> None:
    page.goto(sweep_server.sweep_url())
    expect(page.locator("table#runs tr.run")).to_have_count(7)
    page.locator("input#filter").fill("metrics.alpha > 0.35")
    page.locator("input#filter").press("Enter")
    page.wait_for_url(re.compile(r"filter=metrics"))
    expect(page.locator("table#runs tr.run")).to_have_count(4)
    assert sorted(cell_texts(page, NAME)) == ["alpha0.4", "alpha0.5", "alpha0.6", "alpha0.7"]

    page.locator("input#filter").fill('metrics.alpha < 0.25 or tags.nothing = "x"')
    page.locator("button#apply-filter").click()
    expect(page.locator("table#runs tr.run")).to_have_count(2)
    assert sorted(cell_texts(page, NAME)) == ["alpha0.1", "alpha0.2"]

    page.locator("input#filter").fill("metrics.alpha <")
    page.locator("button#apply-filter").click()
    expect(page.locator("#filter-error")).to_contain_text("column")
    assert not watch.errors


def test_the_sweep_keeps_its_nesting_under_a_sort(sweep_server: SweepServer, page, watch: PageWatch) -> None:
    mse = sweep_server.sweep.mse
    root = sweep_server.sweep.root_id
    page.goto(f"{sweep_server.url}/experiments/export-to-tensorboard?order_by=metrics.mse.last+asc")
    expect(page.locator('table#runs tr.run[data-depth="0"]')).to_have_count(1)  # the root alone on top
    page.locator(f'button.expand[data-run-id="{root}"]').click()
    children = page.locator('table#runs tr.run[data-depth="1"]')
    expect(children).to_have_count(7)
    ids = page.locator("table#runs tr.run").evaluate_all("rows => rows.map(row => row.dataset.runId)")
    by_id = {run_id: alpha for alpha, run_id in sweep_server.sweep.children.items()}
    assert ids[0] == root  # the children come right under their parent, sorted by mse
    assert [by_id[run_id] for run_id in ids[1:]] == sorted(mse, key=mse.get)
    assert not watch.errors


def test_runhistory_ui_shows_an_embedded_workspaces_sweep(tmp_path, page, watch: PageWatch) -> None:
    folder = tmp_path / "workspace"
    sweep = log_sweep(Workspace(str(folder)))
    ui = UiProcess(folder, tmp_path / "ui").start()
    try:
        page.goto(ui.url + "/")
        row = page.locator('table#experiments tr[data-experiment="export-to-tensorboard"]')
        expect(row.locator("td.runs")).to_have_text("8")
        row.locator('a[href="/experiments/export-to-tensorboard"]').click()
        page.wait_for_url(re.compile(r"/experiments/export-to-tensorboard"))
        expect(page.locator(f'table#runs tr.run[data-run-id="{sweep.root_id}"]')).to_be_visible()
        page.goto(f"{ui.url}/experiments/export-to-tensorboard?parent={sweep.root_id}")
        expect(page.locator("table#runs tr.run")).to_have_count(7)
        assert not watch.errors
    finally:
        ui.stop()
