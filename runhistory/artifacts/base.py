"""The artifact-store interface: each run's files, addressed by relative names.

A name is one path: parts separated by forward slashes, each part a real name (not empty,
not ``.`` or ``..``), with no backslashes, control characters or lone surrogates, at most
:data:`MAX_PART_BYTES` bytes a part and :data:`MAX_NAME_BYTES` bytes in all (UTF-8). Every
store checks names with :func:`validate_artifact_name` before it touches anything, so the
SDK, the server and any client hear the same sentence. Reads can be ranged and writes can
append, so that a growing file (a job's TensorBoard events, its driver log) can be streamed
both ways. A name that collides with a file or folder the run already has (``a/b`` after
``a``, ``c`` after ``c/d``) is :class:`~runhistory.core.errors.ArtifactConflictError` on every store.
"""

from __future__ import annotations

import abc
import re
from typing import Any, BinaryIO

from runhistory.core.errors import ArtifactConflictError, ArtifactPathError
from runhistory.core.validation import find_control_character, is_encodable

MAX_PART_BYTES = 255  # what every common filesystem allows for one file or folder name
MAX_NAME_BYTES = 1024  # S3's key limit, and well inside PATH_MAX
_DRIVE = re.compile(r"^[A-Za-z]:(/|$)")


def _shown(name: Any, limit: int = 60) -> str:
    """``name`` as a message shows it: quoted, escaped, cut short when long."""
    if not isinstance(name, str):
        return repr(name)[:limit]
    return repr(name) if len(name) <= limit else repr(name[:limit]) + "..."


def validate_artifact_name(name: Any, run_id: str = "") -> str:
    """The name, checked: raises :class:`ArtifactPathError` (one sentence) unless it is a
    relative name inside the run's files that every store can keep (see the module)."""
    where = f" of run {run_id}" if run_id else ""
    if not isinstance(name, str):
        raise ArtifactPathError(f"File name{where} must be a string, got {type(name).__name__} {_shown(name)}.")
    if not name.strip():
        raise ArtifactPathError(f"File name{where} is empty; give the file a name, such as 'outputs/model.pkl'.")
    shown = _shown(name)
    size = len(name.encode("utf-8", "surrogatepass"))  # first: a huge name costs no more than this
    if size > MAX_NAME_BYTES:
        raise ArtifactPathError(f"File name {shown}{where} is {size} bytes long; the limit is {MAX_NAME_BYTES} bytes (UTF-8).")
    if not is_encodable(name):
        raise ArtifactPathError(
            f"File name {shown}{where} is not valid Unicode (it holds a lone surrogate); give it as proper text."
        )
    control = find_control_character(name, c1=True)
    if control:
        raise ArtifactPathError(f"File name {shown}{where} contains the control character {control!r}; remove it.")
    if "\\" in name:
        raise ArtifactPathError(f"File name {shown}{where} contains a backslash; separate folders with '/'.")
    if name.startswith("/") or _DRIVE.match(name):
        raise ArtifactPathError(f"File name {shown}{where} is absolute; give a name relative to the run's files.")
    parts = name.split("/")
    if ".." in parts:
        raise ArtifactPathError(f"File name {shown}{where} contains '..' and would escape the run's files.")
    if "" in parts or "." in parts:
        raise ArtifactPathError(
            f"File name {shown}{where} has an empty or '.' part (a trailing, doubled or './' slash); "
            f"give each file one plain name, such as 'outputs/model.pkl'."
        )
    for part in parts:
        part_size = len(part.encode("utf-8"))
        if part_size > MAX_PART_BYTES:
            raise ArtifactPathError(
                f"File name {shown}{where} has a part of {part_size} bytes ({_shown(part, 30)}); "
                f"each part between slashes may have at most {MAX_PART_BYTES} bytes (UTF-8)."
            )
    return name


def validate_run_folder(run_id: Any) -> str:
    """The run id, checked as the one folder name that holds the run's files: raises
    :class:`ArtifactPathError` unless it is a single plain part that does not start with a dot
    (which keeps a store's own folders, such as a local store's ``.tmp``, out of every run's reach)."""
    plain = isinstance(run_id, str) and run_id and not run_id.startswith(".") and "/" not in run_id and "\\" not in run_id
    if not plain or not is_encodable(run_id) or find_control_character(run_id, c1=True):
        raise ArtifactPathError(
            f"Run id {_shown(run_id)} cannot name a run's files: use the id the run store gave the run."
        )
    size = len(run_id.encode("utf-8"))
    if size > MAX_PART_BYTES:
        raise ArtifactPathError(
            f"Run id {_shown(run_id)} is {size} bytes long; a run's files need an id of at most {MAX_PART_BYTES} bytes."
        )
    return run_id


def validate_prefix(prefix: Any, run_id: str) -> str:
    """A listing prefix, checked: a string that can be sent anywhere (no lone surrogates or control characters)."""
    if not isinstance(prefix, str) or not is_encodable(prefix) or find_control_character(prefix, c1=True):
        raise ArtifactPathError(
            f"File name prefix {_shown(prefix)} of run {run_id} is not plain text; give the start of a file name."
        )
    return prefix


def validate_range(offset: Any, length: Any, name: str, run_id: str) -> None:
    """Refuse a negative (or non-integer) offset or length, before any store sees it."""
    for what, value in (("offset", offset), ("length", length)):
        if value is None and what == "length":
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ArtifactPathError(
                f"Cannot use {what} {value!r} for {_shown(name)} of run {run_id}: give a whole number, 0 or more."
            )


def folder_conflict(name: str, run_id: str, inside: str | None) -> ArtifactConflictError:
    """The error for a file ``name`` where the run has a folder of that name (holding ``inside``)."""
    holding = f" (it holds {_shown(inside)})" if inside else ""
    return ArtifactConflictError(
        f"Cannot store {_shown(name)} in run {run_id}: the run already has a folder of that name{holding}; "
        f"choose another name."
    )


def file_conflict(name: str, run_id: str, existing: str) -> ArtifactConflictError:
    """The error for a file ``name`` under ``existing``, which the run already has as a file."""
    return ArtifactConflictError(
        f"Cannot store {_shown(name)} in run {run_id}: the run already has a file {_shown(existing)}, "
        f"which cannot also be a folder; choose another name."
    )


class ArtifactStore(abc.ABC):
    """The files of runs. Every method takes the run id and a name inside that run."""

    uri: str

    @abc.abstractmethod
    def write(self, run_id: str, name: str, source: BinaryIO) -> int:
        """Store (or replace) a file from a readable binary stream; returns its size.

        Raises:
            ArtifactPathError: a name :func:`validate_artifact_name` refuses (nothing is touched).
            ArtifactConflictError: the run has a folder of that name, or a file where the name needs a folder.
            ArtifactStorageError: the store could not keep it (disk full, quota, size limit); readers
                still see the previous version, if any, and no partial file is left.
        """

    @abc.abstractmethod
    def append(self, run_id: str, name: str, data: bytes, offset: int | None = None) -> int:
        """Append bytes (at ``offset`` when given, which must not pass the end); returns the new size.

        Raises the errors of :meth:`write`; after an :class:`ArtifactStorageError` the file ends where
        this append would have started, so the same piece can be sent again at that offset.
        """

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
