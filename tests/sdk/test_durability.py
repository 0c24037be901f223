"""Many processes at once, kill -9, SIGTERM and interpreter exit: nothing logged is lost."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from runhistory import Experiment, Workspace
from tests.helpers import run_python, start_python

PROCESSES = 8
POINTS = 20_000

LOGGER = """
    import sys
    from runhistory import Workspace, Experiment
    ws = Workspace.from_config({workspace!r})
    run = Experiment(ws, "shared").start_logging(display_name="worker-" + sys.argv[0])
    for i in range({points}):
        run.log("value", i)
        if i % 1000 == 0:
            run.log("marker", i)
            run.tag("progress", i)
    run.complete()
"""


def test_eight_processes_logging_into_one_workspace_lose_and_duplicate_nothing(ws: Workspace, tmp_path: Path) -> None:
    code = LOGGER.format(workspace=str(tmp_path / "ws"), points=POINTS)
    processes = [start_python(code, RUNHISTORY_FLUSH_INTERVAL="0.05") for _ in range(PROCESSES)]
    for process in processes:
        _out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
        assert "locked" not in err
    runs = list(Experiment(ws, "shared").get_runs())
    assert len(runs) == PROCESSES
    assert sorted(run.number for run in runs) == list(range(1, PROCESSES + 1))
    for run in runs:
        assert run.status == "Completed"
        assert run.get_metrics("value")["value"] == list(range(POINTS))
        assert run.get_metrics("marker")["marker"] == list(range(0, POINTS, 1000))


def test_kill_minus_nine_loses_at_most_the_last_flush_interval(ws: Workspace, tmp_path: Path) -> None:
    interval = 0.3
    process = start_python(
        f"""
        import time
        from runhistory import Workspace, Experiment
        run = Experiment(Workspace.from_config({str(tmp_path / 'ws')!r}), "killed").start_logging()
        print(run.id, flush=True)
        i = 0
        while True:
            run.log("tick", i)
            i += 1
            if i % 100 == 0:
                time.sleep(0.001)
        """,
        RUNHISTORY_FLUSH_INTERVAL=str(interval),
    )
    run_id = process.stdout.readline().strip()
    time.sleep(2.5)
    killed_at = time.time()
    os.kill(process.pid, signal.SIGKILL)
    process.communicate(timeout=30)
    series = ws.get_run(run_id).get_metric_series(["tick"])["tick"]
    assert series.values == list(range(len(series.values))), "points are missing inside the stored prefix"
    assert len(series.values) > 1000
    newest_stored = series.times[-1]
    assert newest_stored >= killed_at - interval - 0.5, f"lost {killed_at - newest_stored:.2f} s of points"


def test_sigterm_flushes_everything_logged(ws: Workspace, tmp_path: Path) -> None:
    process = start_python(
        f"""
        import time
        from runhistory import Workspace, Experiment
        run = Experiment(Workspace.from_config({str(tmp_path / 'ws')!r}), "terminated").start_logging()
        for i in range(50_000):
            run.log("x", i)
        print(run.id, flush=True)
        time.sleep(60)
        """,
        RUNHISTORY_FLUSH_INTERVAL="600",
    )
    run_id = process.stdout.readline().strip()
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=30)
    assert process.returncode == -signal.SIGTERM
    assert ws.get_run(run_id).get_metrics("x")["x"] == list(range(50_000))


def test_interpreter_exit_flushes_without_complete(ws: Workspace, tmp_path: Path) -> None:
    result = run_python(
        f"""
        from runhistory import Workspace, Experiment
        run = Experiment(Workspace.from_config({str(tmp_path / 'ws')!r}), "exited").start_logging()
        for i in range(10_000):
            run.log("x", i * 0.5)
        print(run.id)
        """,
        RUNHISTORY_FLUSH_INTERVAL="600",
    )
    assert ws.get_run(result.stdout.strip()).get_metrics("x")["x"] == [i * 0.5 for i in range(10_000)]


def test_a_forked_child_does_not_write_its_parents_points_again(ws: Workspace, tmp_path: Path) -> None:
    result = run_python(
        f"""
        import os
        from runhistory import Workspace, Experiment
        run = Experiment(Workspace.from_config({str(tmp_path / 'ws')!r}), "forked").start_logging()
        for i in range(100):
            run.log("x", i)
        pid = os.fork()
        if pid == 0:
            run.log("child", 1)
            run.flush()
            os._exit(0)
        os.waitpid(pid, 0)
        run.complete()
        print(run.id)
        """,
        RUNHISTORY_FLUSH_INTERVAL="600",
    )
    metrics = ws.get_run(result.stdout.strip()).get_metrics()
    assert metrics == {"x": list(range(100)), "child": 1}
