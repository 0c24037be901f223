"""The artifact-store interface: each run's files, addressed by relative names.

Names use forward slashes and stay inside their run: no absolute paths, no ``..``,
no empty parts. Reads can be ranged and writes can append, so that a growing file
(a job's TensorBoard events, its driver log) can be streamed both ways.
"""

from __future__ import annotations

import abc
import re
from typing import BinaryIO

from runhistory.errors import ArtifactPathError

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def validate_artifact_name(name: str, run_id: str = "") -> str:
    """The name in normal form (forward slashes), or an error if it would leave the run's folder."""
    where = f" of run {run_id}" if run_id else ""
    if not isinstance(name, str) or not name.strip():
        raise ArtifactPathError(f"File name{where} must be a non-empty string, got {name!r}.")
    normal = name.replace("\\", "/")
    if normal.startswith("/") or re.match(r"^[A-Za-z]:", normal):
        raise ArtifactPathError(f"File name {name!r}{where} is absolute; give a name relative to the run's files.")
    parts = [part for part in normal.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise ArtifactPathError(f"File name {name!r}{where} contains '..' and would escape the run's files.")
    if not parts or _CONTROL.search(normal):
        raise ArtifactPathError(f"File name {name!r}{where} is empty or contains control characters.")
    return "/".join(parts)


class ArtifactStore(abc.ABC):
    """The files of runs. Every method takes the run id and a name inside that run."""

    uri: str

    @abc.abstractmethod
    def write(self, run_id: str, name: str, source: BinaryIO) -> int:
        """Store (or replace) a file from a readable binary stream; returns its size."""

    @abc.abstractmethod
    def append(self, run_id: str, name: str, data: bytes, offset: int | None = None) -> int:
        """Append bytes (at ``offset`` when given, which must not pass the end); returns the new size."""

    @abc.abstractmethod
    def read(self, run_id: str, name: str, offset: int = 0, length: int | None = None) -> bytes:
        """Bytes of a file, from ``offset``, at most ``length`` of them."""

    @abc.abstractmethod
    def list(self, run_id: str, prefix: str = "") -> dict[str, int]:
        """Names (sorted) and sizes of the run's files whose names start with ``prefix``."""

    @abc.abstractmethod
    def size(self, run_id: str, name: str) -> int | None:
        """The size of one file, or None when it does not exist."""

    def verify(self) -> None:
        """Raise a clear error when the store cannot be used (the server checks before it serves)."""

    def seal(self, run_id: str) -> int:
        """Say that the run's files will not grow any more, so the store may lay them out for
        reading (S3 turns appended pieces into one object); returns how many files it rewrote."""
        return 0

    def download(self, run_id: str, name: str, destination: BinaryIO, chunk_size: int = 1 << 22) -> None:
        """Copy a file into a writable binary stream, chunk by chunk."""
        offset = 0
        while True:
            data = self.read(run_id, name, offset, chunk_size)
            if not data:
                return
            destination.write(data)
            offset += len(data)
