"""Watching a run: wait for its end (``Run.wait_for_completion``), and stream its driver log
(a job's stdout and stderr, in the run's files) while it grows."""

from __future__ import annotations

import codecs
import sys
import time
from typing import TYPE_CHECKING, Any, TextIO

from runhistory.core.errors import ArtifactNotFoundError, RunFailedError, RunHistoryError, WaitTimeoutError
from runhistory.core.status import RunStatus

if TYPE_CHECKING:
    from runhistory.artifacts.base import ArtifactStore
    from runhistory.run import Run

DRIVER_LOG = "system_logs/driver.log"  # a job's stdout and stderr, as its supervisor writes them
POLL_INTERVAL_S = 0.25
ADMIT_INTERVAL_S = 5.0


class LogReader:
    """Reads what is new in one of a run's files (ranged reads), decoded as UTF-8 text."""

    def __init__(self, artifacts: "ArtifactStore", run_id: str, name: str = DRIVER_LOG) -> None:
        self._artifacts = artifacts
        self._run_id = run_id
        self._name = name
        self._offset = 0
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def read_new(self) -> str:
        """The text added since the last call ("" when nothing was, or the file does not exist yet)."""
        try:
            data = self._artifacts.read(self._run_id, self._name, self._offset)
        except ArtifactNotFoundError:
            return ""
        self._offset += len(data)
        return self._decoder.decode(data)

    @property
    def started(self) -> bool:
        """Whether any byte was read yet."""
        return self._offset > 0


def follow_log(run: "Run", out: TextIO, follow: bool = True, header: bool = False) -> str:
    """Write the run's driver log to ``out``; with ``follow``, as it grows until the run ends.

    Returns the run's final (or, without ``follow``, current) status.
    """
    reader = LogReader(run.workspace.artifacts, run.id)
    while True:
        status = run.get_status()  # before reading: a terminal status means the log is whole
        _write(out, reader, header)
        if not follow or status in RunStatus.TERMINAL:
            return status
        time.sleep(POLL_INTERVAL_S)


def _write(out: TextIO, reader: LogReader, header: bool) -> None:
    first = not reader.started
    text = reader.read_new()
    if not text:
        return
    if first and header:
        out.write(f"Streaming {DRIVER_LOG}\n{'=' * (len(DRIVER_LOG) + 10)}\n\n")
    out.write(text)
    out.flush()


def wait_for_run(
    run: "Run", show_output: bool = False, raise_on_error: bool = True, timeout: float | None = None
) -> dict[str, Any]:
    """Block until ``run`` ends (see ``Run.wait_for_completion``); returns its details."""
    deadline = None if timeout is None else time.monotonic() + timeout
    out = sys.stdout
    reader = LogReader(run.workspace.artifacts, run.id) if show_output else None
    if show_output:
        print(f"RunId: {run.id}", file=out)
        print(f"Run: {run.record.experiment_name}:{run.number}\n", file=out, flush=True)
    previous = None
    queue = _QueueTender(run)
    while True:
        status = run.get_status()
        queue.tend(status)
        if reader is not None:
            _write(out, reader, header=True)
        if status in RunStatus.TERMINAL:  # NotResponding is not: its process may come back
            break
        if show_output and status == RunStatus.NOT_RESPONDING != previous:
            print(f"Run {run.id} is NotResponding (its process stopped heartbeating); still waiting.", file=out, flush=True)
        previous = status
        if deadline is not None and time.monotonic() > deadline:
            raise WaitTimeoutError(f"Run {run.id} is still {status} after {timeout:g} s of waiting.")
        time.sleep(POLL_INTERVAL_S)
    details = run.get_details()
    if show_output:
        _print_summary(out, run, details)
    if raise_on_error and status == RunStatus.FAILED:
        message = (details.get("error") or {}).get("message") or "no error was recorded"
        raise RunFailedError(f"Run {run.id} failed: {message}")
    return details


class _QueueTender:
    """While a job waits queued on a target that keeps its own queue (Ray), admit what has room
    every ``ADMIT_INTERVAL_S``: a queue whose running jobs were all lost moves on while someone waits."""

    def __init__(self, run: "Run") -> None:
        self._run = run
        self._next = time.monotonic() + ADMIT_INTERVAL_S
        self._target: Any = None
        self._looked = False

    def tend(self, status: str) -> None:
        if status not in (RunStatus.QUEUED, RunStatus.STARTING) or time.monotonic() < self._next:
            return
        self._next = time.monotonic() + ADMIT_INTERVAL_S
        if not self._looked:
            self._looked = True
            target = self._run.workspace.find_compute_target(self._run.record.target)
            self._target = target if target is not None and target.keeps_own_queue else None
        if self._target is not None:
            try:
                self._target.admit_queued_runs()
            except RunHistoryError:  # a cluster that does not answer now: the next tick tries again
                pass


def _print_summary(out: TextIO, run: "Run", details: dict[str, Any]) -> None:
    record = run.record
    lines = ["", "Execution Summary", "=================", f"RunId: {run.id}", f"Status: {record.status}"]
    if record.start_time is not None and record.end_time is not None:
        lines.append(f"Duration: {record.end_time - record.start_time:.1f} s")
    error = details.get("error")
    if error:
        lines.append(f"Error: {error.get('message', '')}")
    print("\n".join(lines) + "\n", file=out, flush=True)
