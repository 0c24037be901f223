"""Metric values and names, and the client-side buffer that writes them in the background.

``run.log`` only validates and extends a flat list by ``value, step, wall_time``; a daemon
thread (one per store per process) takes what accumulated every ``flush_interval``
seconds and writes it as one batch. It also flushes before reads, when a run ends, at
interpreter exit and on SIGTERM. A failed write keeps its points for the next try.
"""

from __future__ import annotations

import atexit
import numbers
import os
import re
import signal
import sys
import threading
import weakref
from typing import Any

import numpy as np

from runhistory.errors import InvalidNameError, MetricValueError
from runhistory.store.base import MetricBatch, RunStore

MAX_NAME_LENGTH = 255
DEFAULT_FLUSH_INTERVAL_S = 0.5
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def validate_name(name: Any, what: str, where: str) -> str:
    """A metric, tag or property name: a non-empty string of at most 255 printable characters."""
    if not isinstance(name, str):
        raise InvalidNameError(f"The {what} name of {where} must be a string, got {type(name).__name__} {name!r}.")
    if not name:
        raise InvalidNameError(f"The {what} name of {where} is empty; give it a name.")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidNameError(
            f"The {what} name {name[:40]!r}... of {where} has {len(name)} characters; the limit is {MAX_NAME_LENGTH}."
        )
    if _CONTROL.search(name):
        raise InvalidNameError(f"The {what} name {name!r} of {where} contains control characters.")
    return name


def validate_text_value(key: str, text: str, what: str, where: str) -> str:
    """A tag or property value as stored: a string without NUL characters (no database keeps those)."""
    if "\x00" in text:
        raise MetricValueError(f"The value of {what} {key!r} of {where} contains a NUL character (\\x00); remove it.")
    return text


def coerce_value(name: str, value: Any, where: str) -> int | float | str:
    """A metric value as int, float or str (the fast path in ``run.log`` handles exact int/float)."""
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, (int, float, str)):
        return value
    if isinstance(value, np.generic) and isinstance(value.item(), (int, float)):
        return value.item()
    if isinstance(value, numbers.Real):
        return float(value)
    hint = ""
    if isinstance(value, (list, tuple, np.ndarray)):
        hint = " To log a list of values, use run.log_list(name, values)."
    elif isinstance(value, dict):
        hint = " To log several columns, use run.log_row(name, **columns) or run.log_table(name, table)."
    raise MetricValueError(
        f"Metric {name!r} of {where}: a value must be a number or a string, got {type(value).__name__}.{hint}"
    )


def coerce_step(name: str, step: Any, where: str) -> int:
    """A step as a Python int."""
    if isinstance(step, (int, np.integer)) and not isinstance(step, (bool, np.bool_)):
        return int(step)
    raise MetricValueError(f"Metric {name!r} of {where}: step must be an integer, got {type(step).__name__} {step!r}.")


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
        self._interval = flush_interval or float(os.environ.get("RUNHISTORY_FLUSH_INTERVAL", DEFAULT_FLUSH_INTERVAL_S))
        self._series: dict[tuple[str, str], _Series] = {}
        self._flush_lock = threading.RLock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_error: str | None = None
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
        """Write every pending point now; raises if the store refuses them (they stay pending)."""
        with self._flush_lock:
            taken = [(series, len(series.points)) for series in list(self._series.values()) if series.points]
            if not taken:
                return
            self._store.append_metrics([_batch(series, length) for series, length in taken])
            for series, length in taken:
                del series.points[:length]

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
