"""Following the TensorBoard event files of a folder into a run's history, incrementally.

:class:`EventLogFollower` keeps, for each event file, the byte offset after the last record
it has stored: :meth:`EventLogFollower.sync` reads what is new (a record cut off at the end
waits for its rest), decodes it (:mod:`runhistory.eventlogs.decode`) and appends it to the
run through the store, one call per piece of a file. The offset moves only once the store has
taken the piece, and each call carries a batch id made of the run, the file and the piece's
byte range: a piece sent again after an unanswered call is recognised by the store, so no
point is ever stored twice, and a store that is away only delays the points.

Names: a tag of a file in a subfolder is prefixed by that subfolder (``train/loss`` for
``logs/train/events...``) when the follower reads the whole tree (a job's ``./logs``); the
importer reads one TensorBoard run folder at a time, without prefixes. A tag that the store
refuses (a name too long, one that ``run.log`` already uses for its own points) is reported
once and left out; the other tags go on.
"""

from __future__ import annotations

import hashlib
import os
import struct
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Mapping

import numpy as np

from runhistory.core.errors import InvalidNameError, RunHistoryError, StoreUnavailableError
from runhistory.core.validation import MAX_WALL_TIME, validate_key_values, validate_name
from runhistory.eventlogs.decode import DecodedEvents, TagPlugins, TagPoints, decode_records
from runhistory.eventlogs.records import FOOTER_BYTES, HEADER_BYTES, header_ok, scan_records
from runhistory.store.base import MetricBatch, MetricKind, MetricSource, RunStore

__all__ = ["EventLogFollower", "SyncResult", "event_files", "is_event_file"]

READ_BYTES = 64 << 20  # at most this much of one file is decoded at once
SESSION_STATUS_TAG = "tensorboard.session_status"
Report = Callable[[str], None]


def is_event_file(name: str) -> bool:
    """Whether a file name is a TensorBoard event file's (TensorBoard's own test: ``tfevents`` in it)."""
    return "tfevents" in name


def event_files(folder: Path, *, recursive: bool) -> Iterator[Path]:
    """The event files under ``folder`` (only those directly in it unless ``recursive``), sorted."""
    if not folder.is_dir():
        return
    if not recursive:
        yield from sorted(path for path in folder.iterdir() if is_event_file(path.name) and path.is_file())
        return
    for parent, folders, files in os.walk(folder):
        folders.sort()
        for name in sorted(files):
            if is_event_file(name):
                yield Path(parent, name)


@dataclass
class SyncResult:
    """What one :meth:`EventLogFollower.sync` stored."""

    points: int = 0
    records: int = 0
    bytes: int = 0


@dataclass
class _FileState:
    offset: int = 0
    records: int = 0  # records read so far (they order a tag's points within a read)
    plugins: TagPlugins = field(default_factory=TagPlugins)
    corrupt_reported: bool = False
    partial: int = 0  # bytes after the offset that do not yet form a record


