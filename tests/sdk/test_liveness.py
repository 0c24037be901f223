"""Runs never stay Running: the process that started them ends them, or readers see that it is gone.

Each test starts a real child Python process that owns runs, and reads them back from this one.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from runhistory import Experiment, Run, ScriptRunConfig, Workspace
from runhistory.store import owners
from runhistory.core.errors import RunFinishedError
from runhistory.store.base import RunOwner, RunStatus
from tests.helpers import run_python, start_python, wait_until
from tests.postgres import BACKENDS
from tests.server.support import ServerProcess


OWN_RUNS = """
    import os, sys, time
    from runhistory import Experiment, Workspace
    run = Experiment(Workspace(os.environ["WS"]), "live").start_logging("parent")
    child = run.child_run("child")
    run.log("x", 1)
    child.log("y", 2)
    print(run.id, child.id, flush=True)
"""




def started_ids(process: subprocess.Popen) -> list[str]:
    line = process.stdout.readline()
    assert line, process.stderr.read()
    return line.split()


def test_a_normal_exit_completes_the_runs_the_process_started(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "ws")
    out = run_python(OWN_RUNS, WS=str(tmp_path / "ws")).stdout
    run_id, child_id = out.split()
    run, child = ws.get_run(run_id), ws.get_run(child_id)
    assert (run.status, child.status) == (RunStatus.COMPLETED, RunStatus.COMPLETED)
    assert (run.get_metrics(), child.get_metrics()) == ({"x": 1}, {"y": 2})


def test_an_uncaught_exception_fails_the_runs_with_it_and_still_prints_it(tmp_path: Path) -> None:
    Workspace.create(tmp_path / "ws")
    process = start_python(OWN_RUNS + "\n    raise ValueError('boom at epoch 3')\n", WS=str(tmp_path / "ws"))
    out, err = process.communicate(timeout=60)
    assert process.returncode == 1
    assert "ValueError: boom at epoch 3" in err  # the previous excepthook still ran
    ws = Workspace(tmp_path / "ws")
    for run_id in out.split():
        run = ws.get_run(run_id)
        error = run.get_details()["error"]
        assert run.status == RunStatus.FAILED
        assert (error["type"], error["message"]) == ("ValueError", "ValueError: boom at epoch 3")
        assert 'line 10, in <module>' in error["traceback"]
    assert ws.get_run(out.split()[0]).get_metrics() == {"x": 1}


def test_kill_9_fails_the_runs_within_a_few_heartbeats(tmp_path: Path) -> None:
    Workspace.create(tmp_path / "ws")
    process = start_python(OWN_RUNS + "\n    time.sleep(60)\n", WS=str(tmp_path / "ws"))
    try:
        run_id, child_id = started_ids(process)
        ws = Workspace(tmp_path / "ws")
        assert ws.get_run(run_id).status == RunStatus.RUNNING
    finally:
        process.kill()
        process.communicate(timeout=10)
    killed = time.monotonic()
    run = ws.get_run(run_id)
    wait_until(lambda: run.get_status() == RunStatus.FAILED, timeout=3 * owners.OWNER_LOST_AFTER_S, what="Failed")
    assert time.monotonic() - killed < 2 * owners.OWNER_LOST_AFTER_S
    details = run.get_details()
    assert details["error"]["code"] == owners.PROCESS_LOST_CODE
    assert owners.PROCESS_LOST_MESSAGE in details["error"]["message"].lower()
    assert details["endTimeUtc"] is not None
    # The owner beat its runs one after the other: the child's silence may end a moment later.
    wait_until(lambda: ws.get_run(child_id).status == RunStatus.FAILED, timeout=2 * owners.OWNER_LOST_AFTER_S, what="child Failed")


def test_a_suspended_process_reads_not_responding_then_running_again_and_keeps_every_point(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(owners, "OWNER_HEARTBEAT_TIMEOUT_S", 2.0)  # what this reader calls silent
    ws = Workspace.create(tmp_path / "ws")
    go = tmp_path / "go"
    process = start_python(
        f"""
        import os, sys, time
        from pathlib import Path
        from runhistory import Experiment, Workspace
        run = Experiment(Workspace(os.environ["WS"]), "live").start_logging()
        for i in range(50):
            run.log("x", i)
        run.flush()
        print(run.id, flush=True)
        while not Path({str(go)!r}).exists():
            time.sleep(0.02)
        for i in range(50, 100):
            run.log("x", i)
        """,
        WS=str(tmp_path / "ws"),
    )
    try:
        (run_id,) = started_ids(process)
        store = ws.store
        # Stop it right after a heartbeat was committed: no write of it is half-done while stopped.
        seen = store.get_run(run_id).heartbeat_time
        wait_until(lambda: store.get_run(run_id).heartbeat_time != seen, timeout=5, what="a heartbeat")
        process.send_signal(signal.SIGSTOP)
        run = ws.get_run(run_id)
        wait_until(lambda: run.get_status() == RunStatus.NOT_RESPONDING, timeout=8, what="NotResponding")
        assert run.get_status() == RunStatus.NOT_RESPONDING  # its pid lives: never Failed
        process.send_signal(signal.SIGCONT)
        wait_until(lambda: run.get_status() == RunStatus.RUNNING, timeout=5, what="Running again")
        go.touch()
        process.communicate(timeout=30)
    finally:
        process.kill()
        process.wait(timeout=10)
    assert process.returncode == 0
    assert run.get_status() == RunStatus.COMPLETED
    series = run.get_metric_series(["x"])["x"]
    assert series.values == list(range(100))
    assert series.steps.tolist() == list(range(100))


def test_a_run_whose_owner_is_on_another_machine_reads_not_responding_never_failed(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(owners, "OWNER_LOST_AFTER_S", 0.0)
    monkeypatch.setattr(owners, "OWNER_HEARTBEAT_TIMEOUT_S", 0.0)
    experiment = Experiment(ws, "remote")
    elsewhere = RunOwner(host="another-host", machine="f" * 32, pid=2**31 - 1, start_time=1.0)
    record = ws.store.create_run(experiment.id, run_type="interactive", owner=elsewhere)
    time.sleep(0.01)
    assert ws.store.get_run(record.id).status == RunStatus.NOT_RESPONDING
    assert ws.store.heartbeat(record.id) == RunStatus.RUNNING  # it beats again: Running
    monkeypatch.setattr(owners, "OWNER_HEARTBEAT_TIMEOUT_S", 3600.0)
    assert ws.store.get_run(record.id).status == RunStatus.RUNNING


def test_the_owner_is_gone_only_when_its_pid_and_start_time_are(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = Workspace.create(tmp_path / "ws")
    record = Experiment(ws, "own").start_logging().record
    me = owners.this_process()
    assert not owners.owner_is_gone(record)
    reused = RunOwner(me.host, me.machine, os.getpid(), me.start_time - 100)  # the pid now names another process
    gone = RunOwner(me.host, me.machine, _pid_not_in_use(), me.start_time)
    elsewhere = RunOwner("elsewhere", me.machine, 1, 0.0)
    cases = [(reused, True, RunStatus.FAILED), (gone, True, RunStatus.FAILED), (elsewhere, False, RunStatus.NOT_RESPONDING)]
    created = [ws.store.create_run(record.experiment_id, owner=owner) for owner, _, _ in cases]
    monkeypatch.setattr(owners, "OWNER_LOST_AFTER_S", 0.0)  # every heartbeat is silent from now on
    monkeypatch.setattr(owners, "OWNER_HEARTBEAT_TIMEOUT_S", 0.0)
    for (owner, gone_verdict, status), run in zip(cases, created):
        assert owners.owner_is_gone(run) is gone_verdict, owner
        assert ws.store.get_run(run.id).status == status, owner
    assert ws.store.get_run(record.id).status == RunStatus.RUNNING  # this process reads: it lives


def _pid_not_in_use() -> int:
    return next(pid for pid in range(2**22 - 1, 1, -1) if not psutil.pid_exists(pid))


def test_a_forked_child_exiting_does_not_end_its_parents_run(tmp_path: Path) -> None:
    Workspace.create(tmp_path / "ws")
    out = run_python(
        """
        import os, sys
        from runhistory import Experiment, Workspace
        run = Experiment(Workspace(os.environ["WS"]), "fork").start_logging()
        pid = os.fork()
        if pid == 0:
            sys.exit(0)  # a normal exit of the child: its exit hooks run
        os.waitpid(pid, 0)
        print(run.id, run.get_status(), flush=True)
        run.log("after_fork", 1)
        """,
        WS=str(tmp_path / "ws"),
    ).stdout
    run_id, status_after_child = out.split()
    assert status_after_child == RunStatus.RUNNING
    run = Workspace(tmp_path / "ws").get_run(run_id)
    assert (run.status, run.get_metrics()) == (RunStatus.COMPLETED, {"after_fork": 1})


def test_a_jobs_own_run_is_ended_by_its_supervisor_not_by_the_script(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "ws")
    source = tmp_path / "src"
    source.mkdir()
    (source / "train.py").write_text(
        "from runhistory import Run\n"
        "run = Run.get_context()\n"
        "run.child_run('trial').log('loss', 0.5)\n"
        "raise ValueError('diverged')\n"
    )
    job = Experiment(ws, "jobs").submit(ScriptRunConfig(str(source), "train.py"))
    job.wait_for_completion(raise_on_error=False, timeout=60)
    error = job.get_details()["error"]
    assert job.status == RunStatus.FAILED
    assert error.get("exit_code") == 1  # the supervisor's record, not the script's exit hook
    (trial,) = job.get_children()
    assert trial.status == RunStatus.FAILED  # the child run is the script's own: its exception ends it
    assert trial.get_details()["error"]["type"] == "ValueError"


@BACKENDS
def test_the_owner_is_recorded_when_a_run_is_created(ws: Workspace) -> None:
    experiment = Experiment(ws, "owners")
    run = experiment.start_logging()
    child = run.child_run()
    process = psutil.Process()
    for record in (run.record, child.record):
        assert (record.owner_host, record.owner_pid) == (socket.gethostname(), os.getpid())
        assert record.owner_start_time == pytest.approx(process.create_time(), abs=0.5)
        assert record.owner_machine and record.heartbeat_time is not None
    opened = ws.get_run(run.id)
    assert opened.record.owner_pid == os.getpid()
    assert ws.store.create_run(experiment.id, run_type="job", status=RunStatus.QUEUED).owner_pid is None
    run.complete()


def test_the_owner_travels_to_a_runhistory_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNHISTORY_SPOOL_DIR", str(tmp_path / "spool"))
    monkeypatch.setenv("RUNHISTORY_CONFIG_DIR", str(tmp_path / "home"))
    server = ServerProcess(tmp_path / "server").start()
    try:
        run = Experiment(Workspace(server.url), "owners").start_logging()
        record = Workspace(server.url).get_run(run.id).record
        assert (record.owner_host, record.owner_pid) == (socket.gethostname(), os.getpid())
        assert record.owner_machine == owners.this_process().machine
        run.complete()
    finally:
        server.stop()


@BACKENDS
def test_a_fresh_handle_of_an_ended_run_refuses_logging_at_once(ws: Workspace, tmp_path: Path) -> None:
    experiment = Experiment(ws, "ended")
    run = experiment.start_logging()
    run.log("x", 1)
    run.complete()
    picture = tmp_path / "p.png"
    picture.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 16)
    for handle in (ws.get_run(run.id), Run(experiment, run.id)):
        for attempt in (
            lambda: handle.log("x", 2),
            lambda: handle.log_list("l", [1]),
            lambda: handle.log_row("r", a=1),
            lambda: handle.log_image("i", path=picture),
            lambda: handle.child_run("c"),
        ):
            with pytest.raises(RunFinishedError, match=f"run {run.id} has ended .Completed."):
                attempt()
    assert run.get_metrics() == {"x": 1}
    assert run.get_children() == [] and run.get_file_names() == []
