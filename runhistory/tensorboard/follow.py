"""Following runs into a local TensorBoard log folder while they run.

For each run (and each descendant, including children that appear later) a
:class:`RunFollower` keeps its folder up to date: the run's files under ``logs/`` (event
files its own code writes) are copied by appending new bytes to the same local file
(TensorBoard's fast loader never rereads a replaced file), and its run-history metrics are
exported incrementally. A :class:`Follower` thread polls every ``interval`` seconds until
every run has ended, then makes one last pass. One unreadable item (a log file that vanished,
a corrupt image) is reported once and skipped; following goes on.

A trial of a HyperDrive sweep is written, while it runs, in a live folder beside its own
(``NAME.running``) whose HParams session reads STATUS_RUNNING; when it ends, that folder is
removed and the trial written whole in its own folder with its final status. TensorBoard
never rereads a session's status (see :mod:`runhistory.tensorboard.history`), but both its
loaders drop a run whose event files are gone, and read a new run afresh. Followed runs that
are one sweep (with its trials below it) get the sweep's HParams experiment in its folder at
the first pass, so that the dashboard's columns are its parameters and primary metric.
"""

from __future__ import annotations

import shutil
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from runhistory.core.errors import RunHistoryError, StoreUnavailableError
from runhistory.store.base import RunStatus
from runhistory.eventlogs.records import HEADER_BYTES, first_bad_payload, scan_records
from runhistory.tensorboard.history import (
    TRIAL_CHECKS,
    HistoryWriter,
    live_folder,
    remove_previous_export,
    trial_hyperparameters,
)
from runhistory.tensorboard.layout import RunNode, new_children, plan, single_top

if TYPE_CHECKING:
    from runhistory.run import Run

LOGS_PREFIX = "logs/"
DEFAULT_INTERVAL_S = 0.25


class RecordChecker:
    """Checks the TFRecord framing of an event file as its bytes arrive, to report corruption once."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._pending = b""
        self._offset = 0  # file offset of the first pending byte
        self.problem: str | None = None

    def feed(self, data: bytes) -> None:
        """Check the complete records in what has arrived so far."""
        if self.problem is not None:
            return
        buffer = self._pending + data
        scan = scan_records(buffer, self._offset)
        if scan.corrupt:
            self.problem = f"{self.name} is corrupt at byte {scan.corrupt[0]} (bad record header)"
            return
        bad = first_bad_payload(buffer, scan)
        if bad is not None:
            at = self._offset + int(scan.starts[bad]) - HEADER_BYTES
            self.problem = f"{self.name} is corrupt at byte {at} (bad record checksum)"
            return
        self._pending = buffer[scan.end - self._offset :]
        self._offset = scan.end

    def finish(self) -> None:
        """At the end of the run: bytes left over mean a truncated last record."""
        if self.problem is None and self._pending:
            self.problem = f"{self.name} ends with a truncated record at byte {self._offset}"


class LogsCopier:
    """Copies a run's ``logs/`` files into its local folder, appending only new bytes (the first
    :meth:`sync` of a copier writes each file afresh, replacing a copy made before)."""

    def __init__(self, run: "Run", folder: Path, report) -> None:
        self._run = run
        self._folder = folder
        self._report = report
        self._artifacts = run.experiment.workspace.artifacts
        self._copied: dict[str, int] = {}
        self._checkers: dict[str, RecordChecker] = {}

    def sync(self, final: bool = False) -> int:
        """Copy what is new; returns the number of bytes copied."""
        copied = 0
        for name, size in self._artifacts.list(self._run.id, LOGS_PREFIX).items():
            done = self._copied.get(name, 0)
            if size != done:
                try:
                    copied += self._copy(name, size, done)
                except StoreUnavailableError:
                    raise
                except (RunHistoryError, OSError) as exc:  # this file only; tried again next pass
                    self._report(f"could not copy {name} of run {self._run.id}: {exc}")
        if final:
            for checker in self._checkers.values():
                checker.finish()
                self._report_problem(checker)
        return copied

    def _copy(self, name: str, size: int, done: int) -> int:
        local = self._folder / name[len(LOGS_PREFIX) :]
        local.parent.mkdir(parents=True, exist_ok=True)
        if size < done:  # the file was replaced by a shorter one: start it over
            local.unlink(missing_ok=True)
            self._checkers.pop(name, None)
            done = 0
        data = self._artifacts.read(self._run.id, name, done, size - done)
        # The first copy of a file replaces what an earlier copier left in this folder, never appends to it.
        with open(local, "ab" if done else "wb") as out:
            out.write(data)
        self._copied[name] = done + len(data)
        if "tfevents" in name:
            checker = self._checkers.setdefault(name, RecordChecker(f"{name} of run {self._run.id}"))
            checker.feed(data)
            self._report_problem(checker)
        return len(data)

    def _report_problem(self, checker: RecordChecker) -> None:
        if checker.problem is not None:
            self._report(f"{checker.problem}; TensorBoard reads it up to there.")


class RunFollower:
    """Keeps one run's folder up to date: its ``logs/`` files and its run-history metrics; a
    sweep's trial in its live folder until it ends (see the module docstring).

    With ``describes_sweep`` (the one top-level run followed), a HyperDrive sweep run gets the
    HParams experiment of its trials.
    """

    def __init__(
        self,
        node: RunNode,
        root: Path,
        report,
        hparam_names: Sequence[str] = (),
        describes_sweep: bool = False,
    ) -> None:
        self.node = node
        self._folder = root / node.folder
        self._report = report
        self._hparam_names = list(hparam_names)
        self._describes_sweep = describes_sweep
        remove_previous_export(self._folder)  # and a live folder left by an earlier follower
        self._history: HistoryWriter | None = None
        self._logs: LogsCopier | None = None
        self._live: Path | None = None
        self._trial_checks_left = TRIAL_CHECKS
        self.ended = False

    def sync(self) -> None:
        """One pass; after the run has ended, a last complete pass, then nothing more."""
        if self.ended:
            return
        final = self.node.run.get_status() in RunStatus.TERMINAL
        if self._history is None and not final and not self._start():
            return
        if final and (self._history is None or self._live is not None):
            self._write_whole()
        else:
            self._sync_into(final)
        if final:
            self.ended = True

    def _start(self) -> bool:
        """The writers of a run still going: a trial's into its live folder, the rest into their own;
        False while a child of a sweep may still get its trial's parameters (see TRIAL_CHECKS)."""
        is_trial = self.node.in_sweep and trial_hyperparameters(self.node.run.get_properties()) is not None
        if self.node.in_sweep and not is_trial and self._trial_checks_left > 0:
            self._trial_checks_left -= 1
            return False
        self._live = live_folder(self._folder) if is_trial else None
        self._history, self._logs = self._writers(self._live or self._folder, live=is_trial)
        return True

    def _write_whole(self) -> None:
        """At the end of a run not followed before, or followed live: drop the live folder (TensorBoard
        forgets its run) and write the run whole, with its final status, in its own folder."""
        if self._history is not None:
            self._history.close()
        if self._live is not None:
            shutil.rmtree(self._live, ignore_errors=True)
        self._history, self._logs = self._writers(self._folder, live=False)
        self._live = None
        self._sync_into(final=True)

    def _writers(self, folder: Path, live: bool) -> tuple[HistoryWriter, LogsCopier]:
        history = HistoryWriter(
            self.node.run,
            folder,
            in_sweep=self.node.in_sweep,
            hparam_names=self._hparam_names,
            report=self._report,
            live_session=live,
            describes_sweep=self._describes_sweep,
        )
        return history, LogsCopier(self.node.run, folder, self._report)

    def _sync_into(self, final: bool) -> None:
        """One pass of the current writers (there are some once the run is started)."""
        assert self._logs is not None and self._history is not None
        try:
            self._logs.sync(final=final)
        finally:  # the metrics are written whatever happened to the logs
            self._history.sync(final=final)
        if final:
            self._history.close()

    def close(self) -> None:
        """Close the run's event file."""
        if self._history is not None:
            self._history.close()


