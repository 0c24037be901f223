"""The job queue through a real ``runhistory server``: a server workspace holds and admits runs as an
embedded one does, and the routes answer what the store does, or 4xx with one sentence."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import httpx
import pytest

from runhistory import Workspace
from runhistory.core.errors import NotFoundError, RunHistoryError
from runhistory.store.base import JOB_RUN_TYPE, RunStatus
from tests.server.support import ServerProcess

API = "/api/v1"


def _queued(ws: Workspace, count: int, target: str = "cpu") -> list[str]:
    experiment = ws.store.get_or_create_experiment("queue")
    return [
        ws.store.create_run(experiment.id, run_type=JOB_RUN_TYPE, status=RunStatus.QUEUED, target=target).id
        for _ in range(count)
    ]


def _held(ws: Workspace, count: int) -> list[str]:
    ids = _queued(ws, count)
    for run_id in ids:
        ws.store.heartbeat(run_id)
        assert ws.store.hold_in_queue(run_id) == RunStatus.QUEUED
    return ids


def test_a_server_workspace_holds_and_admits_like_an_embedded_one(remote_ws: Workspace) -> None:
    queued = _held(remote_ws, 4)
    assert remote_ws.store.get_run(queued[0]).heartbeat_time is None
    assert remote_ws.store.admit_queued_jobs("cpu", 2) == queued[:2]
    assert remote_ws.store.admit_queued_jobs("cpu", 2) == []
    remote_ws.store.set_status(queued[0], RunStatus.COMPLETED)
    assert remote_ws.store.admit_queued_jobs("cpu", 5, limit=1) == [queued[2]]
    assert remote_ws.store.set_status(queued[3], RunStatus.CANCEL_REQUESTED).status == RunStatus.CANCELED
    assert remote_ws.store.admit_queued_jobs("cpu", 5) == []
    assert [remote_ws.store.get_run(run_id).status for run_id in queued[1:3]] == [RunStatus.STARTING] * 2
    with pytest.raises(NotFoundError, match="No run with id 'ghost'"):
        remote_ws.store.hold_in_queue("ghost")


def test_bad_admissions_are_refused_before_any_request(remote_ws: Workspace) -> None:
    queued = _held(remote_ws, 1)
    for target, max_in_flight, limit in (("cpu", True, None), ("cpu", -1, None), ("cpu", 1, -1), ("a b", 1, None)):
        with pytest.raises(RunHistoryError) as refused:
            remote_ws.store.admit_queued_jobs(target, max_in_flight, limit)
        assert "\n" not in str(refused.value) and str(refused.value).endswith(".")
    assert remote_ws.store.get_run(queued[0]).status == RunStatus.QUEUED


def test_the_routes_answer_the_store_or_one_sentence(remote_ws: Workspace, server: ServerProcess) -> None:
    held, beating = _queued(remote_ws, 2)
    remote_ws.store.heartbeat(beating)
    with httpx.Client(base_url=server.url + API) as api:
        for _ in range(2):  # idempotent
            answer = api.post(f"/runs/{held}/hold")
            assert answer.status_code == 200 and answer.json() == {"status": "Queued"}
        assert api.post("/runs/ghost/hold").json()["error"] == "not_found"
        for body in ({"max_in_flight": True}, {"max_in_flight": -1}, {"max_in_flight": 1, "limit": -1},
                     {"max_in_flight": 1.5}, {"max_in_flight": "2"}, {}):
            refused = api.post("/compute-targets/cpu/admit", json=body)
            assert refused.status_code == 422 and refused.json()["error"] == "invalid_request", (body, refused.text)
        refused = api.post("/compute-targets/no%20such/admit", json={"max_in_flight": 1})
        assert refused.status_code == 400 and refused.json()["error"] == "invalid_name", refused.text
        assert api.post("/compute-targets/cpu/admit", json={"max_in_flight": 3, "limit": 0}).json() == {"admitted": []}
        assert api.post("/compute-targets/cpu/admit", json={"max_in_flight": 3}).json() == {"admitted": [held]}
        paths = api.get(server.url + "/openapi.json").json()["paths"]
    assert {"/api/v1/runs/{run_id}/hold", "/api/v1/compute-targets/{target}/admit"} <= set(paths)
    assert remote_ws.store.get_run(beating).status == RunStatus.QUEUED


@pytest.fixture
def server_on_postgres(tmp_path: Path, postgres_uri: str) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path / "pg-server", store_uri=postgres_uri).start()
    yield process
    process.stop()


def test_a_server_on_postgresql_admits_in_queue_order(server_on_postgres: ServerProcess) -> None:
    ws = Workspace(server_on_postgres.url)
    queued = _held(ws, 3)
    assert ws.store.admit_queued_jobs("cpu", 2) == queued[:2]
    assert ws.store.admit_queued_jobs("cpu", 2) == []
