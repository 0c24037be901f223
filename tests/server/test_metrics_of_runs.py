"""``POST /api/v1/metrics/of-runs``: the series of many runs in one request, against a real server."""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np
import pytest

from runhistory import Experiment, Workspace
from runhistory.protocol.routes import MAX_RUNS_PER_METRICS_READ
from runhistory.protocol.series_of_runs import POINTS_PER_ANSWER, decode_series_of_runs
from runhistory.store.base import MetricSeries
from runhistory.tensorboard.export import export_to_tensorboard
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tests.server.support import ServerProcess


@pytest.fixture
def server(shared_server: ServerProcess) -> ServerProcess:
    """The tests of this module share one server; each logs into an experiment of its own."""
    return shared_server


@pytest.fixture
def logged(remote_ws: Workspace, request: pytest.FixtureRequest) -> list[str]:
    """Three runs with series of every kind (one without ``loss``), and one run with none: their ids."""
    exp = Experiment(remote_ws, request.node.name[5:60])
    ids = []
    for number in range(3):
        run = exp.start_logging(f"run{number}")
        if number != 1:
            for step in range(50):
                run.log("loss", 1.0 / (step + 1 + number))
        run.log("steps", 0.5 * number, step=10)
        run.log("steps", 0.25, step=20 + number)
        run.log("word", f"hello {number}")
        run.log_list("list", [number, number + 1])
        run.log_row("row", a=number, b=2.5)
        run.complete()
        ids.append(run.id)
    empty = exp.start_logging("empty")
    empty.complete()
    return [*ids, empty.id]


def _plain(found: dict[str, dict[str, MetricSeries]]) -> dict[str, dict[str, Any]]:
    """Series as plain values, so that two reads compare with ``==``."""
    return {
        run_id: {
            name: (one.kind, one.description, one.values, one.steps.tolist(), one.times.tolist())
            for name, one in series.items()
        }
        for run_id, series in found.items()
    }


def test_the_series_of_many_runs_are_those_of_reads_run_by_run(remote_ws: Workspace, logged: list[str]) -> None:
    store = remote_ws.store
    together = store.get_metrics_of_runs(logged)
    assert set(together) == set(logged)
    assert _plain(together) == _plain({run_id: store.get_metrics(run_id) for run_id in logged})
    assert together[logged[0]]["loss"].values[:2] == [1.0, 0.5]
    assert together[logged[2]]["steps"].steps.dtype == np.int64
    assert together[logged[2]]["steps"].steps.tolist() == [10, 22]
    assert together[logged[3]] == {}  # a run without series is there, with none


def test_names_pick_the_series(remote_ws: Workspace, logged: list[str]) -> None:
    store = remote_ws.store
    picked = store.get_metrics_of_runs(logged, names=["loss", "word", "nothing"])
    assert _plain(picked) == _plain({run_id: store.get_metrics(run_id, ["loss", "word", "nothing"]) for run_id in logged})
    assert set(picked[logged[0]]) == {"loss", "word"} and set(picked[logged[1]]) == {"word"}
    assert store.get_metrics_of_runs(logged, names=[]) == {run_id: {} for run_id in logged}


def test_unknown_runs_are_left_out_and_a_run_named_twice_comes_once(remote_ws: Workspace, logged: list[str]) -> None:
    found = remote_ws.store.get_metrics_of_runs(["ghost-1", logged[0], "ghost-2", logged[0]])
    assert list(found) == [logged[0]]
    assert remote_ws.store.get_metrics_of_runs([]) == {}


def test_the_client_asks_in_pages_of_the_servers_cap(remote_ws: Workspace, logged: list[str]) -> None:
    ghosts = [f"ghost-{index}" for index in range(MAX_RUNS_PER_METRICS_READ + 10)]
    found = remote_ws.store.get_metrics_of_runs([*ghosts[:300], logged[0], *ghosts[300:], logged[2]], names=["word"])
    assert {run_id: series["word"].values for run_id, series in found.items()} == {
        logged[0]: ["hello 0"],
        logged[2]: ["hello 2"],
    }


def test_an_answer_past_its_points_leaves_the_rest_to_the_next_request(remote_ws: Workspace, request) -> None:
    exp = Experiment(remote_ws, request.node.name[5:60])
    per_run = POINTS_PER_ANSWER // 2  # the server answers two of these runs, then the client asks again
    ids = []
    for number in range(3):
        with exp.start_logging() as run:
            run.log_list("big", list(range(number, number + per_run)))
            run.log("small", number)
        ids.append(run.id)
    found = remote_ws.store.get_metrics_of_runs(ids)
    assert list(found) == ids
    for number, run_id in enumerate(ids):
        assert found[run_id]["big"].values[:2] == [number, number + 1] and len(found[run_id]["big"].values) == per_run
        assert found[run_id]["small"].values == [number]
    route = f"{remote_ws.tracking_uri}/api/v1/metrics/of-runs"
    first, unread = decode_series_of_runs(httpx.post(route, json={"run_ids": ids}).content)
    assert list(first) == ids[:2] and unread == 1
    small, unread = decode_series_of_runs(httpx.post(route, json={"run_ids": ids, "names": ["small"]}).content)
    assert list(small) == ids and unread == 0  # few points: every run in one answer


def test_more_runs_than_the_cap_are_refused_in_a_sentence(server: ServerProcess) -> None:
    ids = [f"run-{index}" for index in range(MAX_RUNS_PER_METRICS_READ + 1)]
    answer = httpx.post(f"{server.url}/api/v1/metrics/of-runs", json={"run_ids": ids})
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert body["error"] == "invalid_request"
    assert "run_ids" in body["detail"] and f"at most {MAX_RUNS_PER_METRICS_READ}" in body["detail"], body
    assert "run-1" not in body["detail"]  # the sentence never echoes the request


def test_an_export_of_many_runs_reads_their_series_together(remote_ws: Workspace, logged: list[str], tmp_path) -> None:
    runs = [remote_ws.get_run(run_id) for run_id in logged]
    folders = export_to_tensorboard(runs, tmp_path / "tb")
    assert [folder.name for folder in folders] == ["run0-1", "run1-2", "run2-3", "empty-4"]
    for number in (0, 2):
        events = EventAccumulator(str(folders[number]), size_guidance={"tensors": 0})
        events.Reload()
        loss = [(event.step, event.tensor_proto.float_val[0]) for event in events.Tensors("loss")]
        assert loss == [(step, np.float32(1.0 / (step + 1 + number))) for step in range(50)]
        assert [event.step for event in events.Tensors("steps")] == [10, 20 + number]
