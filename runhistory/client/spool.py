"""The local spool of a client that cannot reach its server: nothing logged is lost.

While the server cannot be reached, metric batches (each with its id), run status
changes and other idempotent writes (tags, properties, small files) are appended to a file of this process in the spool folder
(``$RUNHISTORY_SPOOL_DIR``, else the ``spool`` folder of the config folder,
``~/.runhistory/spool`` by default) and kept in memory up to ``$RUNHISTORY_BUFFER_LIMIT_MB`` of
payloads (past it, a record is read back from the file when its turn comes); a background thread sends them,
oldest first, with a backoff (:data:`runhistory.client.http.BACKOFF`), as soon as the server
answers, then deletes the file. Batch ids make a replay idempotent: a batch that
reached the server before its reply was lost is skipped there. The file of a process
that died is replayed by ``runhistory sync``: each file is locked by its live writer,
so sync only takes files whose process is gone.

File format: a JSON header line (``{"url": ..., "pid": ...}``), then records
``u8 type | u32 length | payload``: type 1 a metric batch (``u8 id length | id |
compressed batch``), type 2 a status change (JSON), type 3 an idempotent request
(a JSON line: method, path and body, then the raw content of a file upload).
"""

from __future__ import annotations

import collections
import json
import os
import secrets
import struct
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import tenacity
from filelock import FileLock, Timeout

from runhistory.core import settings
from runhistory.core.errors import RunHistoryError
from runhistory.client.credentials import config_dir
from runhistory.client.http import BACKOFF, Retry

METRICS = 1
STATUS = 2
REQUEST = 3
_RECORD_HEAD = struct.Struct("<BI")
SPOOL_SUFFIX = ".spool"


def spool_dir() -> Path:
    """Where spool files live: ``$RUNHISTORY_SPOOL_DIR``, else the ``spool`` folder of the config folder."""
    return settings.SPOOL_DIR.path() or config_dir() / "spool"


@dataclass(frozen=True)
class SpoolRecord:
    """One thing to send: a metric batch (with its id), a status change or an idempotent request."""

    kind: int
    batch_id: str
    payload: bytes

    def encode(self) -> bytes:
        if self.kind == METRICS:
            ident = self.batch_id.encode()
            body = bytes([len(ident)]) + ident + self.payload
        else:
            body = self.payload
        return _RECORD_HEAD.pack(self.kind, len(body)) + body


@dataclass(frozen=True)
class _RecordOnDisk:
    """A queued record whose payload stays in the spool file (``length`` bytes at ``offset``)."""

    kind: int
    batch_id: str
    offset: int
    length: int


