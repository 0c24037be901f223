"""Metric values and names, and the client-side buffer that writes them in the background.

``run.log`` only validates and extends a flat list by ``value, step, wall_time``; a daemon
thread (one per store per process) takes what accumulated every ``flush_interval``
seconds and writes it as one batch. It also flushes before reads, when a run ends, at
interpreter exit and on SIGTERM. A write that failed for a reason that may pass keeps its
points for the next try; a batch the store refuses for good is dropped alone (see
:meth:`MetricsBuffer.flush`), so that one bad point never holds back other series or runs.
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
import threading
import weakref
from typing import Any

from runhistory.core import settings
from runhistory.core.errors import MetricValueError, NotFoundError, RunFinishedError, RunHistoryError, StoreUnavailableError
from runhistory.store.base import MetricBatch, RunStore



class _Series:
    """The pending points of one series of one run.

    ``points`` is flat, ``[value, step, time, value, step, time, ...]``: one C-level
    ``extend`` per point is atomic under the GIL, creates no per-point object that
    survives, and the flusher splits it with three slices.
    """

    __slots__ = ("run_id", "name", "kind", "description", "points")

    def __init__(self, run_id: str, name: str, kind: str, description: str) -> None:
        self.run_id = run_id
        self.name = name
        self.kind = kind
        self.description = description
        self.points: list[Any] = []


class MetricsBuffer:
    """Pending points of every run this process logs to one store, and their flusher."""

    def __init__(self, store: RunStore, flush_interval: float | None = None) -> None:
        self._store = store
        self._interval = flush_interval or settings.FLUSH_INTERVAL.positive_number()
        self._series: dict[tuple[str, str], _Series] = {}
        self._flush_lock = threading.RLock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_error: str | None = None
        self._reported: set[str] = set()  # refusals already reported on stderr
        _live_buffers.add(self)
        _install_sigterm_flush_once()

    def series(self, run_id: str, name: str, kind: str, description: str = "") -> list:
        """The flat list that points of this series are added to, ``points.extend((value, step, time))``."""
        key = (run_id, name)
        found = self._series.get(key)
        if found is None:
            found = self._series.setdefault(key, _Series(run_id, name, kind, description))
            self._ensure_thread()
        elif found.kind != kind:
            raise MetricValueError(
                f"Metric {name!r} of run {run_id} was logged as a {found.kind} metric; "
                f"it cannot also take {kind} values. Use another name."
            )
        return found.points

    def flush(self) -> None:
        """Write every pending point now.

        A failure that may pass (the store is unreachable or locked) raises and keeps every
        point pending. A batch the store refuses for good (a bad name or value, a run that has
        ended or does not exist) is found among the others, which are written, and dropped
        with one message on stderr naming its run, metric and the reason.
        """
        with self._flush_lock:
            taken = [(series, len(series.points)) for series in list(self._series.values()) if series.points]
            if not taken:
                return
            try:
                self._store.append_metrics([_batch(series, length) for series, length in taken])
            except Exception as exc:  # noqa: BLE001 - classified: transient ones are raised again
                if is_transient(exc):
                    raise
                self._write_isolating(taken)
                return
            _settle(taken)

    def _write_isolating(self, taken: list[tuple["_Series", int]]) -> None:
        """Write run by run, then series by series, dropping only what the store refuses for good."""
        by_run: dict[str, list[tuple[_Series, int]]] = {}
        for series, length in taken:
            by_run.setdefault(series.run_id, []).append((series, length))
        for run_id, group in by_run.items():
            error = self._try_write(group)
            if error is None:
                continue
            if isinstance(error, (RunFinishedError, NotFoundError)) or len(group) == 1:
                self._drop(group, error)  # the run itself refuses: every series of it alike
                continue
            for one in group:
                error = self._try_write([one])
                if error is not None:
                    self._drop([one], error)

    def _try_write(self, group: list[tuple["_Series", int]]) -> Exception | None:
        """Write ``group`` and settle it; the permanent refusal if any (a transient failure raises)."""
        try:
            self._store.append_metrics([_batch(series, length) for series, length in group])
        except Exception as exc:  # noqa: BLE001 - classified below
            if is_transient(exc):
                raise
            return exc
        _settle(group)
        return None

    def _drop(self, group: list[tuple["_Series", int]], error: Exception) -> None:
        names = ", ".join(repr(series.name) for series, _ in group)
        points = sum(length // 3 for _, length in group)
        run_id = group[0][0].run_id
        key = f"{run_id}\0{names}\0{error}"
        if key not in self._reported:
            self._reported.add(key)
            print(
                f"runhistory: dropped {points} point(s) of metric {names} of run {run_id}, which the store "
                f"at {self._store.uri} refused: {error}",
                file=sys.stderr,
            )
        _settle(group)

    def forget_run(self, run_id: str) -> None:
        """Drop the (already flushed) series of a run that has ended."""
        with self._flush_lock:
            for key in [key for key in self._series if key[0] == run_id]:
                if not self._series[key].points:
                    del self._series[key]

    def discard_inherited(self) -> None:
        """In a forked child: drop the parent's pending points (the parent writes them)."""
        for series in self._series.values():
            series.points.clear()
        self._thread = None
        self._flush_lock = threading.RLock()

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="runhistory-flusher", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            self._wake.wait(self._interval)
            self._wake.clear()
            self.flush_quietly()

    def flush_quietly(self) -> None:
        """Flush, reporting a failure once on stderr instead of raising (points stay pending)."""
        try:
            self.flush()
            self._last_error = None
        except Exception as exc:  # noqa: BLE001 - a background writer must not die
            message = f"runhistory: could not write metrics to {self._store.uri} (will retry): {exc}"
            if message != self._last_error:
                print(message, file=sys.stderr)
                self._last_error = message


