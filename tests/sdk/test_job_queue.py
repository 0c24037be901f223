"""runhistory's own job queue (for targets such as Ray that keep none we want): a held Queued job
run waits with no process of its own and never expires; admitters move the oldest held runs to
Starting as room frees, never one run twice and never beyond the room, even when several race."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from runhistory import Workspace
from runhistory.core.errors import InvalidNameError, NotFoundError, RunHistoryError
from runhistory.store.base import JOB_RUN_TYPE, RunFilter, RunStatus
from runhistory.store.sql.schema import runs
from tests.helpers import start_python, wait_until
from tests.postgres import BACKENDS

pytestmark = BACKENDS

TARGET = "cpu"


def _held(ws: Workspace, count: int, target: str = TARGET) -> list[str]:
    """``count`` new Queued job runs of ``target`` held in its queue, oldest first."""
    experiment = ws.store.get_or_create_experiment("queue")
    ids = []
    for _ in range(count):
        run_id = ws.store.create_run(experiment.id, run_type=JOB_RUN_TYPE, status=RunStatus.QUEUED, target=target).id
        ws.store.heartbeat(run_id)  # as a submitter does before it hands the run to the queue
        assert ws.store.hold_in_queue(run_id) == RunStatus.QUEUED
        ids.append(run_id)
    return ids


def _silence_for(ws: Workspace, run_id: str, seconds: float) -> None:
    """Make the run's last heartbeat ``seconds`` old, as if its supervisor had stopped then."""
    with ws.store._engine.begin() as connection:
        connection.execute(sa.update(runs).where(runs.c.id == run_id).values(heartbeat_time=time.time() - seconds))


def _status(ws: Workspace, run_id: str) -> str:
    return ws.store.get_run(run_id).status


def test_a_held_run_never_reads_failed_for_silence(ws: Workspace) -> None:
    held, beating = _held(ws, 1)[0], _held(ws, 1)[0]
    ws.store.heartbeat(beating)  # its supervisor waits beating; then stops
    _silence_for(ws, beating, 60)
    assert ws.store.get_run(held).heartbeat_time is None
    assert _status(ws, held) == RunStatus.QUEUED
    assert _status(ws, beating) == RunStatus.FAILED
    assert [record.id for record in ws.store.list_runs(RunFilter(status=RunStatus.QUEUED))] == [held]
    assert ws.store.hold_in_queue(held) == RunStatus.QUEUED  # idempotent
    assert ws.store.hold_in_queue(beating) == RunStatus.FAILED  # ended runs stay ended


def test_only_a_queued_job_run_is_held(ws: Workspace) -> None:
    experiment = ws.store.get_or_create_experiment("queue")
    running = ws.store.create_run(experiment.id, run_type=JOB_RUN_TYPE, status=RunStatus.QUEUED, target=TARGET).id
    ws.store.heartbeat(running)
    ws.store.set_status(running, RunStatus.RUNNING)
    interactive = ws.store.create_run(experiment.id).id
    assert ws.store.hold_in_queue(running) == RunStatus.RUNNING
    assert ws.store.get_run(running).heartbeat_time is not None  # its supervisor's beats still count
    assert ws.store.hold_in_queue(interactive) == RunStatus.RUNNING
    with pytest.raises(NotFoundError, match="No run with id 'ghost'"):
        ws.store.hold_in_queue("ghost")


def test_the_oldest_held_runs_are_admitted_as_room_frees(ws: Workspace) -> None:
    queued = _held(ws, 6)
    other_target = _held(ws, 2, target="gpu")
    assert ws.store.admit_queued_jobs(TARGET, 2) == queued[:2]
    assert ws.store.admit_queued_jobs(TARGET, 2) == []
    for run_id in queued[:2]:
        record = ws.store.get_run(run_id)
        assert record.status == RunStatus.STARTING and record.heartbeat_time is None
    assert [_status(ws, run_id) for run_id in queued[2:]] == [RunStatus.QUEUED] * 4
    ws.store.set_status(queued[0], RunStatus.COMPLETED)
    assert ws.store.admit_queued_jobs(TARGET, 2) == [queued[2]]
    assert ws.store.admit_queued_jobs(TARGET, 10, limit=0) == []
    assert ws.store.admit_queued_jobs(TARGET, 10, limit=1) == [queued[3]]
    assert ws.store.admit_queued_jobs(TARGET, 10) == queued[4:]
    assert ws.store.admit_queued_jobs(TARGET, 10) == []
    assert [_status(ws, run_id) for run_id in other_target] == [RunStatus.QUEUED] * 2
    assert ws.store.admit_queued_jobs("gpu", 0) == []


def test_runs_in_flight_count_unless_their_supervisor_is_gone(ws: Workspace) -> None:
    queued = _held(ws, 4)
    running, lost = ws.store.admit_queued_jobs(TARGET, 2)
    for run_id in (running, lost):
        ws.store.heartbeat(run_id)
        ws.store.set_status(run_id, RunStatus.RUNNING)
    ws.store.set_status(running, RunStatus.CANCEL_REQUESTED)  # still in flight until its supervisor ends it
    _silence_for(ws, lost, 60)
    assert ws.store.admit_queued_jobs(TARGET, 2) == [queued[2]]
    assert ws.store.admit_queued_jobs(TARGET, 2) == []
    assert _status(ws, lost) == RunStatus.FAILED