class Spool:
    """The spool of one client (one server URL, one process): a file and a queue, in memory up to a cap."""

    def __init__(
        self,
        url: str,
        send: Callable[[SpoolRecord], None],
        directory: Path | None = None,
        split: Callable[[SpoolRecord], list[SpoolRecord]] | None = None,
    ) -> None:
        self.url = url
        self._send = send
        self._split = split  # a refused record in smaller ones (a metric batch: one per series)
        self._directory = directory
        self._queue: collections.deque[SpoolRecord | _RecordOnDisk] = collections.deque()
        self._memory_limit = settings.BUFFER_LIMIT_MB.positive_number() * (1 << 20)
        self._memory_bytes = 0  # payload bytes of the records queued in memory
        self._reader = None
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._drained = threading.Event()
        self._drained.set()
        self._running = False  # a replay thread is running (changed only under _lock)
        self._file = None
        self._file_lock: FileLock | None = None
        self.path: Path | None = None
        self.last_error: str | None = None

    @property
    def pending(self) -> int:
        """How many records wait to be sent."""
        return len(self._queue)

    def add(self, record: SpoolRecord) -> None:
        """Keep a record (on disk first) and have the background thread send it."""
        with self._lock:
            if self._file is None:
                self._open_file()
            start = self._file.tell()
            self._file.write(record.encode())
            self._file.flush()
            self._queue.append(self._kept(record, start))
            self._drained.clear()
            if not self._running:
                self._running = True
                threading.Thread(target=self._replay, name="runhistory-spool", daemon=True).start()
        self._wake.set()

    def _kept(self, record: SpoolRecord, start: int) -> SpoolRecord | _RecordOnDisk:
        """The record itself while the queue's payloads fit in memory, else where it is in the file."""
        if self._memory_bytes + len(record.payload) <= self._memory_limit:
            self._memory_bytes += len(record.payload)
            return record
        head = _RECORD_HEAD.size + (1 + len(record.batch_id.encode()) if record.kind == METRICS else 0)
        return _RecordOnDisk(record.kind, record.batch_id, start + head, len(record.payload))

    def _record_at(self, queued: SpoolRecord | _RecordOnDisk) -> SpoolRecord:
        if isinstance(queued, SpoolRecord):
            return queued
        return SpoolRecord(queued.kind, queued.batch_id, os.pread(self._reader.fileno(), queued.length, queued.offset))

    def _pop(self) -> None:
        """Remove the oldest queued record (under ``_lock``)."""
        queued = self._queue.popleft()
        if isinstance(queued, SpoolRecord):
            self._memory_bytes -= len(queued.payload)

    def wait(self, timeout: float) -> bool:
        """Wait until everything spooled was sent (True), at most ``timeout`` seconds."""
        return self._drained.wait(timeout)

    def after_fork(self) -> None:
        """In a forked child: the parent's spool is the parent's to send."""
        self._queue.clear()
        self._memory_bytes = 0
        self._file = None
        self._reader = None
        self._file_lock = None
        self.path = None
        self._running = False
        self._lock = threading.Lock()
        self._drained = threading.Event()
        self._drained.set()

    def _open_file(self) -> None:
        directory = self._directory or spool_dir()
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{os.getpid()}-{int(time.time())}-{secrets.token_hex(4)}{SPOOL_SUFFIX}"
        self._file_lock = FileLock(str(path) + ".lock", thread_local=False)
        self._file_lock.acquire()
        self._file = open(path, "ab")
        self._file.write(json.dumps({"url": self.url, "pid": os.getpid(), "created": time.time()}).encode() + b"\n")
        self._file.flush()
        self._reader = open(path, "rb")
        self.path = path

    def _replay(self) -> None:
        """The background thread: send the oldest record until none is left, each retried (with
        :data:`BACKOFF`, for as long as it takes) while the server is away."""
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(Retry),
            wait=BACKOFF,
            sleep=self._nap,
            before_sleep=self._note_failure,
            reraise=True,
        )
        while True:
            with self._lock:
                if not self._queue:
                    self._close_file()
                    self._running = False
                    self._drained.set()
                    return
                queued = self._queue[0]
            record = self._record_at(queued)
            try:
                retrying(self._send, record)
            except Exception as exc:  # noqa: BLE001 - refused for good (4xx): report, drop, go on
                parts = self._split(record) if self._split is not None else []
                if len(parts) > 1:  # send its parts one by one: only the refused ones are dropped
                    with self._lock:
                        self._pop()
                        self._memory_bytes += sum(len(part.payload) for part in parts)
                        self._queue.extendleft(reversed(parts))
                    continue
                print(f"runhistory: the server at {self.url} refused a spooled record, dropped: {exc}", file=sys.stderr)
            with self._lock:
                self._pop()

    def _nap(self, seconds: float) -> None:
        """Wait between two tries; a new record (:meth:`add`) cuts the wait short."""
        self._wake.wait(seconds)
        self._wake.clear()

    def _note_failure(self, state: tenacity.RetryCallState) -> None:
        if state.outcome is not None and state.outcome.failed:
            self.last_error = str(state.outcome.exception())

    def _close_file(self) -> None:
        if self._file is not None:
            self._file.close()
            if self._reader is not None:
                self._reader.close()
                self._reader = None
            assert self.path is not None
            self.path.unlink(missing_ok=True)
            if self._file_lock is not None:
                self._file_lock.release()
                Path(self._file_lock.lock_file).unlink(missing_ok=True)
            self._file = None
            self._file_lock = None
            self.path = None


def read_spool_file(path: Path) -> tuple[dict, list[SpoolRecord]]:
    """The header and records of a spool file (a record cut short by a crash is left out)."""
    data = path.read_bytes()
    newline = data.find(b"\n")
    try:
        header = json.loads(data[:newline]) if newline >= 0 else None
    except (ValueError, UnicodeDecodeError):
        header = None
    if not isinstance(header, dict) or not isinstance(header.get("url"), str):
        raise RunHistoryError(f"{path} has no runhistory spool header (it was not written by runhistory); it was left as it is.")
    return header, list(_records(data, newline + 1))


def _records(data: bytes, at: int) -> Iterator[SpoolRecord]:
    while at + _RECORD_HEAD.size <= len(data):
        kind, length = _RECORD_HEAD.unpack_from(data, at)
        at += _RECORD_HEAD.size
        if at + length > len(data):
            return
        body = data[at : at + length]
        at += length
        if kind == METRICS:
            ident_length = body[0]
            yield SpoolRecord(METRICS, body[1 : 1 + ident_length].decode(), body[1 + ident_length :])
        else:
            yield SpoolRecord(kind, "", body)


def orphan_spool_files(directory: Path | None = None) -> Iterator[tuple[Path, FileLock]]:
    """Spool files whose writer is gone, each locked for the caller (who must release it)."""
    return orphan_files(directory or spool_dir(), SPOOL_SUFFIX)


def orphan_files(directory: Path, suffix: str) -> Iterator[tuple[Path, FileLock]]:
    """The files named ``*suffix`` in ``directory`` whose writer is gone (their ``.lock`` is free),
    each locked for the caller (who must release it)."""
    if not directory.is_dir():
        return
    for path in sorted(directory.glob(f"*{suffix}")):
        lock = FileLock(str(path) + ".lock", thread_local=False)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            continue  # its process is alive and sends it itself
        if not path.exists():
            lock.release()
            continue
        yield path, lock
