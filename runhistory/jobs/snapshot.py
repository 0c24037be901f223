"""The snapshot of a job's source folder: collected honouring ignore files, stored in the run's files.

``.gitignore`` and ``.runhistoryignore`` files apply to their own folder and below, with
git's rules (``.runhistoryignore`` is read after ``.gitignore``, so it can re-include with
``!``). ``.git``, ``.runhistory``, ``__pycache__`` and ``.venv`` are always left out, and so
is the workspace itself wherever it lies in the folder (its database, run files: see
``Workspace.local_folders``). A source folder larger than the limit (300 MB,
``$RUNHISTORY_SNAPSHOT_LIMIT_MB``) is refused.

Symlinks: a link whose target stays inside the source folder is followed (a file link
snapshots the file, a folder link the folder's files under the link's name). A link that
points outside the folder, or into the workspace, is refused at submit with one sentence
naming every such link: a snapshot holds the job's sources and nothing else of the machine
(it may be uploaded to a team server), and refusing is the choice that never surprises, where
leaving a file out would make the job fail later, far from its cause. A symlink loop is
refused naming the link; a broken link (pointing to nothing) is left out with a warning.
"""

from __future__ import annotations

import errno
import os
import warnings
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Callable, Iterator, Sequence

from runhistory.artifacts.base import ArtifactStore, validate_artifact_name
from runhistory.core import settings
from runhistory.core.errors import JobConfigError, SnapshotLinkError, SnapshotTooLargeError, UnsafeSnapshotNameError
from runhistory.core.sizes import format_size
from runhistory.jobs.spec import SNAPSHOT_PREFIX

if TYPE_CHECKING:
    from pathspec import PathSpec

ALWAYS_SKIPPED = frozenset({".git", ".runhistory", "__pycache__", ".venv"})
IGNORE_FILES = (".gitignore", ".runhistoryignore")
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
    return int(settings.SNAPSHOT_LIMIT_MB.positive_number() * _MB)


def collect_snapshot(
    root: Path, limit_bytes: int | None = None, *, excluded: Sequence[Path] = ()
) -> Snapshot:
    """The files of ``root`` that are not ignored, nor inside ``excluded`` (the workspace's own
    files and folders); SnapshotTooLargeError above the limit, SnapshotLinkError for a link
    that points outside ``root`` (or into ``excluded``) or loops."""
    limit = snapshot_limit_bytes() if limit_bytes is None else limit_bytes
    walk = _Walk(root, excluded)
    files = sorted(walk.files(), key=lambda file: file.name)
    walk.report()
    snapshot = Snapshot(root, files)
    if snapshot.total_bytes > limit:
        raise SnapshotTooLargeError(_too_large_message(snapshot, limit))
    return snapshot


def _too_large_message(snapshot: Snapshot, limit: int) -> str:
    largest = sorted(snapshot.files, key=lambda file: file.size, reverse=True)[:3]
    listed = ", ".join(f"{file.name} ({format_size(file.size)})" for file in largest)
    return (
        f"The source directory {snapshot.root} holds {format_size(snapshot.total_bytes)} to snapshot, over the "
        f"{limit / _MB:.3g} MB limit (largest: {listed}); list what the job does not need in .runhistoryignore "
        f"or .gitignore, or raise ${settings.SNAPSHOT_LIMIT_MB.name}."
    )