def test_a_queued_run_whose_supervisor_waits_beating_is_not_admitted(ws: Workspace) -> None:
    experiment = ws.store.get_or_create_experiment("queue")
    waiting = ws.store.create_run(experiment.id, run_type=JOB_RUN_TYPE, status=RunStatus.QUEUED, target=TARGET).id
    ws.store.heartbeat(waiting)  # a local supervisor waiting for a slot (claim_job_slot) keeps it
    held = _held(ws, 1)
    assert ws.store.admit_queued_jobs(TARGET, 5) == held
    assert _status(ws, waiting) == RunStatus.QUEUED


def test_a_canceled_queued_run_is_never_admitted(ws: Workspace) -> None:
    canceled_held, canceled, asked, kept = _held(ws, 4)
    record = ws.store.set_status(canceled_held, RunStatus.CANCEL_REQUESTED)
    assert record.status == RunStatus.CANCELED and record.end_time is not None  # no supervisor would see the cancel
    ws.store.set_status(canceled, RunStatus.CANCELED)
    ws.store.heartbeat(asked)  # a queued run with a process of its own reads CancelRequested until it ends
    ws.store.set_status(asked, RunStatus.CANCEL_REQUESTED)
    assert _status(ws, asked) == RunStatus.CANCEL_REQUESTED
    assert ws.store.admit_queued_jobs(TARGET, 10) == [kept]
    assert [_status(ws, run_id) for run_id in (canceled_held, canceled)] == [RunStatus.CANCELED] * 2


def test_bad_admissions_are_one_sentence_and_change_nothing(ws: Workspace) -> None:
    queued = _held(ws, 2)
    with pytest.raises(InvalidNameError, match="^Compute target name 'no/such' is not valid"):
        ws.store.admit_queued_jobs("no/such", 1)
    bad = [(-1, None), (True, None), (1.5, None), ("2", None), (2**63, None), (1, -1), (1, False), (1, 2.0)]
    for max_in_flight, limit in bad:
        with pytest.raises(RunHistoryError) as refused:
            ws.store.admit_queued_jobs(TARGET, max_in_flight, limit)
        message = str(refused.value)
        assert "\n" not in message and message.endswith(".") and f"compute target '{TARGET}'" in message, message
        assert ("limit" if limit is not None else "max_in_flight") in message
    assert [_status(ws, run_id) for run_id in queued] == [RunStatus.QUEUED] * 2


def test_a_job_silent_after_its_cancel_reads_canceled_and_one_silent_while_running_failed(ws: Workspace) -> None:
    _held(ws, 2)
    stopped, killed = ws.store.admit_queued_jobs(TARGET, 2)
    for run_id in (stopped, killed):
        ws.store.heartbeat(run_id)
        ws.store.set_status(run_id, RunStatus.RUNNING)
    ws.store.set_status(stopped, RunStatus.CANCEL_REQUESTED)  # then the stop kills the supervisor
    _silence_for(ws, stopped, 10)
    _silence_for(ws, killed, 10)
    ended = ws.store.get_run(stopped)
    assert ended.status == RunStatus.CANCELED and ended.end_time is not None
    assert ended.error["code"] == "SupervisorLost"
    assert "stopped heartbeating" in ended.error["message"] and "after the cancel was requested" in ended.error["message"]
    failed = ws.store.list_runs(RunFilter(status=RunStatus.FAILED))
    assert [record.id for record in failed] == [killed]
    assert failed[0].error["code"] == "SupervisorLost" and "did not finish" in failed[0].error["message"]


ADMITTER = """
    import json, os, time
    from pathlib import Path
    from runhistory.backends import open_run_store
    from runhistory.store.base import RunFilter

    store = open_run_store(os.environ["URI"])
    folder = Path(os.environ["FOLDER"])
    (folder / f"ready{os.getpid()}").touch()
    while not (folder / "go").exists():
        time.sleep(0.01)
    admitted, most = [], 0
    while True:
        got = store.admit_queued_jobs("cpu", 3)
        admitted += got
        most = max(most, store.count_runs(RunFilter(target="cpu", status="Starting")))
        for run_id in got:
            store.set_status(run_id, "Completed")
        if not got and store.count_runs(RunFilter(target="cpu", status="Queued")) == 0:
            break
    print(json.dumps({"admitted": admitted, "most": most}))
"""


def test_admitters_racing_never_admit_a_run_twice_nor_beyond_the_room(ws: Workspace, tmp_path: Path) -> None:
    queued = _held(ws, 24)
    folder = tmp_path / "admitters"
    folder.mkdir()
    admitters = [start_python(ADMITTER, URI=ws.tracking_uri, FOLDER=str(folder)) for _ in range(4)]
    try:
        wait_until(lambda: len(list(folder.glob("ready*"))) == 4, timeout=60, what="every admitter to start")
        (folder / "go").touch()
        answers = []
        for admitter in admitters:
            out, err = admitter.communicate(timeout=120)
            assert admitter.returncode == 0, err
            answers.append(json.loads(out))
    finally:
        for admitter in admitters:
            if admitter.poll() is None:
                admitter.kill()
                admitter.wait()
    admitted = [run_id for answer in answers for run_id in answer["admitted"]]
    assert sorted(admitted) == sorted(queued), "every run admitted exactly once"
    assert max(answer["most"] for answer in answers) <= 3
    assert [_status(ws, run_id) for run_id in queued] == [RunStatus.COMPLETED] * 24
