"""The UI's pages and their JSON over real HTTP: experiments, runs table, run, compare, escaping."""

from __future__ import annotations

import io
import json
import re
from html import unescape

import pytest

from runhistory import Experiment, Workspace
from runhistory.watch import DRIVER_LOG

from tests.ui.conftest import log_curves, log_sweep
from tests.helpers import served
from tests.ui.pages_support import client, ui_app_for

XSS = "<script>alert(1)</script>"


def run_ids_in(html: str) -> list[str]:
    """The ``data-run-id`` of each ``tr.run`` row, in order."""
    return re.findall(r'<tr class="run[^"]*" data-run-id="([^"]+)"', html)


def page_data(html: str) -> dict:
    """The page's ``#page-data`` JSON."""
    found = re.search(r'<script type="application/json" id="page-data">(.*?)</script>', html, re.S)
    assert found
    return json.loads(found.group(1))


@pytest.fixture
def http(embedded: Workspace):
    with served(ui_app_for(embedded)) as url, client(url) as session:
        yield session


def test_experiments_page_counts_runs_and_running(embedded: Workspace, http) -> None:
    log_curves(embedded, "curves", ("a", "b"))
    open_run = Experiment(embedded, "curves").start_logging(display_name="open")
    page = http.get("/")
    assert page.status_code == 200
    row = re.search(r'<tr data-experiment="curves">(.*?)</tr>', page.text, re.S).group(1)
    assert '<td class="runs">3</td>' in row and '<td class="running">1</td>' in row
    assert 'href="/experiments/curves"' in row and re.search(r'<td class="last-activity">\d{4}-', row)
    open_run.complete()


def test_the_sweep_shows_its_children_sorted_by_mse(embedded: Workspace, http) -> None:
    sweep = log_sweep(embedded)
    top = http.get("/experiments/export-to-tensorboard")
    assert run_ids_in(top.text) == [sweep.root_id]
    assert f'<button class="expand" type="button" data-run-id="{sweep.root_id}"' in top.text
    page = http.get(f"/experiments/export-to-tensorboard?parent={sweep.root_id}&order_by=metrics.mse.last asc")
    ids = run_ids_in(page.text)
    assert len(ids) == 7 and ids[0] == sweep.children[0.4]
    assert ids == [sweep.children[alpha] for alpha in sorted(sweep.mse, key=sweep.mse.get)]
    assert 'th data-key="metrics.alpha.last"' in page.text and 'th data-key="metrics.mse.last"' in page.text
    assert 'data-sort="asc"' in page.text and 'id="page-info">1–7 of 7<' in page.text
    descending = run_ids_in(http.get(f"/experiments/export-to-tensorboard?parent={sweep.root_id}&order_by=metrics.mse.last desc").text)
    assert descending == ids[::-1]


def test_children_rows_come_under_their_parent_sorted_by_the_same_order(embedded: Workspace, http) -> None:
    sweep = log_sweep(embedded)
    answer = http.get(f"/ui/api/runs/{sweep.root_id}/children", params={"order_by": "metrics.mse.last desc", "columns": "attributes.display_name,metrics.mse.last"})
    assert answer.status_code == 200
    body = answer.json()
    assert body["count"] == 7 and body["ids"][-1] == sweep.children[0.4]
    assert 'data-depth="1"' in body["html"] and 'td data-key="metrics.mse.last"' in body["html"]


def test_a_filter_narrows_the_table_and_a_bad_one_says_where(embedded: Workspace, http) -> None:
    sweep = log_sweep(embedded)
    base = "/experiments/export-to-tensorboard"
    narrowed = run_ids_in(http.get(base, params={"parent": sweep.root_id, "filter": "metrics.mse < 3300"}).text)
    assert sorted(narrowed) == sorted(run_id for alpha, run_id in sweep.children.items() if sweep.mse[alpha] < 3300)
    assert 0 < len(narrowed) < 7
    bad = http.get(base, params={"parent": sweep.root_id, "filter": "metrics.mse <"})
    assert bad.status_code == 200 and run_ids_in(bad.text) == []
    error = re.search(r'<p id="filter-error" class="error">(.*?)</p>', bad.text).group(1)
    assert "column 14" in unescape(error)
    assert 'value="metrics.mse &lt;"' in bad.text  # the expression stays in the box, escaped


