"""Growing local files and process output, appended to a run's files as they grow.

:class:`FolderFollower` mirrors a folder (a job's ``./logs``) into the run's files by
appending only the bytes that are new since its last pass. :class:`ArtifactLog` buffers
bytes (a job's stdout and stderr) and appends them to one of the run's files on flush.
:func:`start_pump` copies a pipe into such writers from a thread of its own.
"""

from __future__ import annotations

import os
import select
import threading
from collections import deque
from pathlib import Path
from typing import IO, Iterator, Protocol

from runhistory.artifacts.base import ArtifactStore

CHUNK_BYTES = 4 * 1024 * 1024


class FolderFollower:
    """Appends what is new in the files under ``folder`` to the run's files ``prefix + name``."""

    def __init__(self, artifacts: ArtifactStore, run_id: str, folder: Path, prefix: str) -> None:
        self._artifacts = artifacts
        self._run_id = run_id
        self._folder = folder
        self._prefix = prefix
        self._sent: dict[str, tuple[int, int]] = {}  # name -> (inode, bytes sent)

    def sync(self) -> int:
        """One pass over the folder; returns the number of bytes sent."""
        sent = 0
        for path, stat in _files_under(self._folder):
            sent += self._sync_file(path.relative_to(self._folder).as_posix(), path, stat)
        return sent

    def _sync_file(self, name: str, path: Path, stat: os.stat_result) -> int:
        inode, offset = self._sent.get(name, (stat.st_ino, -1))
        if inode != stat.st_ino or stat.st_size < offset:
            offset = -1  # replaced or rewritten: send it again from the start
        if offset == stat.st_size:
            return 0
        start = max(offset, 0)
        try:
            with open(path, "rb") as source:
                source.seek(start)
                data = source.read(CHUNK_BYTES) if stat.st_size > start else b""
                position = start
                while True:
                    self._artifacts.append(self._run_id, self._prefix + name, data, position)
                    position += len(data)
                    data = source.read(CHUNK_BYTES)
                    if not data:
                        break
        except FileNotFoundError:  # removed since the listing
            self._sent.pop(name, None)
            return 0
        self._sent[name] = (stat.st_ino, position)
        return position - start


def _files_under(folder: Path) -> Iterator[tuple[Path, os.stat_result]]:
    if not folder.is_dir():
        return
    for parent, _folders, files in os.walk(folder):
        for file_name in files:
            path = Path(parent, file_name)
            try:
                yield path, path.stat()
            except FileNotFoundError:
                continue


class ArtifactLog:
    """Bytes written from any thread, appended to one of the run's files on :meth:`flush`."""

    def __init__(self, artifacts: ArtifactStore, run_id: str, name: str) -> None:
        self._artifacts = artifacts
        self._run_id = run_id
        self._name = name
        self._pending = bytearray()
        self._size = 0
        self._created = False
        self._lock = threading.Lock()
        self._flushing = threading.Lock()

    def write(self, data: bytes) -> None:
        """Add bytes (never blocks on storage)."""
        with self._lock:
            self._pending += data

    def write_line(self, text: str) -> None:
        """Add one line of text."""
        self.write(text.rstrip("\n").encode() + b"\n")

    def flush(self) -> None:
        """Append what is pending to the run's file (creating it on the first flush)."""
        with self._flushing:
            with self._lock:
                data, self._pending = bytes(self._pending), bytearray()
            if data or not self._created:
                self._size = self._artifacts.append(self._run_id, self._name, data, self._size)
                self._created = True


class Tail:
    """The last ``limit`` bytes written to it (the end of a job's stderr, for its error)."""

    def __init__(self, limit: int = 4096) -> None:
        self._chunks: deque[bytes] = deque()
        self._size = 0
        self._limit = limit
        self._lock = threading.Lock()

    def write(self, data: bytes) -> None:
        """Keep ``data``, dropping the oldest bytes beyond the limit."""
        with self._lock:
            self._chunks.append(data)
            self._size += len(data)
            while self._size - len(self._chunks[0]) >= self._limit:
                self._size -= len(self._chunks.popleft())

    def text(self, max_lines: int = 20) -> str:
        """The last lines kept, decoded."""
        with self._lock:
            data = b"".join(self._chunks)[-self._limit :]
        lines = data.decode(errors="replace").rstrip().splitlines()
        return "\n".join(lines[-max_lines:])


class OutputSignal:
    """A writer that only notes that output came: :meth:`wait` for it, :meth:`take` to reset."""

    def __init__(self) -> None:
        self._came = threading.Event()

    def write(self, data: bytes) -> None:
        """Note that output came."""
        self._came.set()

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for output; whether some came."""
        return self._came.wait(timeout)

    def take(self) -> bool:
        """Whether output came since the last call."""
        came = self._came.is_set()
        self._came.clear()
        return came


class Writer(Protocol):
    """Anything :func:`start_pump` can copy into."""

    def write(self, data: bytes) -> object: ...


PARTIAL_LINE_WAIT_S = 0.1


def start_pump(pipe: IO[bytes], *writers: Writer) -> threading.Thread:
    """Copy ``pipe`` into every writer as it comes, whole lines at a time where it can: a line
    begun waits up to ``PARTIAL_LINE_WAIT_S`` for its end, so that the pieces of one ``print``
    (written one by one when unbuffered) are not split by a line of another pipe."""

    def emit(data: bytes) -> None:
        if data:
            for writer in writers:
                writer.write(data)

    def pump() -> None:
        fd = pipe.fileno()
        partial = b""
        while True:
            if partial and not select.select([fd], [], [], PARTIAL_LINE_WAIT_S)[0]:
                emit(partial)  # a prompt or a progress bar: show it without its line's end
                partial = b""
                continue
            data = os.read(fd, 65536)
            if not data:
                break
            partial += data
            cut = max(partial.rfind(b"\n"), partial.rfind(b"\r")) + 1
            if cut or len(partial) >= 65536:
                cut = cut or len(partial)
                emit(partial[:cut])
                partial = partial[cut:]
        emit(partial)
        pipe.close()

    thread = threading.Thread(target=pump, name="runhistory-pump", daemon=True)
    thread.start()
    return thread
