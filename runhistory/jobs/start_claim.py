"""Claiming a job's start on an embedded (SQLite) run history with the standard library alone.

A job's supervisor must know, right before it starts the script, that the run was not canceled
meanwhile. Opening the full store first (importing SQLAlchemy and numpy) takes about half a
second, which would be the script's start-up time; this one conditional UPDATE takes milliseconds.
It makes the same change as ``RunStore.set_status(run_id, "Starting")`` (which never moves a
canceled or ended run), atomically, so a cancel that comes after it finds a job that started.
"""

from __future__ import annotations

import sqlite3
import time
from urllib.parse import quote

from runhistory.status import RunStatus

SQLITE_PREFIX = "sqlite:///"
_BLOCKED = (*sorted(RunStatus.TERMINAL), RunStatus.CANCEL_REQUESTED)
_BUSY_TIMEOUT_S = 60.0


def claim_start(tracking_uri: str, run_id: str) -> str | None:
    """Move the run to Starting unless it was canceled or has ended; its status afterwards.

    None when this cannot be done here (not an embedded store, no such run, or SQLite refused):
    the caller then asks the full store.
    """
    if not tracking_uri.startswith(SQLITE_PREFIX):
        return None
    database = tracking_uri[len(SQLITE_PREFIX) :]
    try:  # mode=rw: never creates a database where there is none
        connection = sqlite3.connect(f"file:{quote(database)}?mode=rw", uri=True, timeout=_BUSY_TIMEOUT_S, isolation_level=None)
    except sqlite3.Error:
        return None
    try:
        connection.execute("BEGIN IMMEDIATE")
        marks = ", ".join("?" * len(_BLOCKED))
        connection.execute(
            f"UPDATE runs SET status = ?, heartbeat_time = ? WHERE id = ? AND status NOT IN ({marks})",
            (RunStatus.STARTING, time.time(), run_id, *_BLOCKED),
        )
        row = connection.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()
        connection.execute("COMMIT")
    except sqlite3.Error:
        return None
    finally:
        connection.close()
    return None if row is None else row[0]
