"""``import_logdir``: TensorBoard logs written elsewhere, as runs of an experiment.

Every folder that holds event files is one TensorBoard run, and becomes one run here (run type
``imported``), a child of the nearest folder above it that is a run too (or of ``parent``),
named by its path from there. Its event files become its ``logs/`` files, so that
``Tensorboard([run])`` shows everything they hold, and their scalars, text and hparams its
metrics and properties (see :mod:`runhistory.eventlogs`). The run carries the tag
``tensorboard.logdir`` (the folder's absolute path): importing the same folder again finds it
and adds only what is new, since a file's copy among the run's files is as long as what was
read of it. Each piece of a file is stored as metrics first (with a batch id the store
recognises if it comes again) and copied second, so an import stopped anywhere, even killed,
is finished by importing again: no point is lost or doubled.

Imported runs end Completed (Failed when the hparams session says it failed), with their end at
the import: their points' wall times are before it. Importing again moves that end forward.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

from runhistory.core.errors import RunHistoryError, StoreUnavailableError, TensorboardError
from runhistory.core.status import RunStatus
from runhistory.eventlogs.follow import EventLogFollower, event_files, is_event_file
from runhistory.run import Run

if TYPE_CHECKING:
    from runhistory.experiment import Experiment
    from runhistory.store.base import RunStore

__all__ = ["ImportedRun", "LogdirImport", "import_logdir"]

LOGDIR_TAG = "tensorboard.logdir"
IMPORTED_RUN_TYPE = "imported"
LOGS_PREFIX = "logs/"


@dataclass
class ImportedRun:
    """One TensorBoard run folder and the run it went into."""

    folder: Path
    name: str
    run: Run | None = None
    created: bool = False
    points: int = 0
    bytes: int = 0
    error: str | None = None  # why this folder was not imported (the others were)


@dataclass
class _Folder:
    path: Path
    name: str
    parent: "_Folder | None"
    imported: ImportedRun = field(init=False)

    def __post_init__(self) -> None:
        self.imported = ImportedRun(self.path, self.name)


class LogdirImport:
    """The import of one log folder: :attr:`pending_bytes` says how much there is to read, and
    :meth:`run` does it (the CLI shows a progress bar from the two)."""

    def __init__(
        self,
        logdir: str | os.PathLike,
        experiment: "Experiment",
        *,
        parent: Run | None = None,
        report: Callable[[str], None] | None = None,
    ) -> None:
        self.logdir = _checked_logdir(logdir)
        if parent is not None and parent.experiment != experiment:
            raise TensorboardError(
                f"Cannot import {self.logdir} into experiment {experiment.name!r} under run "
                f"{parent.experiment.name}:{parent.number} ({parent.id}): that run is of "
                f"experiment {parent.experiment.name!r}; import into {parent.experiment.name!r} or give a parent of {experiment.name!r}."
            )
        self.experiment = experiment
        self.parent = parent
        self._report = report if report is not None else _print_report
        self._folders = list(_run_folders(self.logdir))
        if not self._folders:
            raise TensorboardError(
                f"No TensorBoard event files under {self.logdir} (files whose names contain 'tfevents'); "
                f"give the folder that TensorBoard's --logdir would be given."
            )
        self._existing = self._imported_before()
        self.pending_bytes = sum(self._pending(folder) for folder in self._folders)

    @property
    def folders(self) -> list[ImportedRun]:
        """Each run folder found, parents before their children."""
        return [folder.imported for folder in self._folders]

    def run(self, on_bytes: Callable[[int], None] | None = None) -> list[ImportedRun]:
        """Import every run folder (a folder that fails is reported and the others go on); returns
        them all, each with its run or its error. ``on_bytes`` hears how many bytes each piece read."""
        for folder in self._folders:
            try:
                self._import_folder(folder, on_bytes)
            except StoreUnavailableError:
                raise
            except RunHistoryError as exc:
                folder.imported.error = str(exc)
                self._report(f"{folder.path}: not imported: {exc}")
        return self.folders

    # --- finding what there is ---

    def _imported_before(self) -> dict[str, Run]:
        found: dict[str, Run] = {}
        for run in self.experiment.get_runs(include_children=True, tags=[LOGDIR_TAG]):
            found.setdefault(run.get_tags().get(LOGDIR_TAG) or "", run)
        return found

    def _pending(self, folder: _Folder) -> int:
        run = self._existing.get(str(folder.path))
        copied = _copied_sizes(run) if run is not None else {}
        return sum(max(0, _size(path) - copied.get(path.name, 0)) for path in event_files(folder.path, recursive=False))

    # --- importing one folder ---

    def _import_folder(self, folder: _Folder, on_bytes: Callable[[int], None] | None) -> None:
        imported = folder.imported
        if folder.parent is not None and folder.parent.imported.run is None:
            raise TensorboardError(f"its parent folder {folder.parent.path} was not imported, so it has no run to belong to")
        run = self._existing.get(str(folder.path))
        if run is None:
            run = self._create_run(folder)
            imported.created = True
        imported.run = run
        store, artifacts = run.workspace.store, run.workspace.artifacts
        _end_now(store, run.id)

        def copy_piece(name: str, start: int, piece: bytes) -> None:
            artifacts.append(run.id, LOGS_PREFIX + name, piece, start)
            imported.bytes += len(piece)
            if on_bytes is not None:
                on_bytes(len(piece))

        follower = EventLogFollower(
            store, run.id, folder.path, recursive=False, offsets=_copied_sizes(run), report=self._report, on_stored=copy_piece
        )
        imported.points += follower.sync(final=True).points
        if follower.session_status == "failure":
            error = {"message": "The TensorBoard hparams session ended with status failure.", "code": "SessionFailed"}
            store.set_status(run.id, RunStatus.FAILED, error=error, only_if_not_terminal=False)
        artifacts.seal(run.id)

    def _create_run(self, folder: _Folder) -> Run:
        parent = folder.parent.imported.run if folder.parent is not None else self.parent
        run = Run.create_in(
            self.experiment, display_name=folder.name, parent_id=None if parent is None else parent.id, run_type=IMPORTED_RUN_TYPE
        )
        run.set_tags({LOGDIR_TAG: str(folder.path)})
        return run


def import_logdir(
    logdir: str | os.PathLike,
    experiment: "Experiment",
    *,
    parent: Run | None = None,
    report: Callable[[str], None] | None = None,
) -> list[ImportedRun]:
    """Import the TensorBoard logs under ``logdir`` into ``experiment``: one run per TensorBoard run
    folder (nested folders become child runs, under ``parent`` when given), with the event files
    as its ``logs/`` files and their scalars, text and hparams as its metrics and properties.
    Importing the same folder again adds only what is new. ``report`` hears each problem once
    (a corrupt record, a tag that cannot be kept); by default they are printed to stderr.

    Raises:
        TensorboardError: ``logdir`` is not a folder, or holds no event files.
    """
    return LogdirImport(logdir, experiment, parent=parent, report=report).run()


def _end_now(store: "RunStore", run_id: str) -> None:
    """End the run now (Completed, or as it ended before): the new points, all written before
    now, are then points of the run."""
    record = store.get_run(run_id)
    ended = record is not None and record.status in RunStatus.TERMINAL
    status = record.status if ended and record is not None else RunStatus.COMPLETED
    store.set_status(run_id, status, error=record.error if ended and record is not None else None, only_if_not_terminal=False)


def _checked_logdir(logdir: str | os.PathLike) -> Path:
    path = Path(logdir).expanduser()
    if not path.exists():
        raise TensorboardError(f"Cannot import {path}: there is no such folder.")
    if not path.is_dir():
        raise TensorboardError(f"Cannot import {path}: it is a file; give the folder that holds the event files.")
    return path.resolve()


def _run_folders(logdir: Path) -> Iterator[_Folder]:
    """Each folder under ``logdir`` that holds event files, parents first, each with the nearest
    such folder above it."""
    runs: dict[Path, _Folder] = {}
    for parent, folders, files in os.walk(logdir):
        folders.sort()
        here = Path(parent)
        if not any(is_event_file(name) for name in files):
            continue
        above = next((runs[p] for p in here.parents if p in runs), None)
        base = above.path if above is not None else (logdir if here != logdir else logdir.parent)
        folder = runs[here] = _Folder(here, here.relative_to(base).as_posix() or here.name, above)
        yield folder


def _copied_sizes(run: Run) -> dict[str, int]:
    """How much of each event file was copied into the run's ``logs/`` (what was read of it)."""
    listing = run.workspace.artifacts.list(run.id, LOGS_PREFIX)
    return {name[len(LOGS_PREFIX) :]: size for name, size in listing.items() if "/" not in name[len(LOGS_PREFIX) :]}


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:  # removed since the listing
        return 0


def _print_report(message: str) -> None:
    print(f"runhistory import: {message}", file=sys.stderr)
