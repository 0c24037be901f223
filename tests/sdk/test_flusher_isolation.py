"""The background flusher isolates failures: a batch the store refuses for good is dropped alone
(one message naming run, metric and reason); a failure that may pass keeps every point and retries.

``run.log`` refuses what no store could keep when it is logged; the points here reach the buffer
the ways that remain (another handle, another process, a caller of the buffer itself), so that
the flusher's own defence is what is tested.
"""

from __future__ import annotations

import math
import sqlite3
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from runhistory import Experiment, Run, Workspace
from runhistory.core.errors import StoreUnavailableError
from runhistory.metrics import is_transient
from runhistory.store.base import MetricKind, RunStatus
from runhistory.core.validation import MAX_STRING_VALUE_BYTES
from tests.helpers import run_python, start_python
from tests.postgres import BACKENDS

POISONS = {
    "empty name": ("", 1.0, None, None, MetricKind.SCALAR, "is empty"),
    "lone surrogate name": ("\ud800", 1.0, None, None, MetricKind.SCALAR, "lone surrogate"),
    "int past int64": ("big", 2**63, None, None, MetricKind.SCALAR, "64-bit range"),
    "step past int64": ("step", 1.0, 2**63, None, MetricKind.SCALAR, "64-bit integer range"),
    "float step": ("fstep", 1.0, 1e23, None, MetricKind.SCALAR, "step must be an integer"),
    "string over 1 MiB": ("long", "x" * (MAX_STRING_VALUE_BYTES + 1), None, None, MetricKind.SCALAR, "1 MiB"),
    "NaN wall time": ("when", 1.0, None, math.nan, MetricKind.SCALAR, "wall time"),
    "bogus kind": ("kind", 1.0, None, None, "bogus", "unknown kind"),
}


def dropped_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("runhistory: dropped")]


@BACKENDS
@pytest.mark.parametrize("poison", list(POISONS))
def test_a_poison_point_never_holds_back_other_series_or_runs(
    exp: Experiment, ws: Workspace, poison: str, capsys: pytest.CaptureFixture
) -> None:
    name, value, step, at, kind, reason = POISONS[poison]
    poisoned, other = exp.start_logging(), exp.start_logging()
    poisoned.log("fine", 1.0)
    ws.backends.buffer.series(poisoned.id, name, kind).add(value, step, time.time() if at is None else at)
    for i in range(100):
        other.log("loss", i * 0.5)
    poisoned.log("fine", 2.0)
    other.complete()  # flushes everything pending: the poison must not make it raise
    assert other.get_status() == RunStatus.COMPLETED
    assert other.get_metrics() == {"loss": [i * 0.5 for i in range(100)]}
    assert poisoned.get_metrics() == {"fine": [1.0, 2.0]}
    poisoned.log("fine", 3.0)
    poisoned.complete()
    assert poisoned.get_status() == RunStatus.COMPLETED and poisoned.get_metrics() == {"fine": [1.0, 2.0, 3.0]}
    lines = dropped_lines(capsys.readouterr().err)
    assert len(lines) == 1, lines
    assert poisoned.id in lines[0] and repr(name) in lines[0] and reason in lines[0]


@BACKENDS
def test_logging_through_a_stale_handle_of_a_finished_run_is_dropped_alone(
    exp: Experiment, ws: Workspace, capsys: pytest.CaptureFixture
) -> None:
    run, other = exp.start_logging(), exp.start_logging()
    stale = ws.get_run(run.id)  # read while Running
    run.complete()
    stale.log("late", 1.0)  # this handle cannot know; the store refuses it
    other.log("x", 1.0)
    other.complete()
    assert other.get_metrics() == {"x": 1.0} and run.get_metrics() == {}
    [line] = dropped_lines(capsys.readouterr().err)
    assert run.id in line and "'late'" in line and "has ended (Completed)" in line


def test_a_series_of_another_kind_in_another_process_refuses_only_that_series(
    exp: Experiment, ws: Workspace, capsys: pytest.CaptureFixture
) -> None:
    run = exp.start_logging()
    run_python(
        f"""
        from runhistory import Workspace
        run = Workspace({str(ws.tracking_uri)!r}).get_run({run.id!r})
        run.log_list("shared", [1, 2])
        run.flush()
        """
    )
    run.log("shared", 3.0)  # a scalar here, a list there: the store refuses this batch
    run.log("own", 4.0)
    run.complete()
    assert run.get_metrics() == {"shared": [1, 2], "own": 4.0}
    [line] = dropped_lines(capsys.readouterr().err)
    assert "'shared'" in line and "is a list metric" in line


def test_a_database_locked_by_another_process_keeps_every_point_and_retries(
    ws: Workspace, exp: Experiment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    import runhistory.store.sql.store as sql_store

    # Give up on a lock at once (instead of the store's 60 s patience) so that the flusher sees it.
    monkeypatch.setattr(sql_store, "_RETRIES_WHEN_LOCKED", 1)
    engine = ws.store._engine
    sa.event.listen(engine, "connect", lambda connection, _record: connection.execute("PRAGMA busy_timeout=50"))
    engine.dispose()
    first, second = exp.start_logging(), exp.start_logging()
    database = ws.tracking_uri[len("sqlite:///") :]
    holder = start_python(
        f"""
        import sqlite3, sys, time
        connection = sqlite3.connect({database!r}, isolation_level=None)
        connection.execute("BEGIN EXCLUSIVE")
        print("locked", flush=True)
        time.sleep(3)
        connection.execute("COMMIT")
        """
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        for i in range(1000):
            first.log("a", i)
            second.log("b", -i)
        with pytest.raises(StoreUnavailableError, match="locked"):
            ws.backends.buffer.flush()  # transient: raised, nothing dropped
        ws.backends.buffer.flush_quietly()
        assert "will retry" in capsys.readouterr().err
    finally:
        holder.wait(30)
    deadline = time.monotonic() + 30
    while True:  # the background flusher gets through once the lock is gone
        try:
            with sqlite3.connect(database, timeout=5) as probe:
                counts = dict(probe.execute("SELECT name, count FROM metrics").fetchall())
        except sqlite3.OperationalError:
            counts = {}
        if counts == {"a": 1000, "b": 1000} or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert counts == {"a": 1000, "b": 1000}
    assert first.get_metrics("a")["a"] == list(range(1000)) and second.get_metrics("b")["b"] == [-i for i in range(1000)]
    assert dropped_lines(capsys.readouterr().err) == []
    first.complete()
    second.complete()


def test_failures_are_classified_transient_or_permanent() -> None:
    from runhistory.core.errors import InvalidNameError, MetricValueError, NotFoundError, RunFinishedError, RunHistoryError

    for error in (StoreUnavailableError("x"), ConnectionResetError(), TimeoutError(), sqlite3.OperationalError("locked")):
        assert is_transient(error), error
    for error in (InvalidNameError("x"), MetricValueError("x"), RunFinishedError("x"), NotFoundError("x"), RunHistoryError("x"), OverflowError()):
        assert not is_transient(error), error