class EventLogFollower:
    """Stores the new records of the event files under ``folder`` into run ``run_id``.

    ``recursive``: every event file under the folder, tags prefixed by their file's subfolder
    (a job's ``./logs``); else only the files directly in it, tags as they are (one TensorBoard
    run folder). ``offsets``: where each file (by its name relative to ``folder``) was read to
    before, for a follower that takes over (the importer). ``report`` hears each problem once
    (by default it goes to stderr).
    ``on_stored(name, offset, piece)`` hears each piece of a file once it is stored (the importer
    copies it then).
    """

    def __init__(
        self,
        store: RunStore,
        run_id: str,
        folder: Path,
        *,
        recursive: bool = True,
        offsets: Mapping[str, int] | None = None,
        report: Report | None = None,
        on_stored: Callable[[str, int, bytes], None] | None = None,
    ) -> None:
        self._store = store
        self._run_id = run_id
        self._folder = folder
        self._recursive = recursive
        self._report = report if report is not None else _print_to_stderr
        self._on_stored = on_stored
        self._files: dict[str, _FileState] = {name: _FileState(offset) for name, offset in (offsets or {}).items()}
        self._refused: set[str] = set()  # series names the store refused: left out from then on
        self._reported: set[str] = set()
        self._properties: dict[str, str] = {}
        self._session_status: str | None = None

    @property
    def offsets(self) -> dict[str, int]:
        """Each file's offset after the last record stored, by its name relative to the folder."""
        return {name: state.offset for name, state in self._files.items()}

    @property
    def session_status(self) -> str | None:
        """The status the hparams ``session_end_info`` gave (``success``, ``failure``, ...), if any."""
        return self._session_status

    def sync(self, *, final: bool = False) -> SyncResult:
        """Store what is new in every event file; with ``final``, report what will never be a
        whole record (a file cut off mid-record). Raises :class:`StoreUnavailableError` when the
        store is away (nothing is lost: the next sync sends it again)."""
        result = SyncResult()
        for path in event_files(self._folder, recursive=self._recursive):
            name = path.relative_to(self._folder).as_posix()
            self._sync_file(path, name, self._files.setdefault(name, _FileState()), result)
        if final:
            for name, state in self._files.items():
                if state.partial:
                    self._report_once(f"partial:{name}", f"{name} ends with an incomplete record ({state.partial} bytes): left out.")
        return result

    def _sync_file(self, path: Path, name: str, state: _FileState, result: SyncResult) -> None:
        while True:
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                return
            if size < state.offset:
                self._report_once(f"shrunk:{name}", f"{name} is shorter than what was read of it: reading on from its new end.")
                state.offset = size
            if size == state.offset:
                state.partial = 0
                return
            with open(path, "rb") as file:
                file.seek(state.offset)
                data = file.read(READ_BYTES)
            scan = scan_records(data, state.offset)
            state.partial = scan.partial
            if scan.end == state.offset:
                if len(data) == READ_BYTES and self._pass_over_oversized(path, name, state, data, size):
                    continue
                return  # only the beginning of a record so far
            decoded = decode_records(data, scan, plugins=state.plugins, base=state.offset, first_index=state.records)
            decoded.corrupt = sorted(scan.corrupt + decoded.corrupt)  # damaged headers and payloads
            self._store_piece(name, state, scan.end, decoded, result)
            if self._on_stored is not None:
                self._on_stored(name, state.offset, data[: scan.end - state.offset])
            result.bytes += scan.end - state.offset
            state.offset = scan.end
            state.records += decoded.records
            if len(data) < READ_BYTES:
                return

    def _pass_over_oversized(self, path: Path, name: str, state: _FileState, data: bytes, size: int) -> bool:
        """Step past a whole record larger than one read (a huge graph or image: it stays in the
        file, out of the run history), handing its bytes on in pieces; False when there is none."""
        (length,) = struct.unpack_from("<Q", data, 0)
        end = state.offset + HEADER_BYTES + length + FOOTER_BYTES
        if not header_ok(data, 0) or end > size:
            return False
        self._report_once(
            f"oversized:{name}", f"{name}: the record at byte {state.offset} takes {length} bytes: left out of the run history."
        )
        if self._on_stored is not None:
            with open(path, "rb") as file:
                file.seek(state.offset)
                for at in range(state.offset, end, READ_BYTES):
                    self._on_stored(name, at, file.read(min(READ_BYTES, end - at)))
        state.offset = end
        state.records += 1
        return True

    def _store_piece(self, name: str, state: _FileState, end: int, decoded: DecodedEvents, result: SyncResult) -> None:
        if decoded.corrupt and not state.corrupt_reported:
            state.corrupt_reported = True
            self._report(f"{name}: the record at byte {decoded.corrupt[0]} is corrupt (checksum or contents): skipped.")
        prefix = self._prefix(name)
        batches = list(self._batches(prefix, decoded))
        batch_id = hashlib.sha256(f"{self._run_id}\0{name}\0{state.offset}\0{end}".encode()).hexdigest()[:40]
        self._append(batches, batch_id)
        self._store_properties(name, decoded)
        result.points += sum(len(batch.values) for batch in batches)
        result.records += decoded.records

    def _prefix(self, name: str) -> str:
        folder = name.rpartition("/")[0]
        return f"{folder}/" if self._recursive and folder else ""

    def _batches(self, prefix: str, decoded: DecodedEvents) -> Iterator[MetricBatch]:
        tables = ((decoded.scalars, MetricKind.SCALAR), (decoded.texts, MetricKind.SCALAR), (decoded.summaries, MetricKind.SUMMARY))
        for table, kind in tables:
            for tag, points in table.items():
                batch = self._batch(prefix + tag, kind, points)
                if batch is not None:
                    yield batch

    def _batch(self, name: str, kind: str, points: TagPoints) -> MetricBatch | None:
        if name in self._refused:
            return None
        try:
            validate_name(name, "metric", f"run {self._run_id}")
        except InvalidNameError as exc:
            self._refuse(name, str(exc))
            return None
        steps, times, values = points.ordered()
        good = (times >= 0.0) & (times <= MAX_WALL_TIME)  # NaN fails too
        if not np.all(good):
            self._report_once(f"time:{name}", f"Metric {name!r}: {int(np.sum(~good))} events have no valid wall time: left out.")
            steps, times = steps[good], times[good]
            values = values[good] if isinstance(values, np.ndarray) else [v for v, ok in zip(values, good.tolist()) if ok]
        if not len(values):
            return None
        return MetricBatch(self._run_id, name, kind, values, steps, times, source=MetricSource.EVENT_FILES)

    def _append(self, batches: list[MetricBatch], batch_id: str) -> None:
        """Append all batches in one call; when the store refuses it, each series alone, so that a
        series it refuses (reported once, left out from then on) holds up no other."""
        if not batches:
            return
        try:
            self._store.append_metrics(batches, batch_id=batch_id)
        except StoreUnavailableError:
            raise
        except RunHistoryError:  # one of them is refused: find which
            self._append_each(batches, batch_id)

    def _append_each(self, batches: list[MetricBatch], batch_id: str) -> None:
        for index, batch in enumerate(batches):
            try:
                self._store.append_metrics([batch], batch_id=f"{batch_id[:36]}{index:04x}")
            except StoreUnavailableError:
                raise
            except RunHistoryError as exc:
                self._refuse(batch.name, str(exc))

    def _store_properties(self, name: str, decoded: DecodedEvents) -> None:
        if decoded.session_status is not None:
            self._session_status = decoded.session_status
            self._set_tags({SESSION_STATUS_TAG: decoded.session_status}, name)
        new = {key: value for key, value in decoded.hparams.items() if self._properties.get(key) != value}
        for key, value in new.items():  # one at a time: a refused hparam holds up no other
            try:
                validate_key_values({key: value}, "property", f"run {self._run_id}")
                self._store.add_properties(self._run_id, {key: value})
                self._properties[key] = value
            except StoreUnavailableError:
                raise
            except RunHistoryError as exc:
                self._report_once(f"hparam:{key}", f"{name}: hyperparameter {key!r} is not kept: {exc}")

    def _set_tags(self, tags: dict[str, str], name: str) -> None:
        try:
            self._store.set_tags(self._run_id, tags)
        except StoreUnavailableError:
            raise
        except RunHistoryError as exc:
            self._report_once(f"tags:{name}", f"{name}: the session status is not kept: {exc}")

    def _refuse(self, name: str, why: str) -> None:
        self._refused.add(name)
        self._report_once(f"series:{name}", f"The events of tag {name!r} are not kept in the run history: {why}")

    def _report_once(self, key: str, message: str) -> None:
        if key not in self._reported:
            self._reported.add(key)
            self._report(message)


def _print_to_stderr(message: str) -> None:
    print(f"runhistory: {message}", file=sys.stderr)

