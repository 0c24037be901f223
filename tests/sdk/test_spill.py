"""A store that stalls: points past the buffer's cap wait in a spill file and reach the store once,
in order, from the process that logged them or, after a kill -9, from ``runhistory sync``.

The database is held by a real ``sqlite3`` connection in ``BEGIN EXCLUSIVE`` in another process.
The logging process waits at most ``$RUNHISTORY_SQLITE_BUSY_TIMEOUT`` seconds per statement (set in
that process to :data:`BUSY_TIMEOUT_S` instead of the default 60 s, so that a stall outlasts it in
seconds: the store's retries give up and say "will retry").
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from runhistory import Workspace
from runhistory.spill import SpillReader
from tests.helpers import python_env, start_python, wait_until

BUSY_TIMEOUT_S = 0.2
POINTS = 1_200_000  # more than one store call takes (1M): some stay in memory past the 1 MB cap

LOGGER = """
    import sys, time
    from runhistory import Experiment, Workspace
    ws = Workspace.from_config({folder!r})
    run = Experiment(ws, "stalled").start_logging()
    print(run.id, flush=True)
    sys.stdin.readline()  # the database is locked now
    for i in range({points}):
        run.log("x", i, step=i)
    print("logged", flush=True)
"""

HOLDER = """
    import sqlite3, sys
    connection = sqlite3.connect({database!r}, isolation_level=None)
    connection.execute("BEGIN EXCLUSIVE")
    print("locked", flush=True)
    sys.stdin.readline()
    connection.execute("COMMIT")
"""


def start(code: str, **env: str) -> subprocess.Popen:
    """``python -c code`` with stdin, stdout and stderr piped (stdin tells it when to go on)."""
    return start_python(code, piped_stdin=True, **env)


def tell(process: subprocess.Popen) -> None:
    process.stdin.write("\n")
    process.stdin.flush()


def stderr_line_with(process: subprocess.Popen, text: str, timeout: float = 60) -> str:
    """The first line of the process's stderr that contains ``text`` (fails after ``timeout`` s)."""
    seen = []
    while True:
        ready, _, _ = select.select([process.stderr], [], [], timeout)
        assert ready, f"no stderr line with {text!r} within {timeout} s; got {seen}"
        line = process.stderr.readline()
        assert line, f"the process ended without a stderr line with {text!r}; got {seen}"
        if text in line:
            return line
        seen.append(line)


def stalled_logger(ws: Workspace, spool: Path, after: str = "", **env: str) -> tuple[subprocess.Popen, subprocess.Popen, str]:
    """A process that creates a run, then logs POINTS points while another process holds the
    database: (logger, holder, run id). The holder lets go when told."""
    folder = ws.tracking_uri[len("sqlite:///") :].rsplit("/", 1)[0]
    code = LOGGER.format(folder=folder, points=POINTS) + textwrap.indent(textwrap.dedent(after), "    ")
    logger = start(code, RUNHISTORY_SPOOL_DIR=str(spool), RUNHISTORY_SQLITE_BUSY_TIMEOUT=str(BUSY_TIMEOUT_S), **env)
    run_id = logger.stdout.readline().strip()
    assert run_id, logger.stderr.read()
    holder = start(HOLDER.format(database=ws.tracking_uri[len("sqlite:///") :]))
    assert holder.stdout.readline().strip() == "locked"
    tell(logger)
    assert logger.stdout.readline().strip() == "logged"  # run.log never waited for the database
    return logger, holder, run_id


def assert_stored_once_in_order(ws: Workspace, run_id: str, points: int) -> None:
    series = ws.get_run(run_id).get_metric_series(["x"])["x"]
    assert len(series.values) == points
    assert series.values == list(range(points)), "a point is missing, doubled or out of order"
    assert series.steps.tolist() == list(range(points))


