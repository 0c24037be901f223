"""A job's driver log read piece by piece from an offset, as the run page follows it."""

from __future__ import annotations

from runhistory.artifacts.base import ArtifactStore
from runhistory.core.errors import ArtifactNotFoundError
from runhistory.watch import DRIVER_LOG

MAX_READ = 256 << 10  # bytes of log one poll returns at most


def complete_utf8(data: bytes) -> bytes:
    """``data`` without a UTF-8 character cut at its end (that comes whole with the next read)."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte < 0x80:
            return data
        if byte >= 0xC0:  # the lead byte of the last character: is the character whole?
            needed = 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            return data if back >= needed else data[:-back]
    return data


def read_log(artifacts: ArtifactStore, run_id: str, offset: int, name: str = DRIVER_LOG) -> tuple[str, int]:
    """The log's text from byte ``offset`` (at most :data:`MAX_READ` bytes) and the next offset;
    ``("", offset)`` while the log does not exist."""
    try:
        data = artifacts.read(run_id, name, offset, MAX_READ)
    except ArtifactNotFoundError:
        return "", offset
    data = complete_utf8(data)
    return data.decode("utf-8", "replace"), offset + len(data)