class Follower:
    """Follows runs and their descendants into ``root`` in a background thread."""

    def __init__(self, runs: list["Run"], root: Path, interval: float = DEFAULT_INTERVAL_S, hparam_names: Sequence[str] = ()) -> None:
        self._root = root
        self._interval = interval
        self._hparam_names = list(hparam_names)
        self._reported: set[str] = set()
        nodes = plan(runs, recursive=True)
        top = single_top(nodes)
        self._followers = [
            RunFollower(node, root, self.report, hparam_names, describes_sweep=node is top) for node in nodes
        ]
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.first_pass_done = threading.Event()

    @property
    def done(self) -> bool:
        """Whether every run has ended and had its last pass."""
        return all(follower.ended for follower in self._followers)

    def report(self, message: str) -> None:
        """Print a problem once, however often it is seen."""
        if message not in self._reported:
            self._reported.add(message)
            print(f"runhistory tensorboard: {message}", file=sys.stderr)

    def sync_once(self) -> None:
        """One pass over every run still going, picking up children that appeared."""
        self._adopt_new_children()
        for follower in list(self._followers):
            try:
                follower.sync()
            except Exception as exc:  # noqa: BLE001 - one run's trouble must not stop the others
                self.report(f"could not follow run {follower.node.run.id}: {exc}")

    def _adopt_new_children(self) -> None:
        known = {follower.node.run.id for follower in self._followers}
        taken = {follower.node.folder for follower in self._followers}
        for follower in list(self._followers):
            if not follower.ended:
                for node in new_children(follower.node, known, taken):
                    known.add(node.run.id)
                    self._followers.append(RunFollower(node, self._root, self.report, self._hparam_names))

    def start(self) -> None:
        """Start following in a daemon thread (the first pass included)."""
        self._thread = threading.Thread(target=self._loop, name="runhistory-tensorboard-follow", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        try:
            self.sync_once()
        finally:
            self.first_pass_done.set()
        while not self.done and not self._stop.wait(self._interval):
            self.sync_once()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until every run has ended and had its last pass; whether they all have."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self.done

    def stop(self) -> None:
        """Stop following and close the event files."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        for follower in self._followers:
            follower.close()
