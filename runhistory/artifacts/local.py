"""The artifact store on a local (or mounted) folder: ``<root>/<run id>/<name>``."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO

from runhistory.artifacts.base import ArtifactStore, validate_artifact_name
from runhistory.errors import ArtifactNotFoundError, ArtifactPathError, RunHistoryError


class LocalArtifactStore(ArtifactStore):
    """Files of each run in a folder of its own under ``root``."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root).resolve()
        self.uri = str(self.root)

    def verify(self) -> None:
        """Raise a clear error unless the folder exists (or can be made) and can be written."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunHistoryError(f"Cannot use {self.root} for the runs' files: {exc.strerror or exc}.") from exc
        if not self.root.is_dir() or not os.access(self.root, os.W_OK | os.X_OK):
            raise RunHistoryError(f"Cannot use {self.root} for the runs' files: it is not a folder this user can write.")

    def _path(self, run_id: str, name: str) -> Path:
        run_folder = self.root / validate_artifact_name(run_id)
        return run_folder / validate_artifact_name(name, run_id)

    def write(self, run_id: str, name: str, source: BinaryIO) -> int:
        path = self._path(run_id, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write beside, then rename: a reader never sees half a file.
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        try:
            with os.fdopen(handle, "wb") as out:
                shutil.copyfileobj(source, out, 1 << 22)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return path.stat().st_size

    def append(self, run_id: str, name: str, data: bytes, offset: int | None = None) -> int:
        path = self._path(run_id, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "ab") as out:
            end = out.tell()
            if offset is not None and offset != end:
                if offset > end:
                    raise ArtifactPathError(f"Cannot append {name!r} of run {run_id} at {offset}: it has {end} bytes.")
                out.truncate(offset)
                out.seek(offset)  # truncate() leaves the position (so tell()) where it was
            out.write(data)
            return out.tell()

    def read(self, run_id: str, name: str, offset: int = 0, length: int | None = None) -> bytes:
        path = self._path(run_id, name)
        try:
            with open(path, "rb") as source:
                source.seek(offset)
                return source.read(-1 if length is None else length)
        except (FileNotFoundError, IsADirectoryError):
            raise ArtifactNotFoundError(f"Run {run_id} has no file {name!r}.") from None

    def list(self, run_id: str, prefix: str = "") -> dict[str, int]:
        run_folder = self.root / validate_artifact_name(run_id)
        if not run_folder.is_dir():
            return {}
        found = {}
        for folder, _dirs, files in os.walk(run_folder):
            for file_name in files:
                if file_name.startswith(".upload-"):
                    continue
                path = Path(folder, file_name)
                name = path.relative_to(run_folder).as_posix()
                if name.startswith(prefix):
                    found[name] = path.stat().st_size
        return dict(sorted(found.items()))

    def size(self, run_id: str, name: str) -> int | None:
        path = self._path(run_id, name)
        return path.stat().st_size if path.is_file() else None
