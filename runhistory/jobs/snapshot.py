"""The snapshot of a job's source folder: collected honouring ignore files, stored in the run's files.

``.gitignore`` and ``.runhistoryignore`` files apply to their own folder and below, with
git's rules (``.runhistoryignore`` is read after ``.gitignore``, so it can re-include with
``!``). ``.git``, ``.runhistory``, ``__pycache__`` and ``.venv`` are always left out. A
source folder larger than the limit (300 MB, ``$RUNHISTORY_SNAPSHOT_LIMIT_MB``) is refused.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from runhistory.artifacts.base import ArtifactStore
from runhistory.errors import JobConfigError, SnapshotTooLargeError
from runhistory.jobs.spec import SNAPSHOT_PREFIX

if TYPE_CHECKING:
    from pathspec import PathSpec

ALWAYS_SKIPPED = frozenset({".git", ".runhistory", "__pycache__", ".venv"})
IGNORE_FILES = (".gitignore", ".runhistoryignore")
DEFAULT_LIMIT_MB = 300.0
ENV_LIMIT_MB = "RUNHISTORY_SNAPSHOT_LIMIT_MB"
_MB = 1024 * 1024

_Rules = list[tuple[str, "PathSpec"]]  # (folder relative to the root, its combined ignore spec)


@dataclass(frozen=True)
class SnapshotFile:
    """One file of a snapshot: its name relative to the root, where it is, its size."""

    name: str
    path: Path
    size: int


@dataclass(frozen=True)
class Snapshot:
    """The files of a source folder that go into a job's snapshot."""

    root: Path
    files: list[SnapshotFile]

    @property
    def total_bytes(self) -> int:
        """The size of all files together."""
        return sum(file.size for file in self.files)


def snapshot_limit_bytes() -> int:
    """The largest snapshot allowed, from ``$RUNHISTORY_SNAPSHOT_LIMIT_MB`` (default 300 MB)."""
    text = os.environ.get(ENV_LIMIT_MB, "").strip()
    if not text:
        return int(DEFAULT_LIMIT_MB * _MB)
    try:
        limit = float(text)
    except ValueError:
        raise JobConfigError(f"${ENV_LIMIT_MB} must be a number of megabytes, got {text!r}.") from None
    return int(limit * _MB)


def collect_snapshot(root: Path, limit_bytes: int | None = None) -> Snapshot:
    """The files of ``root`` that are not ignored; SnapshotTooLargeError above the limit."""
    limit = snapshot_limit_bytes() if limit_bytes is None else limit_bytes
    files = sorted(_walk(root, "", []), key=lambda file: file.name)
    snapshot = Snapshot(root, files)
    if snapshot.total_bytes > limit:
        raise SnapshotTooLargeError(_too_large_message(snapshot, limit))
    return snapshot


def _too_large_message(snapshot: Snapshot, limit: int) -> str:
    largest = sorted(snapshot.files, key=lambda file: file.size, reverse=True)[:3]
    listed = ", ".join(f"{file.name} ({_size(file.size)})" for file in largest)
    return (
        f"The source directory {snapshot.root} holds {_size(snapshot.total_bytes)} to snapshot, over the "
        f"{limit / _MB:.3g} MB limit (largest: {listed}); list what the job does not need in .runhistoryignore "
        f"or .gitignore, or raise ${ENV_LIMIT_MB}."
    )


def _size(size: int) -> str:
    return f"{size / _MB:.1f} MB" if size >= _MB / 10 else f"{size / 1024:.1f} KB"


def _walk(folder: Path, relative: str, rules: _Rules) -> Iterator[SnapshotFile]:
    spec = _ignore_spec(folder)
    if spec is not None:
        rules = [*rules, (relative, spec)]
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name in ALWAYS_SKIPPED:
                continue
            name = relative + entry.name
            is_folder = entry.is_dir(follow_symlinks=False)
            if _ignored(name, is_folder, rules):
                continue
            if is_folder:
                yield from _walk(Path(entry.path), name + "/", rules)
            elif entry.is_file():
                yield SnapshotFile(name, Path(entry.path), entry.stat().st_size)


def _ignore_spec(folder: Path) -> "PathSpec | None":
    lines: list[str] = []
    for file_name in IGNORE_FILES:
        path = folder / file_name
        if path.is_file():
            lines += path.read_text(errors="replace").splitlines()
    if not lines:
        return None
    from pathspec import GitIgnoreSpec

    return GitIgnoreSpec.from_lines(lines)


def _ignored(name: str, is_folder: bool, rules: _Rules) -> bool:
    """Whether the deepest ignore rule that speaks about ``name`` excludes it."""
    ignored = False
    for base, spec in rules:
        path = name[len(base) :] + ("/" if is_folder else "")
        verdict = spec.check_file(path).include
        if verdict is not None:
            ignored = verdict
    return ignored


def upload_snapshot(artifacts: ArtifactStore, run_id: str, snapshot: Snapshot) -> None:
    """Store every file of the snapshot among the run's files, under ``snapshot/``."""
    for file in snapshot.files:
        with open(file.path, "rb") as source:
            artifacts.write(run_id, SNAPSHOT_PREFIX + file.name, source)


def download_snapshot(artifacts: ArtifactStore, run_id: str, folder: Path) -> int:
    """Write the run's snapshot into ``folder``; returns the number of files."""
    names = list(artifacts.list(run_id, SNAPSHOT_PREFIX))
    for name in names:
        target = folder / name[len(SNAPSHOT_PREFIX) :]
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "wb") as out:
            artifacts.download(run_id, name, out)
    return len(names)
