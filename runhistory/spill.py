"""The spill file of a metrics buffer: points past its memory cap wait on local disk, in order.

When the store cannot keep up (locked, slow, away), :class:`runhistory.metrics.MetricsBuffer`
moves its oldest pending points here instead of growing past ``$RUNHISTORY_BUFFER_LIMIT_MB``.
Each record is one future store call: its points,
its batch id (the store skips an id it applied before, so a record replayed twice is written
once) and its sequence number (the order its points were taken from the buffer in, which is
the order records are written in). The file lives in the spool folder
(:func:`runhistory.client.spool.spool_dir`), names its store in a JSON header line, and is
locked while its process lives; that process deletes it once every record is written, and
``runhistory sync`` replays the file of a process that died.

File format: a JSON header line (``{"store": uri, "pid": ..., "created": ...}``), then records
``u32 message length | u64 sequence | u32 points | u8 id length | id | message``. A message is
what a client sends a server (:func:`runhistory.protocol.wire.encode_batches`), uncompressed:
numbers as raw little-endian int64 / float64, strings, rows and mixes as JSON. A record cut
short by a crash is left out when the file is read.
"""

from __future__ import annotations

import json
import mmap
import os
import secrets
import struct
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

from filelock import FileLock

from runhistory.core.errors import RunHistoryError
from runhistory.protocol import wire
from runhistory.store.base import MetricBatch

SPILL_SUFFIX = ".spill"
_RECORD_HEAD = struct.Struct("<IQIB")
_MAX_MESSAGE = 1 << 40  # a message is what this process wrote: no bound of its own


@dataclass(frozen=True)
class SpillRecord:
    """Where one record of a spill file is: its order, batch id, point count and message bytes."""

    sequence: int
    batch_id: str
    points: int
    offset: int
    length: int


def default_spill_dir() -> Path:
    """The spool folder (``$RUNHISTORY_SPOOL_DIR``, else the ``spool`` folder of the config folder)."""
    from runhistory.client.spool import spool_dir  # the client package imports httpx: start-up speed

    return spool_dir()


class SpillFile:
    """The spill file of one buffer of this process: created and locked on first use."""

    def __init__(self, store_uri: str, directory: Path | None = None) -> None:
        directory = directory or default_spill_dir()
        directory.mkdir(parents=True, exist_ok=True)
        self.store_uri = store_uri
        self.path = directory / f"{os.getpid()}-{int(time.time())}-{secrets.token_hex(4)}{SPILL_SUFFIX}"
        self._lock = FileLock(str(self.path) + ".lock", thread_local=False)
        self._lock.acquire()
        # 0o600: a database URI may carry a password
        self._file = os.fdopen(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb")
        header = {"store": store_uri, "pid": os.getpid(), "created": time.time()}
        self._file.write(json.dumps(header).encode() + b"\n")
        self._file.flush()
        self._reader = open(self.path, "rb")

    def append(self, sequence: int, batch_id: str, batches: Sequence[MetricBatch]) -> SpillRecord:
        """Write one record (to the operating system: it outlives this process) and say where it is."""
        message = encode_message(batches)
        ident = batch_id.encode()
        points = sum(len(batch.values) for batch in batches)
        head = _RECORD_HEAD.pack(len(message), sequence, points, len(ident)) + ident
        offset = self._file.tell() + len(head)
        self._file.write(head)
        self._file.write(message)
        self._file.flush()
        return SpillRecord(sequence, batch_id, points, offset, len(message))

    def read(self, record: SpillRecord) -> list[MetricBatch]:
        """The batches of a record this file holds."""
        return decode_message(os.pread(self._reader.fileno(), record.length, record.offset))

    def delete(self) -> None:
        """Close the file, remove it and let go of its lock (every record was written)."""
        self._file.close()
        self._reader.close()
        self.path.unlink(missing_ok=True)
        self._lock.release()
        Path(self._lock.lock_file).unlink(missing_ok=True)


class SpillReader:
    """A spill file left by a process that ended: its header and records, in the order to write them."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with open(path, "rb") as file:  # mapped, not read: a long stall can leave a large file
            if os.fstat(file.fileno()).st_size == 0:
                raise RunHistoryError(f"{path} is empty, not a runhistory spill file; it was left as it is.")
            self._data = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
        newline = self._data.find(b"\n")
        self.header: dict = _header(self._data[:newline] if newline >= 0 else b"")
        if self.header is None:
            self._data.close()
            raise RunHistoryError(f"{path} has no runhistory spill header (it was not written by runhistory); it was left as it is.")
        self.records = sorted(_records(self._data, newline + 1), key=lambda record: record.sequence)

    @property
    def store_uri(self) -> str:
        """The store the points belong to."""
        return self.header["store"]

    def read(self, record: SpillRecord) -> list[MetricBatch]:
        """The batches of one record."""
        return decode_message(self._data[record.offset : record.offset + record.length])

    def close(self) -> None:
        """Let go of the file's mapping."""
        self._data.close()


def encode_message(batches: Sequence[MetricBatch]) -> bytes:
    """Batches as one message of a record: the wire's packing, uncompressed (numbers raw)."""
    return wire.encode_batches(batches, level=0)


def decode_message(message: bytes) -> list[MetricBatch]:
    """The batches of a message, numbers as numpy arrays."""
    return wire.decode_batches(bytes(message), max_size=_MAX_MESSAGE)


def _header(line: bytes) -> dict | None:
    """The JSON header of a spill file, or None when the first line is not one."""
    try:
        header = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return None
    return header if isinstance(header, dict) and isinstance(header.get("store"), str) else None


def _records(data: bytes | mmap.mmap, at: int) -> Iterator[SpillRecord]:
    while at + _RECORD_HEAD.size <= len(data):
        length, sequence, points, ident_length = _RECORD_HEAD.unpack_from(data, at)
        at += _RECORD_HEAD.size
        if at + ident_length + length > len(data):
            return
        batch_id = data[at : at + ident_length].decode()
        at += ident_length
        yield SpillRecord(sequence, batch_id, points, at, length)
        at += length


def orphan_spill_files(directory: Path | None = None) -> Iterator[tuple[Path, FileLock]]:
    """Spill files whose process is gone, each locked for the caller (who must release it)."""
    from runhistory.client.spool import orphan_files  # the client package imports httpx: start-up speed

    return orphan_files(directory or default_spill_dir(), SPILL_SUFFIX)
