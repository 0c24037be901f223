"""Run queries over the team server: filters and sort keys, metric stats, run keys and experiment summaries."""

from __future__ import annotations

import httpx
import pytest

from runhistory import Experiment, Workspace
from runhistory.core.errors import RunHistoryError
from runhistory.store.base import MetricStats, RunFilter, RunKeys

from tests.server.support import ServerProcess


@pytest.fixture
def server(shared_server: ServerProcess) -> ServerProcess:
    """The tests of this module share one server; each logs into an experiment of its own."""
    return shared_server


@pytest.fixture
def sweep(remote_ws: Workspace, request: pytest.FixtureRequest) -> Experiment:
    """Four runs with an mse and an alpha (one without mse), in an experiment named after the test."""
    exp = Experiment(remote_ws, request.node.name[5:60])
    for name, mse, alpha in (("a", 3.0, "0.1"), ("b", 1.0, "0.4"), ("c", 2.0, "10"), ("d", None, "2")):
        run = exp.start_logging(display_name=name)
        if mse is not None:
            run.log("mse", mse + 1)
            run.log("mse", mse)
        run.set_tags({"model": "ridge" if name in "ac" else "lasso"})
        run.add_properties({"alpha": alpha})
        run.complete()
    return exp


def test_the_client_filters_and_sorts_through_the_server(sweep: Experiment) -> None:
    names = [run.display_name for run in sweep.get_runs(filter="metrics.mse < 3 or tags.model = 'ridge'", order_by=["metrics.mse asc"])]
    assert names == ["b", "c", "a"]
    names = [run.display_name for run in sweep.get_runs(order_by="properties.alpha desc")]
    assert names == ["c", "d", "b", "a"]
    store = sweep.workspace.store
    assert store.count_runs(RunFilter(experiment_id=sweep.id, query="metrics.mse.max >= 3")) == 2
    page = store.list_runs(RunFilter(experiment_id=sweep.id, order_by=("metrics.mse desc",), limit=2, offset=2))
    assert [record.display_name for record in page] == ["b", "d"]
    found = [run.display_name for run in sweep.workspace.search_runs("tags.model = 'lasso'", "attributes.display_name", [sweep.name])]
    assert found == ["b", "d"]


def test_a_bad_filter_is_one_sentence_with_its_position_and_a_400(server: ServerProcess, sweep: Experiment) -> None:
    with pytest.raises(RunHistoryError, match="Bad run filter at column 14: expected a value after '<'"):
        sweep.workspace.store.list_runs(RunFilter(experiment_id=sweep.id, query="metrics.mse <"))
    answer = httpx.post(f"{server.url}/api/v1/runs/search", json={"query": 'tags.x = "a\' OR 1=1 --" and'})
    assert answer.status_code == 400
    assert "expected a key" in answer.text and "Traceback" not in answer.text
    answer = httpx.post(f"{server.url}/api/v1/runs/search", json={"order_by": ["metrics.mse sideways"]})
    assert answer.status_code == 400 and "Bad sort key" in answer.text
    answer = httpx.post(f"{server.url}/api/v1/runs/search", json={"query": 'tags.x = "a\' OR 1=1 --"'})
    assert (answer.status_code, answer.json()) == (200, [])


def test_metric_stats_run_keys_and_summaries_through_the_server(server: ServerProcess, sweep: Experiment) -> None:
    store = sweep.workspace.store
    ids = {run.display_name: run.id for run in sweep.get_runs()}
    stats = store.get_metric_stats([ids["a"], ids["d"], "missing"])
    assert stats == {ids["a"]: {"mse": MetricStats("scalar", 2, 3.0, 3.0, 4.0)}}
    with pytest.raises(RunHistoryError, match="at most 1000 runs"):
        store.get_metric_stats([f"r{number}" for number in range(1001)])
    answer = httpx.post(f"{server.url}/api/v1/runs/metric-stats", json={"run_ids": ["x"] * 1001})
    assert answer.status_code in (400, 422)
    assert store.run_keys(sweep.id) == RunKeys(("mse",), ("model",), ("alpha",))
    summary = {one.name: one for one in store.experiment_summaries()}[sweep.name]
    assert (summary.id, summary.runs, summary.running) == (sweep.id, 4, 0)
    assert summary.last_activity is not None