def test_paging_columns_and_the_selection_are_in_the_url(embedded: Workspace, http) -> None:
    ids = log_curves(embedded, "many", tuple(f"run{i}" for i in range(55)), steps=2)
    first = http.get("/experiments/many", params={"selected": f"{ids[0]},{ids[1]}", "columns": "attributes.display_name,metrics.loss.min"})
    assert len(run_ids_in(first.text)) == 50 and 'id="page-info">1–50 of 55<' in first.text
    assert 'th data-key="metrics.loss.min"' in first.text and 'th data-key="attributes.status"' not in first.text
    next_link = unescape(re.search(r'<a id="next-page" href="([^"]+)"', first.text).group(1))
    assert "page=2" in next_link and f"selected={ids[0]}%2C{ids[1]}" in next_link and "columns=" in next_link
    second = http.get(next_link)
    assert len(run_ids_in(second.text)) == 5 and 'id="page-info">51–55 of 55<' in second.text
    assert '<a id="prev-page" href=' in second.text and 'id="next-page" class="disabled"' in second.text
    assert page_data(second.text)["selected"] == [ids[0], ids[1]]
    assert http.get("/experiments/many", params={"columns": "bogus.key"}).status_code == 422


def test_user_text_is_escaped_everywhere(embedded: Workspace, http) -> None:
    run = Experiment(embedded, "xss").start_logging(display_name=XSS)
    run.tag("note", XSS)
    run.add_properties({"prop": XSS})
    run.log(XSS, 1.0)
    run.log(XSS, 2.0)
    run.log("text", XSS)
    embedded.artifacts.write(run.id, DRIVER_LOG, io.BytesIO(f"{XSS}\n".encode()))
    run.complete()
    columns = f"attributes.display_name,tags.note,properties.prop,metrics.{XSS}.last"
    pages = [
        http.get("/experiments/xss", params={"columns": columns}).text,
        http.get(f"/runs/{run.id}").text,
        http.get(f"/compare?runs={run.id}").text,
    ]
    for html in pages:
        assert XSS not in html
        assert "&lt;script&gt;" in html
    assert "\\u003cscript\\u003e" in pages[1]  # inside #page-data too
    assert json.loads(http.get(f"/ui/api/runs/{run.id}/log").text)["text"] == f"{XSS}\n"  # JSON, shown as text


def test_run_page_lists_charts_tags_properties_children_and_files(embedded: Workspace, http) -> None:
    sweep = log_sweep(embedded)
    root = embedded.get_run(sweep.root_id)
    root_id = root.id
    embedded.artifacts.write(root_id, "outputs/notes.txt", io.BytesIO(b"hello"))
    embedded.artifacts.write(root_id, "outputs/plot.png", io.BytesIO(b"\x89PNG\r\n\x1a\n"))
    page = http.get(f"/runs/{root_id}")
    assert page.status_code == 200
    assert '<div class="chart" data-metric="mse">' in page.text and '<div class="chart" data-metric="alpha">' in page.text
    assert 'id="run-status" data-status="Completed"' in page.text and 'id="x-axis"' in page.text and 'id="log-scale"' in page.text
    assert 'id="tags"' in page.text and 'id="properties"' in page.text and 'id="driver-log"' in page.text
    assert all(f'href="/runs/{child}"' in page.text for child in sweep.children.values())
    assert f'<a data-path="outputs/notes.txt" href="/ui/files/{root_id}/outputs/notes.txt">' in page.text
    assert f'<img class="thumb" src="/ui/files/{root_id}/outputs/plot.png"' in page.text  # images shown
    assert 'id="run-duration"' in page.text
    assert http.get("/runs/no-such-run").status_code == 404
    assert "No run with id" in http.get("/runs/no-such-run").text