class _Walk:
    """One pass over a source folder: its files, and the links it had to refuse or leave out."""

    def __init__(self, root: Path, excluded: Sequence[Path]) -> None:
        self.root = root
        self.real_root = Path(os.path.realpath(root))
        self.excluded = [Path(os.path.realpath(path)) for path in excluded]
        holder = next((path for path in self.excluded if self._is_inside(self.real_root, path)), None)
        if holder is not None:
            raise JobConfigError(
                f"The source directory {root} is inside the workspace's own files ({holder}); copy the job's "
                f"sources to a folder of their own and submit that."
            )
        self.outside: list[str] = []  # "name -> target" of links refused
        self.broken: list[str] = []

    def files(self) -> Iterator[SnapshotFile]:
        """Every file to snapshot (a link loop raises at once)."""
        return self._folder(self.root, self.real_root, "", [], (self.real_root,))

    def report(self) -> None:
        """Refuse the links that point outside; warn of the broken ones."""
        if self.outside:
            listed = _listed(self.outside)
            raise SnapshotLinkError(
                f"The source directory {self.root} has symlinks that point outside it or into the workspace "
                f"({listed}); a snapshot keeps only the job's own files, so copy what the job needs into the "
                f"folder, or list the links in .runhistoryignore."
            )
        if self.broken:
            warnings.warn(
                f"The snapshot of {self.root} leaves out broken symlinks (they point to nothing): "
                f"{_listed(self.broken)}.",
                UserWarning,
                stacklevel=4,
            )

    def _folder(
        self, folder: Path, real: Path, relative: str, rules: _Rules, ancestors: tuple[Path, ...]
    ) -> Iterator[SnapshotFile]:
        spec = _ignore_spec(folder)
        if spec is not None:
            rules = [*rules, (relative, spec)]
        for entry in self._entries(folder, relative):
            if entry.name in ALWAYS_SKIPPED:
                continue
            name = relative + entry.name
            if entry.is_symlink():
                yield from self._link(Path(entry.path), name, rules, ancestors)
                continue
            entry_real = real / entry.name
            if self._is_excluded(entry_real):
                continue
            is_folder = entry.is_dir(follow_symlinks=False)
            if _ignored(name, is_folder, rules):
                continue
            if is_folder:
                yield from self._folder(Path(entry.path), entry_real, name + "/", rules, (*ancestors, entry_real))
            elif entry.is_file(follow_symlinks=False):
                yield SnapshotFile(_checked_name(name), Path(entry.path), entry.stat(follow_symlinks=False).st_size)

    def _link(self, path: Path, name: str, rules: _Rules, ancestors: tuple[Path, ...]) -> Iterator[SnapshotFile]:
        target = self._target(path, name)
        if target is None:
            if not _ignored(name, False, rules):
                self.broken.append(f"{name} -> {os.readlink(path)}")
            return
        is_folder = target.is_dir()
        if _ignored(name, is_folder, rules):
            return
        if not target.is_relative_to(self.real_root) or self._is_excluded(target):
            self.outside.append(f"{name} -> {target}")
            return
        if is_folder:
            if any(target == ancestor or ancestor.is_relative_to(target) for ancestor in ancestors):
                raise SnapshotLinkError(
                    f"The symlink {name} in the source directory {self.root} makes a loop (it points to "
                    f"{target}, a folder that holds it); remove the link or list it in .runhistoryignore."
                )
            yield from self._folder(path, target, name + "/", rules, (*ancestors, target))
        elif target.is_file():
            yield SnapshotFile(_checked_name(name), target, target.stat().st_size)

    def _target(self, path: Path, name: str) -> Path | None:
        """Where the link leads (all links resolved); None when it leads nowhere."""
        try:
            os.stat(path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise SnapshotLinkError(
                    f"The symlink {name} in the source directory {self.root} makes a loop (it points to "
                    f"{os.readlink(path)}, which leads back to itself); remove the link or list it in .runhistoryignore."
                ) from None
            raise _unreadable(path, self.root, exc) from None
        return Path(os.path.realpath(path))

    def _entries(self, folder: Path, relative: str) -> list[os.DirEntry]:
        try:
            with os.scandir(folder) as entries:
                return list(entries)
        except OSError as exc:
            raise _unreadable(folder, self.root, exc) from None

    def _is_excluded(self, real: Path) -> bool:
        return any(self._is_inside(real, path) for path in self.excluded)

    @staticmethod
    def _is_inside(path: Path, folder: Path) -> bool:
        return path == folder or path.is_relative_to(folder)


def _listed(items: list[str], most: int = 5) -> str:
    shown = ", ".join(items[:most])
    return shown if len(items) <= most else f"{shown} and {len(items) - most} more"


def _unreadable(path: Path, root: Path, exc: OSError) -> JobConfigError:
    return JobConfigError(
        f"Cannot read {path} in the source directory {root} ({exc.strerror or exc}); make it readable "
        f"or list it in .runhistoryignore."
    )


def _checked_name(name: str) -> str:
    """The name as the run's files will hold it, refused here (before any run exists) if it cannot be."""
    validate_artifact_name(SNAPSHOT_PREFIX + name)
    return name


def _ignore_spec(folder: Path) -> "PathSpec | None":
    lines: list[str] = []
    for file_name in IGNORE_FILES:
        path = folder / file_name
        if path.is_file():
            lines += path.read_text(errors="replace").splitlines()
    if not lines:
        return None
    from pathspec import GitIgnoreSpec  # start-up speed: only a folder with ignore files needs it

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


def upload_snapshot(
    artifacts: ArtifactStore, run_id: str, snapshot: Snapshot, stop: Callable[[], bool] = lambda: False
) -> bool:
    """Store every file of the snapshot among the run's files, under ``snapshot/``; checks
    ``stop`` between files and returns False when it said stop (the job was canceled)."""
    for file in snapshot.files:
        if stop():
            return False
        try:
            source = open(file.path, "rb")
        except OSError as exc:
            raise JobConfigError(
                f"Cannot read {file.path} of the source directory {snapshot.root} ({exc.strerror or exc}); "
                f"it changed while the job was submitted: submit again."
            ) from None
        with source:
            artifacts.write(run_id, SNAPSHOT_PREFIX + file.name, source)
    return True


def download_snapshot(artifacts: ArtifactStore, run_id: str, folder: Path) -> int:
    """Write the run's snapshot into ``folder`` (new files only); returns the number of files.

    The listing comes from the store, which may be a server this machine does not control:
    every name is checked to stay inside ``folder`` before any file is opened or created.
    """
    names = list(artifacts.list(run_id, SNAPSHOT_PREFIX))
    targets = [(name, snapshot_target(folder, name, run_id)) for name in names]
    for name, target in targets:
        target.parent.mkdir(parents=True, exist_ok=True)
        _check_inside(folder, target.parent, name, run_id)  # a folder made by an earlier name stays a folder
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        with os.fdopen(os.open(target, flags, 0o666), "wb") as out:
            artifacts.download(run_id, name, out)
    return len(names)


def snapshot_target(folder: Path, name: str, run_id: str = "") -> Path:
    """Where the snapshot file ``name`` (``snapshot/...``) goes in ``folder``; UnsafeSnapshotNameError
    for a name that is not a plain relative name inside it."""
    relative = name[len(SNAPSHOT_PREFIX) :] if name.startswith(SNAPSHOT_PREFIX) else None
    parts = PurePosixPath(relative).parts if relative else ()
    if (
        not relative
        or relative.startswith("/")
        or "\\" in relative
        or "\0" in relative
        or any(part in ("", ".", "..") for part in relative.split("/"))
        or PurePosixPath(relative).is_absolute()
        or Path(relative).is_absolute()
        or Path(relative).drive
    ):
        raise _unsafe(name, folder, run_id)
    target = folder.joinpath(*parts)
    _check_inside(folder, target, name, run_id)
    return target


def _check_inside(folder: Path, path: Path, name: str, run_id: str) -> None:
    if not Path(os.path.realpath(path)).is_relative_to(os.path.realpath(folder)):
        raise _unsafe(name, folder, run_id)


def _unsafe(name: str, folder: Path, run_id: str) -> UnsafeSnapshotNameError:
    return UnsafeSnapshotNameError(
        f"The snapshot of run {run_id} lists the file {name!r}, which would be written outside the job's "
        f"working folder {folder}; nothing was written (the store holding the run's files may be compromised)."
    )
