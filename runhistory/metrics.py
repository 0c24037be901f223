"""Metric values and names, and the client-side buffer that writes them in the background.

``run.log`` only validates and appends one packed record (value, step, wall time: 16 bytes, 20
with a step) to its series' ``bytearray``; a daemon thread (one per store per process) takes
what accumulated every ``flush_interval`` seconds and writes it, as numpy arrays, in calls of
at most :data:`MAX_POINTS_PER_CALL` points, each under a batch id so that a call retried after a
lost reply is written once. It also flushes before reads, when a run ends, at interpreter exit
and on SIGTERM. A write that failed for a reason that may pass keeps its points for the next try;
a batch the store refuses for good is dropped alone (see :func:`write_batches`), so that one bad
point never holds back other series or runs.

Memory is capped (``$RUNHISTORY_BUFFER_LIMIT_MB``): a watchdog thread, which goes on while the
flusher waits inside a slow store call, moves the oldest pending points to a spill file
(:mod:`runhistory.spill`) once the cap is passed. Points are written in the order they were
taken from memory: those being written when the spill starts, then the spill file, then what is
in memory. Ending a run waits up to ``$RUNHISTORY_COMPLETE_TIMEOUT`` seconds for its points, then
keeps what is still pending in the spill file and says so; ``runhistory sync`` writes the spill
file of a process that ended before its store answered.
"""

from __future__ import annotations

import atexit
import itertools
import os
import secrets
import signal
import struct
import sys
import threading
import time
import warnings
import weakref
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from runhistory.core import settings
from runhistory.core.errors import MetricValueError, NotFoundError, RunFinishedError, RunHistoryError, StoreUnavailableError
from runhistory.core.uris import redact_uri
from runhistory.spill import SpillFile, SpillReader, SpillRecord
from runhistory.store.base import MetricBatch, RunStore

MAX_POINTS_PER_CALL = 1_000_000  # points in one store call: a catch-up after a long stall is a few calls
_LIST_POINT_BYTES = 100  # about what a point of a string, row or image series costs in a list
_WATCH_INTERVAL_S = 0.2  # between two looks of the watchdog at the buffer's size (longer when looking is slow)
_RETIRE_AFTER_S = 1.0  # an emptied segment that no longer takes points is let go after this long
_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1


class _Layout:
    """How a packed segment stores one point: value (int64 or float64), step (none, int32 or
    int64) and wall time (float64), little-endian, without padding."""

    __slots__ = ("value_type", "stepless", "pack", "size", "dtype")

    def __init__(self, value_type: type, step_code: str) -> None:
        self.value_type = value_type
        self.stepless = not step_code
        value_code = "q" if value_type is int else "d"
        packer = struct.Struct("<" + value_code + step_code + "d")
        self.pack = packer.pack
        self.size = packer.size
        fields = [("v", "<i8" if value_type is int else "<f8")]
        if step_code:
            fields.append(("s", "<i4" if step_code == "i" else "<i8"))
        fields.append(("t", "<f8"))
        self.dtype = np.dtype(fields)


_LAYOUTS = {(kind, code): _Layout(kind, code) for kind in (int, float) for code in ("", "i", "q")}


def _layout_for(value: Any, step: Any, when: Any) -> _Layout | None:
    """The packed layout of a point, or None for a point kept as Python objects."""
    kind = type(value)
    if (kind is not int and kind is not float) or type(when) is not float:
        return None
    if step is None:
        return _LAYOUTS[kind, ""]
    if type(step) is not int:
        return None
    return _LAYOUTS[kind, "i" if _INT32_MIN <= step <= _INT32_MAX else "q"]


class _Piece:
    """Points taken from one segment: the raw records of a packed one (``layout``), unpacked
    into ``values``, ``steps`` (None: no steps were given) and ``times`` arrays together with
    the other pieces of its layout; lists for one kept as Python objects (``layout`` None)."""

    __slots__ = ("layout", "raw", "count", "values", "steps", "times")

    def __init__(self, layout: _Layout | None, raw: bytearray | None, count: int) -> None:
        self.layout = layout
        self.raw = raw
        self.count = count
        self.values: Any = None
        self.steps: Any = None
        self.times: Any = None