def test_metric_json_is_downsampled_on_the_server(embedded: Workspace, http) -> None:
    run = Experiment(embedded, "long").start_logging()
    run.log_list("noise", [float(i % 97) for i in range(20_000)])
    for step in range(3):
        run.log("loss", 1.0 / (step + 1))
    run.complete()
    series = http.get(f"/ui/api/runs/{run.id}/metrics/noise", params={"points": 500}).json()
    assert series["count"] == 20_000 and len(series["x"]) <= 500 and max(series["y"]) == 96.0
    loss = http.get(f"/ui/api/runs/{run.id}/metrics/loss", params={"x": "time"}).json()
    assert loss["count"] == 3 and len(loss["x"]) == 3 and loss["x"][0] > 1e9  # wall time on x
    assert http.get(f"/ui/api/runs/{run.id}/metrics/loss", params={"points": 9000}).status_code == 422
    assert http.get(f"/ui/api/runs/{run.id}/metrics/loss", params={"x": "epoch"}).status_code == 422
    assert http.get(f"/ui/api/runs/{run.id}/metrics/nothing").status_code == 404
    state = http.get(f"/ui/api/runs/{run.id}").json()
    assert state["status"] == "Completed" and state["open"] is False and state["metrics"]["loss"] == 3


def test_the_driver_log_is_read_from_an_offset(embedded: Workspace, http) -> None:
    run = Experiment(embedded, "logs").start_logging()
    assert http.get(f"/ui/api/runs/{run.id}/log").json() == {"text": "", "offset": 0, "open": True}
    embedded.artifacts.append(run.id, DRIVER_LOG, "first line ü\n".encode())
    first = http.get(f"/ui/api/runs/{run.id}/log").json()
    assert first["text"] == "first line ü\n" and first["open"] is True
    embedded.artifacts.append(run.id, DRIVER_LOG, b"second\n")
    second = http.get(f"/ui/api/runs/{run.id}/log", params={"offset": first["offset"]}).json()
    assert second["text"] == "second\n"
    run.complete()


def test_compare_shows_curves_parallel_coordinates_and_differences(embedded: Workspace, http) -> None:
    sweep = log_sweep(embedded)
    ids = list(sweep.children.values())
    for run_id, alpha in zip(ids, sweep.children):
        embedded.store.add_properties(run_id, {"alpha": str(alpha), "solver": "auto"})
    page = http.get("/compare", params={"runs": ",".join(ids)})
    assert page.status_code == 200
    assert 'id="parallel-coordinates"' in page.text and '<div class="chart" data-metric="mse">' in page.text
    differences = re.search(r'<table id="differences".*?</table>', page.text, re.S).group(0)
    assert 'data-key="properties.alpha"' in differences and 'data-key="metrics.mse.last"' in differences
    assert 'data-key="properties.solver"' not in differences  # the same for every run
    parallel = page_data(page.text)["parallel"]
    assert [axis["name"] for axis in parallel["axes"]] == ["alpha", "solver", "alpha", "mse"]
    assert parallel["axes"][1]["type"] == "category" and len(parallel["lines"]) == 7
    curves = http.get("/ui/api/compare", params={"runs": ",".join(ids)}).json()
    assert len(curves["metrics"]["mse"]) == 7 and {one["run_id"] for one in curves["metrics"]["mse"]} == set(ids)
    only = http.get("/ui/api/compare", params={"runs": ",".join(ids), "metric": "mse"}).json()
    assert list(only["metrics"]) == ["mse"] and len(only["metrics"]["mse"]) == 7
    assert http.get("/compare", params={"runs": "nope"}).status_code == 404
    assert http.get("/compare").status_code == 422


def test_a_missing_chart_library_is_said_on_every_page(http, monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    from runhistory.ui import rendering

    assert 'id="chart-library-missing"' not in http.get("/").text
    monkeypatch.setattr(rendering, "CHART_LIBRARY", tmp_path / "echarts.min.js")
    page = http.get("/").text
    assert 'id="chart-library-missing"' in page and "scripts/ui_assets.py" in page


def test_a_page_whose_parameters_are_out_of_range_says_so_as_a_page(http) -> None:
    page = http.get("/experiments/anything", params={"page": 0})
    assert page.status_code == 422 and page.headers["content-type"].startswith("text/html")
    assert "query.page" in page.text and "greater than or equal to 1" in page.text
    api = http.get("/ui/api/runs/nope/metrics/x", params={"points": 0})
    assert api.status_code == 422 and api.json()["error"] == "invalid_request"
