"""``export_to_tensorboard``: a run history as TensorBoard event files, one TensorBoard run per run."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Sequence

from runhistory.errors import TensorboardError
from runhistory.tensorboard.history import HistoryWriter, remove_previous_export
from runhistory.tensorboard.layout import plan, resolve_runs

if TYPE_CHECKING:
    from runhistory.experiment import Experiment
    from runhistory.run import Run
    from runhistory.workspace import Workspace

__all__ = ["export_to_tensorboard"]


def check_logdir(logdir: str | os.PathLike) -> Path:
    """The log folder as a Path; an error when it is a file."""
    root = Path(logdir)
    if root.exists() and not root.is_dir():
        raise TensorboardError(f"Cannot export to {root}: it is a file, not a folder.")
    return root


def export_to_tensorboard(
    run_data: "Run | Experiment | Iterable[Run | str] | str",
    logdir: str | os.PathLike,
    recursive: bool = True,
    hparams: Sequence[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
    workspace: "Workspace | None" = None,
) -> list[Path]:
    """Write the runs' metrics as TensorBoard event files under ``logdir``; returns the run folders.

    ``run_data``: a Run, an Experiment (its top-level runs), a list of runs, a run id or
    ``EXPERIMENT:NUMBER``. Each run gets its own folder, children nested under their parent
    (with ``recursive``). Runs of a sweep (children of one run, or runs given together) become
    HParams sessions: their tags, properties and the metrics named in ``hparams`` are the
    hyperparameters, their scalar series the session's metrics. Exporting again replaces
    what an earlier export wrote. ``progress(done, total)`` is called after each run. Run ids
    are looked up in ``workspace`` (default: ``Workspace.from_config()``).
    """
    root = check_logdir(logdir)
    nodes = plan(resolve_runs(run_data, workspace), recursive=recursive)
    for done, node in enumerate(nodes, start=1):
        folder = root / node.folder
        remove_previous_export(folder)
        writer = HistoryWriter(node.run, folder, in_sweep=node.in_sweep, hparam_names=hparams or ())
        try:
            writer.sync(final=True)
        finally:
            writer.close()
        if progress is not None:
            progress(done, len(nodes))
    return [root / node.folder for node in nodes]