def _unpack(pieces: list[_Piece]) -> None:
    """Fill in the arrays of packed pieces: one ``frombuffer`` per layout, then a slice each."""
    by_layout: dict[_Layout, list[_Piece]] = {}
    for piece in pieces:
        if piece.layout is not None:
            by_layout.setdefault(piece.layout, []).append(piece)
    for layout, group in by_layout.items():
        records = np.frombuffer(b"".join([piece.raw for piece in group]), dtype=layout.dtype)
        values, times = records["v"].copy(), records["t"].copy()
        steps = None if layout.stepless else records["s"].astype(np.int64)
        at = 0
        for piece in group:
            end = at + piece.count
            piece.values, piece.times = values[at:end], times[at:end]
            piece.steps = None if steps is None else steps[at:end]
            piece.raw = None
            at = end


class _PackedSegment:
    """Consecutive points of one layout, one fixed-size record each in a bytearray.

    ``data += record`` is one C-level operation under the GIL, so that ``run.log`` needs no
    lock; the flusher copies a prefix of whole records and deletes it (a bytearray drops its
    front in O(1)). A record costs 16 bytes without a step, 20 with one (24 past int32).
    """

    __slots__ = ("value_type", "stepless", "pack", "layout", "data", "empty_since")

    def __init__(self, layout: _Layout) -> None:
        self.value_type = layout.value_type
        self.stepless = layout.stepless
        self.pack = layout.pack
        self.layout = layout
        self.data = bytearray()
        self.empty_since: float | None = None

    def count(self) -> int:
        return len(self.data) // self.layout.size

    def nbytes(self) -> int:
        return len(self.data)

    def take(self, most: int) -> _Piece | None:
        size = self.layout.size
        count = min(len(self.data) // size, most)
        if not count:
            return None
        raw = self.data[: count * size]
        del self.data[: count * size]
        return _Piece(self.layout, raw, count)

    def clear(self) -> None:
        del self.data[:]


class _ListSegment:
    """Consecutive points kept as Python objects (strings, rows, images, odd values), flat:
    ``[value, step, time, ...]``, one atomic ``extend`` per point."""

    __slots__ = ("points", "empty_since")
    value_type = None  # never a value's type: ``run.log``'s packed path never takes this segment
    stepless = None

    def __init__(self) -> None:
        self.points: list[Any] = []
        self.empty_since: float | None = None

    def count(self) -> int:
        return len(self.points) // 3

    def nbytes(self) -> int:
        return len(self.points) // 3 * _LIST_POINT_BYTES

    def take(self, most: int) -> _Piece | None:
        count = min(len(self.points) // 3, most)
        if not count:
            return None
        taken = self.points[: 3 * count]
        del self.points[: 3 * count]
        piece = _Piece(None, None, count)
        piece.values, piece.steps, piece.times = taken[0::3], taken[1::3], taken[2::3]
        return piece

    def clear(self) -> None:
        self.points.clear()


_NO_SEGMENT = _ListSegment()  # the tail of a series that has none yet


class SeriesBuffer:
    """The pending points of one series of one run: segments of one layout each, oldest first.

    Only :meth:`add` (any thread) appends, and only at the tail; only the buffer's flusher and
    watchdog (one at a time) take, and only from the front.
    """

    __slots__ = ("run_id", "name", "kind", "description", "segments", "tail")

    def __init__(self, run_id: str, name: str, kind: str, description: str) -> None:
        self.run_id = run_id
        self.name = name
        self.kind = kind
        self.description = description
        self.segments: list[_PackedSegment | _ListSegment] = []
        self.tail: _PackedSegment | _ListSegment = _NO_SEGMENT

    def add(self, value: Any, step: Any, when: Any) -> None:
        """Buffer one point (``run.log``'s hot path: one packed append)."""
        tail = self.tail
        if type(value) is tail.value_type and (step is None) is tail.stepless:
            try:
                tail.data += tail.pack(value, when) if step is None else tail.pack(value, step, when)
                return
            except struct.error:  # a step past int32, a wall time that is not a float
                pass
        self._add_to_new_segment(value, step, when)

    def _add_to_new_segment(self, value: Any, step: Any, when: Any) -> None:
        layout = _layout_for(value, step, when)
        if layout is not None:
            segment = _PackedSegment(layout)
            try:
                segment.data += layout.pack(value, when) if layout.stepless else layout.pack(value, step, when)
            except struct.error:  # an int past int64: the store says why it refuses it
                pass
            else:
                self._open(segment)
                return
        tail = self.tail
        if type(tail) is not _ListSegment or tail is _NO_SEGMENT:
            tail = _ListSegment()
            self._open(tail)
        tail.points.extend((value, step, when))

    def _open(self, segment: _PackedSegment | _ListSegment) -> None:
        self.segments.append(segment)
        self.tail = segment

    def count(self) -> int:
        """Points pending in memory."""
        segments = self.segments
        if len(segments) == 1:
            return segments[0].count()
        return sum(segment.count() for segment in list(segments))

    def nbytes(self) -> int:
        """Bytes of points pending in memory (about, for strings, rows and images)."""
        segments = self.segments
        if len(segments) == 1:
            return segments[0].nbytes()
        return sum(segment.nbytes() for segment in list(segments))

    def take(self, most: int, now: float) -> list[_Piece]:
        """Up to ``most`` of the oldest pending points, removed from memory, oldest first."""
        segments = self.segments
        if len(segments) == 1:  # the common case (a new segment only goes after this one)
            piece = segments[0].take(most)
            return [] if piece is None else [piece]
        segments = list(segments)
        pieces: list[_Piece] = []
        taken = 0
        for segment in segments:
            if taken >= most:
                break
            piece = segment.take(most - taken)
            if piece is not None:
                pieces.append(piece)
                taken += piece.count
            if segment is not segments[-1]:
                self._retire_if_idle(segment, now)
        return pieces

    def _retire_if_idle(self, segment: _PackedSegment | _ListSegment, now: float) -> None:
        """Let go of an empty segment that is no longer the tail, once it has stayed empty for a
        while (another thread may have read it as the tail just before it stopped being one)."""
        if segment.count():
            segment.empty_since = None
        elif segment.empty_since is None:
            segment.empty_since = now
        elif now - segment.empty_since > _RETIRE_AFTER_S:
            self.segments.remove(segment)

    def clear(self) -> None:
        for segment in list(self.segments):
            segment.clear()


def _merged_batch(series: SeriesBuffer, pieces: list[_Piece]) -> MetricBatch:
    """One batch of a series' pieces, as a single flat list of them would have been stored:
    numbers as one int64 or float64 array (a mix of ints and floats as float64), anything else
    as a list."""
    if len(pieces) == 1 and pieces[0].layout is not None:
        piece = pieces[0]
        steps = [None] * piece.count if piece.steps is None else piece.steps
        return MetricBatch(series.run_id, series.name, series.kind, piece.values, steps, piece.times, series.description)
    if all(piece.layout is not None for piece in pieces):
        values: Any = np.concatenate([piece.values for piece in pieces])
    else:
        values = list(itertools.chain.from_iterable(_as_list(piece.values) for piece in pieces))
    if all(piece.steps is None for piece in pieces):
        steps: Any = [None] * sum(piece.count for piece in pieces)
    elif all(isinstance(piece.steps, np.ndarray) for piece in pieces):
        steps = np.concatenate([piece.steps for piece in pieces])
    else:
        steps = list(
            itertools.chain.from_iterable(
                [None] * piece.count if piece.steps is None else _as_list(piece.steps) for piece in pieces
            )
        )
    if all(piece.layout is not None for piece in pieces):
        times: Any = np.concatenate([piece.times for piece in pieces])
    else:
        times = list(itertools.chain.from_iterable(_as_list(piece.times) for piece in pieces))
    return MetricBatch(series.run_id, series.name, series.kind, values, steps, times, series.description)


def _as_list(items: Any) -> list:
    return items.tolist() if isinstance(items, np.ndarray) else items


@dataclass
class _Job:
    """Points taken from memory for one store call: in ``batches``, or in the spill file at
    ``record`` (or both while a copy of a call under way is kept there). ``start`` and ``end``
    place its points in the order of everything ever taken from this buffer."""

    sequence: int
    batch_id: str
    start: int
    end: int
    batches: list[MetricBatch] | None = None
    record: SpillRecord | None = None
    copied: bool = False  # a copy is in the spill file (for a call under way)

    @property
    def points(self) -> int:
        return self.end - self.start


@dataclass
class PendingPoints:
    """What a buffer has not written yet, and where it waits."""

    points: int
    spill_path: str | None
    in_memory: int = 0
    last_error: str | None = None


class MetricsBuffer:
    """Pending points of every run this process logs to one store, their flusher and their watchdog."""

    def __init__(self, store: RunStore, flush_interval: float | None = None) -> None:
        self._store = store
        self._interval = flush_interval or settings.FLUSH_INTERVAL.positive_number()
        self._limit_bytes = settings.BUFFER_LIMIT_MB.positive_number() * (1 << 20)
        self._series: dict[tuple[str, str], SeriesBuffer] = {}
        self._thread: threading.Thread | None = None
        self._watchdog: threading.Thread | None = None
        self._last_error: str | None = None
        self._reported: set[str] = set()  # refusals already reported on stderr
        self._reset_state()
        _live_buffers.add(self)
        _install_sigterm_flush_once()

    def _reset_state(self) -> None:
        # Batch ids: this token (new in a forked child too, or its ids would be its parent's),
        # then the job's sequence.
        self._token = secrets.token_hex(8)
        self._flush_lock = threading.RLock()  # one writer to the store at a time
        # Taking points out of memory and the bookkeeping of taken points; never held during a
        # store call (run.log never takes it). Reentrant: a SIGTERM flush may interrupt a holder.
        self._take_lock = threading.RLock()
        self._written = threading.Condition(self._take_lock)
        self._wake = threading.Event()
        self._sequence = 0
        self._taken = 0  # points ever taken from memory
        self._done = 0  # of those, the ones written (or dropped), a prefix in taking order
        self._in_flight: _Job | None = None  # taken by the flusher, being written (or to retry)
        self._queued: list[_Job] = []  # taken since, by sequence: in the spill file (in memory if it failed)
        self._spill: SpillFile | None = None
        self._spill_error: str | None = None

    def series(self, run_id: str, name: str, kind: str, description: str = "") -> SeriesBuffer:
        """The series that points are added to, ``series.add(value, step, time)``."""
        key = (run_id, name)
        found = self._series.get(key)
        if found is None:
            found = self._series.setdefault(key, SeriesBuffer(run_id, name, kind, description))
            self._ensure_thread()
        elif found.kind != kind:
            raise MetricValueError(
                f"Metric {name!r} of run {run_id} was logged as a {found.kind} metric; "
                f"it cannot also take {kind} values. Use another name."
            )
        return found

    # writing
    def flush(self) -> None:
        """Write every point pending when called (in calls of at most MAX_POINTS_PER_CALL points).

        A failure that may pass (the store is unreachable or locked) raises and keeps every
        point pending. A batch the store refuses for good (a bad name or value, a run that has
        ended or does not exist) is found among the others, which are written, and dropped
        with one message on stderr naming its run, metric and the reason.
        """
        with self._flush_lock:
            while self._write_next():
                pass

    def _write_next(self) -> bool:
        """Write the oldest job; whether there may be more to write (points taken from memory
        fewer than a call takes: memory was empty then, so all logged before is written)."""
        with self._take_lock:
            fresh = self._in_flight is None and not self._queued
            job = self._next_job()
            if job is None:
                return False
            spill = self._spill
        batches = job.batches if job.batches is not None else spill.read(job.record)
        write_batches(self._store, batches, job.batch_id, self._drop)
        with self._take_lock:
            self._finish(job)
        return not fresh or job.points >= MAX_POINTS_PER_CALL

    def _next_job(self) -> _Job | None:
        """The job to write next: the call under way, else the oldest queued, else a new take."""
        if self._in_flight is not None:
            return self._in_flight
        if self._queued:
            return self._queued[0]
        job = self._take_job()
        self._in_flight = job
        return job

    def _take_job(self) -> _Job | None:
        """Up to MAX_POINTS_PER_CALL of the oldest points in memory, removed from it, as a job."""
        taken_by_series: list[tuple[SeriesBuffer, list[_Piece]]] = []
        taken, now = 0, time.monotonic()
        for series in list(self._series.values()):
            pieces = series.take(MAX_POINTS_PER_CALL - taken, now)
            if pieces:
                taken_by_series.append((series, pieces))
                taken += pieces[0].count if len(pieces) == 1 else sum(piece.count for piece in pieces)
                if taken >= MAX_POINTS_PER_CALL:
                    break
        if not taken_by_series:
            return None
        _unpack([piece for _, pieces in taken_by_series for piece in pieces])
        batches = [_merged_batch(series, pieces) for series, pieces in taken_by_series]
        job = _Job(self._sequence, f"{self._token}-{self._sequence}", self._taken, self._taken + taken, batches)
        self._sequence += 1
        self._taken += taken
        return job

    def _finish(self, job: _Job) -> None:
        """Note a job written: it, and any copy of it in the spill file, are done."""
        if job is self._in_flight:
            self._in_flight = None
        self._queued = [queued for queued in self._queued if queued.sequence != job.sequence]
        self._done = max(self._done, job.end)
        if not self._queued and self._spill is not None:
            self._spill.delete()
            self._spill = None
        self._written.notify_all()

    def _drop(self, batches: list[MetricBatch], error: Exception) -> None:
        names = ", ".join(repr(batch.name) for batch in batches)
        points = sum(len(batch.values) for batch in batches)
        run_id = batches[0].run_id
        key = f"{run_id}\0{names}\0{error}"
        if key not in self._reported:
            self._reported.add(key)
            print(
                f"runhistory: dropped {points} point(s) of metric {names} of run {run_id}, which the store "
                f"at {redact_uri(self._store.uri)} refused: {error}",
                file=sys.stderr,
            )

    # the cap
    def memory_bytes(self) -> int:
        """Bytes of points pending in memory (not counting a call under way)."""
        return sum(series.nbytes() for series in list(self._series.values()))

    def _memory_points(self) -> int:
        return sum(series.count() for series in list(self._series.values()))

    def spill(self) -> None:
        """Keep every pending point on disk, in order: a copy of the call under way, then what is
        in memory, moved to the spill file (kept in memory, said once, when it cannot be written)."""
        with self._take_lock:
            flight = self._in_flight
            if flight is not None and not flight.copied and flight.batches is not None:
                copy = _Job(flight.sequence, flight.batch_id, flight.start, flight.end, flight.batches)
                if self._to_spill_file(copy):
                    copy.batches = None
                    flight.copied = True
                    self._queued.insert(0, copy)
            while True:
                job = self._take_job()
                if job is None:
                    break
                if self._to_spill_file(job):
                    job.batches = None
                self._queued.append(job)

    def _to_spill_file(self, job: _Job) -> bool:
        """Append a job's points to the spill file (created on first use); False when it cannot be."""
        try:
            if self._spill is None:
                self._spill = SpillFile(self._store.uri)
            job.record = self._spill.append(job.sequence, job.batch_id, job.batches or [])
            return True
        except (OSError, TypeError, ValueError) as exc:  # a full disk; a point JSON cannot hold
            message = f"runhistory: could not spill pending metrics to disk (they stay in memory): {exc}"
            if message != self._spill_error:
                print(message, file=sys.stderr)
                self._spill_error = message
            return False

    def _watch(self) -> None:
        """The watchdog thread: past the cap, spill (it never waits on the store)."""
        while True:
            started = time.monotonic()
            size = self.memory_bytes()
            looked = time.monotonic() - started
            if size > self._limit_bytes:
                self.spill()
            # far below the cap, a look a second is soon enough; a slow look (many series) is made less often
            interval = _WATCH_INTERVAL_S if size > self._limit_bytes / 4 else 5 * _WATCH_INTERVAL_S
            time.sleep(max(interval, 20 * looked))

    # ending
    def pending(self) -> PendingPoints:
        """How many points are not written yet, and the spill file that holds those on disk."""
        with self._take_lock:
            flight = self._in_flight
            queued = [job for job in self._queued if flight is None or job.sequence != flight.sequence]
            memory = self._memory_points()
            total = memory + sum(job.points for job in queued) + (flight.points if flight is not None else 0)
            only_in_memory = memory + sum(job.points for job in queued if job.record is None)
            if flight is not None and not flight.copied:
                only_in_memory += flight.points
            path = str(self._spill.path) if self._spill is not None else None
            return PendingPoints(total, path, only_in_memory, self._last_error)

    def settle(self, what: str, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` seconds (``$RUNHISTORY_COMPLETE_TIMEOUT``) for every point pending
        now to be written by the flusher; if they are not, keep them in the spill file and say
        in one sentence (stderr and a RuntimeWarning) how many are pending and where. True when written."""
        with self._take_lock:
            target = self._taken + self._memory_points()
            if self._done >= target:
                return True
        timeout = settings.COMPLETE_TIMEOUT.positive_number() if timeout is None else timeout
        self._ensure_thread()
        deadline = time.monotonic() + timeout
        with self._take_lock:
            while self._done < target:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._wake.set()  # a pass now, and again every half second (a failed one is retried)
                self._written.wait(min(left, 0.5))
            else:
                return True
        self.spill()
        self._say_pending(what, timeout)
        return False

    def _say_pending(self, what: str, timeout: float) -> None:
        pending = self.pending()
        if pending.spill_path is not None and not pending.in_memory:
            where = f"they are kept in {pending.spill_path}"
        elif pending.spill_path is not None:
            where = f"they are kept in {pending.spill_path} and, {pending.in_memory:,} of them, in memory"
        else:
            where = "they are kept in memory"
        message = (
            f"runhistory: the store at {redact_uri(self._store.uri)} did not take {pending.points:,} pending "
            f"metric points within {timeout:g} s while ending {what}; {where} and written when it answers "
            f"while this process lives; after it ends, run `runhistory sync` to write them"
            + (f" ({pending.last_error})." if pending.last_error else ".")
        )
        print(message, file=sys.stderr)
        warnings.warn(message, RuntimeWarning, stacklevel=3)

    def forget_run(self, run_id: str) -> None:
        """Drop the (already flushed) series of a run that has ended."""
        with self._take_lock:
            for key in [key for key in self._series if key[0] == run_id]:
                if not self._series[key].count():
                    del self._series[key]

    def discard_inherited(self) -> None:
        """In a forked child: drop the parent's pending points and spill file (the parent writes them)."""
        for series in self._series.values():
            series.clear()
        self._thread = None
        self._watchdog = None
        self._reset_state()

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="runhistory-flusher", daemon=True)
            self._thread.start()
        if self._watchdog is None or not self._watchdog.is_alive():
            self._watchdog = threading.Thread(target=self._watch, name="runhistory-buffer-watchdog", daemon=True)
            self._watchdog.start()

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
            message = f"runhistory: could not write metrics to {redact_uri(self._store.uri)} (will retry): {exc}"
            if message != self._last_error:
                print(message, file=sys.stderr)
                self._last_error = message


def write_batches(
    store: RunStore, batches: list[MetricBatch], batch_id: str, refused: Callable[[list[MetricBatch], Exception], None]
) -> None:
    """Append ``batches`` under ``batch_id`` (written once however often this is called).

    A failure that may pass raises. When the store refuses the call for good, it is written run
    by run, then series by series (each part under an id of its own), and ``refused(batches,
    error)`` is told of each part the store refuses, which is dropped.
    """
    error = _append_or_refusal(store, batches, batch_id)
    if error is None:
        return
    by_run: dict[str, list[MetricBatch]] = {}
    for batch in batches:
        by_run.setdefault(batch.run_id, []).append(batch)
    for run_index, group in enumerate(by_run.values()):
        # "_r", "_s": never what a remote store (".N") or the client spool (":N") adds to an id
        error = _append_or_refusal(store, group, f"{batch_id}_r{run_index}")
        if error is None:
            continue
        if isinstance(error, (RunFinishedError, NotFoundError)) or len(group) == 1:
            refused(group, error)  # the run itself refuses: every series of it alike
            continue
        for series_index, one in enumerate(group):
            error = _append_or_refusal(store, [one], f"{batch_id}_r{run_index}_s{series_index}")
            if error is not None:
                refused([one], error)


def _append_or_refusal(store: RunStore, batches: list[MetricBatch], batch_id: str) -> Exception | None:
    """Append; the store's refusal for good if any (a failure that may pass raises)."""
    try:
        store.append_metrics(batches, batch_id=batch_id)
    except Exception as exc:  # noqa: BLE001 - classified: transient ones are raised again
        if is_transient(exc):
            raise
        return exc
    return None


def replay_spill_file(reader: SpillReader, store: RunStore, refused: Callable[[list[MetricBatch], Exception], None]) -> int:
    """Write every record of a spill file left by a process that ended, in order, each once
    (the store skips a record's batch id applied before); returns how many points it held."""
    for record in reader.records:
        write_batches(store, reader.read(record), record.batch_id, refused)
    return sum(record.points for record in reader.records)


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


_live_buffers: "weakref.WeakSet[MetricsBuffer]" = weakref.WeakSet()


def flush_all_buffers() -> None:
    """Write every buffer of this process (at exit and on SIGTERM), each waiting at most
    ``$RUNHISTORY_COMPLETE_TIMEOUT`` seconds before keeping what is left in its spill file."""
    for buffer in list(_live_buffers):
        try:
            buffer.settle("the process")
        except Exception as exc:  # noqa: BLE001 - one buffer must not keep the others from writing
            print(f"runhistory: could not write metrics at exit: {exc}", file=sys.stderr)


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
