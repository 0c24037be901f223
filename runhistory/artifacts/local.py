"""The artifact store on a local (or mounted) folder: ``<root>/<run id>/<name>``.

Uploads are written to a temporary file in ``<root>/.tmp/`` (no run id starts with a dot, so
no run's listing reaches it) and then renamed into place: a reader sees the old file or the
new one, never half of one, and a run's files are exactly the names it was given. Files are
created with mode ``0o666`` less the umask (and the folder's default ACL), as ``open()``
creates them, so a team-shared folder stays shared.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import time
from pathlib import Path
from typing import BinaryIO

from runhistory.artifacts.base import (
    ArtifactStore,
    file_conflict,
    folder_conflict,
    validate_artifact_name,
    validate_prefix,
    validate_range,
    validate_run_folder,
)
from runhistory.core.errors import ArtifactNotFoundError, ArtifactPathError, ArtifactStorageError, RunHistoryError

TEMPORARY_FOLDER = ".tmp"
COPY_CHUNK_BYTES = 1 << 22
STALE_TEMPORARY_SECONDS = 24 * 3600  # an upload that wrote nothing for a day was killed

_FULL = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is used up"}
_TOO_BIG = {errno.EFBIG: "the file is larger than this process may write (its file size limit, `ulimit -f`)"}


class LocalArtifactStore(ArtifactStore):
    """Files of each run in a folder of its own under ``root``."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root).resolve()
        self.uri = str(self.root)
        self._temporary = self.root / TEMPORARY_FOLDER
        self._swept = False

    def verify(self) -> None:
        """Raise a clear error unless the folder exists (or can be made) and can be written."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunHistoryError(f"Cannot use {self.root} for the runs' files: {exc.strerror or exc}.") from exc
        if not self.root.is_dir() or not os.access(self.root, os.W_OK | os.X_OK):
            raise RunHistoryError(f"Cannot use {self.root} for the runs' files: it is not a folder this user can write.")

    # -- names and errors -------------------------------------------------------------------

    def _path(self, run_id: str, name: str) -> Path:
        return self.root / validate_run_folder(run_id) / validate_artifact_name(name, run_id)

    def _storage_error(self, exc: OSError, run_id: str, name: str, action: str) -> RunHistoryError:
        """One sentence for an OSError of the filesystem while writing ``name``."""
        what = f"Cannot {action} {name!r} of run {run_id} in {self.root}"
        if exc.errno == errno.ENAMETOOLONG:
            return ArtifactPathError(f"{what}: the path is too long for this filesystem; give the file a shorter name.")
        if exc.errno in _FULL:
            advice = f"{_FULL[exc.errno]}; free some space there (or raise the quota) and upload it again"
        elif exc.errno in _TOO_BIG:
            advice = f"{_TOO_BIG[exc.errno]}; raise the limit and upload it again"
        else:
            advice = f"{(exc.strerror or str(exc)).lower()}; check that folder and upload it again"
        error = ArtifactStorageError(f"{what}: {advice} (the file is left as it was).")
        error.errno = exc.errno
        return error

    def _diagnose(self, exc: OSError, run_id: str, name: str, action: str) -> RunHistoryError:
        """The collision behind a failed create (``a/b`` after ``a``, ``c`` after ``c/d``), else the OS's reason."""
        run_folder = self.root / run_id
        parts = name.split("/")
        for depth in range(1, len(parts)):
            ancestor = run_folder.joinpath(*parts[:depth])
            if ancestor.exists() and not ancestor.is_dir():
                return file_conflict(name, run_id, "/".join(parts[:depth]))
        path = run_folder / name
        if path.is_dir():
            return folder_conflict(name, run_id, _first_file(path, run_folder))
        return self._storage_error(exc, run_id, name, action)

    def _make_parent(self, run_id: str, name: str, path: Path, action: str) -> list[Path]:
        """Make the folders ``name`` needs; returns those it made (deepest first), to remove on failure."""
        missing = []
        folder = path.parent
        while not folder.is_dir() and folder != self.root:
            missing.append(folder)
            folder = folder.parent
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            _remove_folders(missing)
            raise self._diagnose(exc, run_id, name, action) from None
        if path.is_dir():
            raise folder_conflict(name, run_id, _first_file(path, self.root / run_id))
        return missing

    def _temporary_file(self, run_id: str, name: str) -> tuple[int, Path]:
        """A new, empty temporary file outside every run's folder (mode 0o666 less the umask)."""
        try:
            self._temporary.mkdir(parents=True, exist_ok=True)
            if not self._swept:
                self._swept = True
                _remove_stale(self._temporary)
            while True:
                path = self._temporary / f"upload-{secrets.token_hex(8)}"
                try:
                    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), path
                except FileExistsError:
                    continue
        except OSError as exc:
            raise self._storage_error(exc, run_id, name, "store") from None

    # -- the interface ----------------------------------------------------------------------

    def write(self, run_id: str, name: str, source: BinaryIO) -> int:
        path = self._path(run_id, name)
        made = self._make_parent(run_id, name, path, "store")
        try:
            handle, temporary = self._temporary_file(run_id, name)
        except BaseException:
            _remove_folders(made)
            raise
        try:
            try:
                while chunk := source.read(COPY_CHUNK_BYTES):  # the source's own errors are the caller's
                    try:
                        _write_all(handle, chunk)
                    except OSError as exc:
                        raise self._storage_error(exc, run_id, name, "store") from None
            finally:
                closed_with = _close(handle)
            if closed_with is not None:  # NFS and quotas may report a full disk only here
                raise self._storage_error(closed_with, run_id, name, "store")
            try:
                os.replace(temporary, path)
            except OSError as exc:
                raise self._diagnose(exc, run_id, name, "store") from None
        except BaseException:
            temporary.unlink(missing_ok=True)
            _remove_folders(made)  # a failed upload leaves no trace, not even an empty folder
            raise
        return path.stat().st_size

    def append(self, run_id: str, name: str, data: bytes, offset: int | None = None) -> int:
        path = self._path(run_id, name)
        if offset is not None:
            validate_range(offset, None, name, run_id)
        made = self._make_parent(run_id, name, path, "append to")
        created = True
        try:
            try:
                handle = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o666)
            except FileExistsError:
                created = False
                handle = os.open(path, os.O_WRONLY | os.O_APPEND)
        except OSError as exc:
            _remove_folders(made)
            raise self._diagnose(exc, run_id, name, "append to") from None
        try:
            end = os.fstat(handle).st_size
            if offset is not None and offset != end:
                if offset > end:
                    raise ArtifactPathError(f"Cannot append {name!r} of run {run_id} at {offset}: it has {end} bytes.")
                os.ftruncate(handle, offset)
                end = offset
            try:
                _write_all(handle, data)
            except OSError as exc:
                with contextlib.suppress(OSError):  # no half-appended piece: the caller sends it again at `end`
                    os.ftruncate(handle, end)
                raise self._storage_error(exc, run_id, name, "append to") from None
            return end + len(data)
        except BaseException:
            if created:  # a refused first append leaves no empty file behind
                path.unlink(missing_ok=True)
                _remove_folders(made)
            raise
        finally:
            os.close(handle)

    def read(self, run_id: str, name: str, offset: int = 0, length: int | None = None) -> bytes:
        path = self._path(run_id, name)
        validate_range(offset, length, name, run_id)
        try:
            with open(path, "rb") as source:
                source.seek(offset)
                return source.read(-1 if length is None else length)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise ArtifactNotFoundError(f"Run {run_id} has no file {name!r}.") from None
        except OSError as exc:
            raise ArtifactStorageError(f"Cannot read {name!r} of run {run_id} in {self.root}: {exc.strerror or exc}.") from None

    def list(self, run_id: str, prefix: str = "") -> dict[str, int]:
        run_folder = self.root / validate_run_folder(run_id)
        validate_prefix(prefix, run_id)
        start = run_folder
        folder_part = prefix.rpartition("/")[0]
        if folder_part:  # walk only the folder the prefix names, when it names one
            try:
                start = run_folder / validate_artifact_name(folder_part)
            except ArtifactPathError:
                return {}
        if not start.is_dir():
            return {}
        found = {}
        for folder, _dirs, files in os.walk(start):
            for file_name in files:
                path = Path(folder, file_name)
                name = path.relative_to(run_folder).as_posix()
                if name.startswith(prefix):
                    try:
                        found[name] = path.stat().st_size
                    except FileNotFoundError:  # a dangling link
                        continue
        return dict(sorted(found.items()))

    def size(self, run_id: str, name: str) -> int | None:
        path = self._path(run_id, name)
        return path.stat().st_size if path.is_file() else None


def _write_all(handle: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(handle, view) :]


def _close(handle: int) -> OSError | None:
    try:
        os.close(handle)
    except OSError as exc:
        return exc
    return None


def _remove_folders(folders: list[Path]) -> None:
    """Remove the folders a failed write made, deepest first, while they are empty."""
    for folder in folders:
        try:
            folder.rmdir()
        except FileNotFoundError:  # never made: the failure came first
            continue
        except OSError:  # not empty: someone else's files are in it now
            return


def _first_file(folder: Path, run_folder: Path) -> str | None:
    """The name of one file under ``folder`` (to name in an error), or None when it holds none."""
    for parent, _dirs, files in os.walk(folder):
        if files:
            return Path(parent, sorted(files)[0]).relative_to(run_folder).as_posix()
    return None


def _remove_stale(folder: Path) -> None:
    """Remove temporary files that killed uploads left behind (a live upload keeps its file's mtime fresh)."""
    cutoff = time.time() - STALE_TEMPORARY_SECONDS
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                try:
                    if entry.is_file(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_mtime < cutoff:
                        os.unlink(entry.path)
                except OSError:
                    continue
    except OSError:
        return
