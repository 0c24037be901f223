"""A job's first steps on an embedded (SQLite) run history, with the standard library alone.

A job's supervisor starts its script before it imports SQLAlchemy and numpy (about half a second,
seconds on a busy machine). Three things cannot wait that long: right before the script starts, the
run must be claimed (moved to Starting unless it was canceled meanwhile: the same change as
``RunStore.set_status(run_id, "Starting")``, which never moves a canceled or ended run); once it
has started, the run must read Running; and the run must keep heartbeating until the full store is
open, or readers would take it for lost. Each is one statement here, in milliseconds.
"""

from __future__ import annotations

import sqlite3
import time
from urllib.parse import quote

from runhistory.core.status import RunStatus

SQLITE_PREFIX = "sqlite:///"
_BLOCKED = (*sorted(RunStatus.TERMINAL), RunStatus.CANCEL_REQUESTED)
_BUSY_TIMEOUT_S = 60.0


def claim_start(tracking_uri: str, run_id: str) -> str | None:
    """Move the run to Starting unless it was canceled or has ended; its status afterwards.

    None when this cannot be done here (not an embedded store, no such run, or SQLite refused):
    the caller then asks the full store.
    """
    return _move_unless_ended(tracking_uri, run_id, "status = ?, heartbeat_time = ?", (RunStatus.STARTING, time.time()))


def mark_running(tracking_uri: str, run_id: str, at: float) -> str | None:
    """Move the run to Running, started ``at`` (unless it has a start time), unless it was canceled
    or has ended: the change ``RunStore.set_status(run_id, "Running", at=at)`` makes. Its status
    afterwards (None as for :func:`claim_start`)."""
    return _move_unless_ended(tracking_uri, run_id, "status = ?, start_time = COALESCE(start_time, ?)", (RunStatus.RUNNING, at))


def beat(tracking_uri: str, run_id: str) -> str | None:
    """Record a heartbeat of the run's supervisor; the run's status (None as for :func:`claim_start`)."""
    return _update_and_read_status(
        tracking_uri, run_id, "UPDATE runs SET heartbeat_time = ? WHERE id = ?", (time.time(), run_id)
    )


def _move_unless_ended(tracking_uri: str, run_id: str, assignments: str, values: tuple) -> str | None:
    """``UPDATE runs SET assignments`` for a run that was neither canceled nor has ended; its status."""
    marks = ", ".join("?" * len(_BLOCKED))
    update = f"UPDATE runs SET {assignments} WHERE id = ? AND status NOT IN ({marks})"
    return _update_and_read_status(tracking_uri, run_id, update, (*values, run_id, *_BLOCKED))


def _update_and_read_status(tracking_uri: str, run_id: str, update: str, parameters: tuple) -> str | None:
    if not tracking_uri.startswith(SQLITE_PREFIX):
        return None
    database = tracking_uri[len(SQLITE_PREFIX) :]
    try:  # mode=rw: never creates a database where there is none
        connection = sqlite3.connect(f"file:{quote(database)}?mode=rw", uri=True, timeout=_BUSY_TIMEOUT_S, isolation_level=None)
    except sqlite3.Error:
        return None
    try:
        connection.execute("BEGIN IMMEDIATE")
        connection.execute(update, parameters)
        row = connection.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()
        connection.execute("COMMIT")
    except sqlite3.Error:
        return None
    finally:
        connection.close()
    return None if row is None else row[0]