def is_transient(error: BaseException) -> bool:
    """Whether a failed write may succeed later unchanged (keep the points and retry) rather
    than being refused for good by the store (drop them, saying why)."""
    if isinstance(error, StoreUnavailableError):
        return True
    if isinstance(error, RunHistoryError):
        return False
    if isinstance(error, (OSError, TimeoutError)):
        return True
    return any(cls.__name__ in _TRANSIENT_NAMES for cls in type(error).__mro__)


# Raw errors of the database drivers and HTTP client that mean "not now" (by name: neither
# SQLAlchemy nor httpx is imported for this).
_TRANSIENT_NAMES = frozenset({"OperationalError", "TransportError", "InterfaceError", "DisconnectionError"})


def _settle(taken: list[tuple["_Series", int]]) -> None:
    """Remove points that were written (or dropped) from their series' pending lists."""
    for series, length in taken:
        del series.points[:length]


def _batch(series: _Series, length: int) -> MetricBatch:
    points = series.points
    values, steps, times = points[0:length:3], points[1:length:3], points[2:length:3]
    return MetricBatch(series.run_id, series.name, series.kind, values, steps, times, series.description)


_live_buffers: "weakref.WeakSet[MetricsBuffer]" = weakref.WeakSet()


def flush_all_buffers() -> None:
    """Flush every buffer of this process (at exit and on SIGTERM)."""
    for buffer in list(_live_buffers):
        buffer.flush_quietly()


_sigterm_installed = False


def _install_sigterm_flush_once() -> None:
    """Flush on SIGTERM, then let the signal do what it did before (installed on first logging)."""
    global _sigterm_installed
    if _sigterm_installed or threading.current_thread() is not threading.main_thread():
        return
    _sigterm_installed = True
    previous = signal.getsignal(signal.SIGTERM)

    def _on_sigterm(signum, frame) -> None:
        flush_all_buffers()
        if callable(previous):
            previous(signum, frame)
        elif previous != signal.SIG_IGN:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)

    signal.signal(signal.SIGTERM, _on_sigterm)


atexit.register(flush_all_buffers)