def test_a_store_locked_past_its_busy_timeout_gets_every_point_once_and_in_order(ws: Workspace, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    logger, holder, run_id = stalled_logger(
        ws,
        spool,
        after="run.complete()\nprint('completed', flush=True)",
        RUNHISTORY_BUFFER_LIMIT_MB="1",
        RUNHISTORY_COMPLETE_TIMEOUT="300",
    )
    try:
        wait_until(lambda: list(spool.glob("*.spill")), 30, what="the points past the cap in a spill file")
        stderr_line_with(logger, "(will retry)")  # the store gave up on the lock: the stall outlasted it
    finally:
        tell(holder)
        holder.communicate(timeout=30)
    out, err = logger.communicate(timeout=300)
    assert logger.returncode == 0, err
    assert "completed" in out and "did not take" not in err
    assert_stored_once_in_order(ws, run_id, POINTS)
    assert not list(spool.glob("*.spill*")), "the spill file is deleted once written"


def test_after_a_kill_9_runhistory_sync_writes_the_spilled_points_once(ws: Workspace, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    logger, holder, run_id = stalled_logger(
        ws,
        spool,
        after="""
            buffer = ws.backends.buffer
            while buffer.memory_bytes() > 1 << 20:  # the watchdog moves what is past the cap
                time.sleep(0.05)
            pending = buffer.pending()  # after a spill under way is on disk
            print(pending.points - pending.in_memory, flush=True)
            time.sleep(600)
        """,
        RUNHISTORY_BUFFER_LIMIT_MB="1",
    )
    try:
        on_disk = int(logger.stdout.readline())
        os.kill(logger.pid, signal.SIGKILL)
        logger.communicate(timeout=30)
    finally:
        tell(holder)
        holder.communicate(timeout=30)
    [path] = spool.glob("*.spill")
    reader = SpillReader(path)
    spilled = sum(record.points for record in reader.records)
    reader.close()
    assert spilled == on_disk >= POINTS - (1 << 20) // 20  # all but what stayed in memory under the cap
    assert ws.get_run(run_id).get_metrics("x") == {}, "nothing reached the store before the kill"

    synced = sync(spool)
    assert synced.returncode == 0, synced.stderr
    assert f"Wrote {spilled:,} spilled metric points" in synced.stdout
    assert not list(spool.glob("*.spill*"))
    # the call under way when the watchdog spilled is kept in the file too: what was spilled is a prefix
    assert_stored_once_in_order(ws, run_id, spilled)
    again = sync(spool)
    assert again.returncode == 0 and "Nothing spooled" in again.stdout
    assert_stored_once_in_order(ws, run_id, spilled)


def test_complete_under_a_stall_says_how_many_points_are_pending_and_where(ws: Workspace, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    folder = ws.tracking_uri[len("sqlite:///") :].rsplit("/", 1)[0]
    logger = start(
        f"""
        import sys
        from runhistory import Experiment, Workspace
        run = Experiment(Workspace.from_config({folder!r}), "stalled").start_logging()
        print(run.id, flush=True)
        sys.stdin.readline()
        for i in range(1000):
            run.log("x", i)
        run.complete()
        print("completed", flush=True)
        """,
        RUNHISTORY_SPOOL_DIR=str(spool),
        RUNHISTORY_COMPLETE_TIMEOUT="1",
    )
    run_id = logger.stdout.readline().strip()
    holder = start(HOLDER.format(database=ws.tracking_uri[len("sqlite:///") :]))
    assert holder.stdout.readline().strip() == "locked"
    try:
        tell(logger)
        line = stderr_line_with(logger, "did not take")
        spilled = list(spool.glob("*.spill"))  # until the lock goes and the points are written
    finally:
        tell(holder)
        holder.communicate(timeout=30)
    assert f"did not take 1,000 pending metric points within 1 s while ending run {run_id}" in line
    assert len(spilled) == 1 and str(spilled[0]) in line and "runhistory sync" in line
    out, err = logger.communicate(timeout=120)
    assert logger.returncode == 0, err
    assert "completed" in out
    run = ws.get_run(run_id)
    assert run.get_status() == "Completed"
    assert run.get_metrics("x")["x"] == list(range(1000))  # written once the lock went, not lost
    assert not list(spool.glob("*.spill*"))


def sync(spool: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "runhistory.cli.main", "sync", "--spool-dir", str(spool)],
        env=python_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_client_spool_past_its_cap_sends_records_read_back_from_its_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from runhistory.client.spool import METRICS, REQUEST, Spool, SpoolRecord

    monkeypatch.setenv("RUNHISTORY_BUFFER_LIMIT_MB", "0.001")  # about 1 KB of payloads in memory
    sent: list[SpoolRecord] = []
    spool = Spool("http://127.0.0.1:9", sent.append, directory=tmp_path / "spool")
    records = [SpoolRecord(METRICS if i % 2 else REQUEST, f"id-{i}" if i % 2 else "", bytes([i]) * 700) for i in range(20)]
    for record in records:
        spool.add(record)
    assert spool.wait(30)
    assert sent == records
    assert not list((tmp_path / "spool").iterdir())


def test_sync_leaves_files_that_are_not_runhistorys_and_says_so_in_one_line(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    files = {"garbage.spill": b"garbage", "empty.spill": b"", "garbage.spool": b"\xff\xfe not json\n", "empty.spool": b""}
    for name, content in files.items():
        (spool / name).write_bytes(content)
    result = sync(spool)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1 and all(name in message for name in files), message
    assert {path.name: path.read_bytes() for path in spool.iterdir() if not path.name.endswith(".lock")} == files
