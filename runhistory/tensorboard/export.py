"""``export_to_tensorboard``: a run history as TensorBoard event files, one TensorBoard run per run."""

from __future__ import annotations

import itertools
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Sequence

from runhistory.core.errors import TensorboardError
from runhistory.core.paths import refuse_non_folder
from runhistory.protocol.series_of_runs import read_in_parts
from runhistory.store.base import MetricSeries, RunStatus
from runhistory.tensorboard.follow import LogsCopier
from runhistory.tensorboard.history import HistoryWriter, remove_previous_export
from runhistory.tensorboard.layout import RunNode, plan, resolve_runs, single_top

if TYPE_CHECKING:
    import logging

    from runhistory.experiment import Experiment
    from runhistory.run import Run
    from runhistory.workspace import Workspace

__all__ = ["export_to_tensorboard"]


def check_logdir(logdir: str | os.PathLike) -> Path:
    """The log folder as a Path; an error when it is a file."""
    root = Path(logdir)
    refuse_non_folder(root, "Cannot export to", TensorboardError)
    return root


def export_to_tensorboard(
    run_data: "Run | Experiment | Iterable[Run | str] | str",
    logsdir: str | os.PathLike | None = None,
    logger: "logging.Logger | logging.LoggerAdapter | None" = None,
    recursive: bool = True,
    *,
    logdir: str | os.PathLike | None = None,
    hparams: Sequence[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
    workspace: "Workspace | None" = None,
) -> list[Path]:
    """Write the runs' metrics as TensorBoard event files under ``logsdir``; returns the run folders.

    azureml's signature: ``export_to_tensorboard(run_data, logsdir, logger=None, recursive=True)``
    (``logdir=`` is accepted for ``logsdir``). ``run_data``: a Run, an Experiment (its top-level
    runs), a list of runs, a run id or ``EXPERIMENT:NUMBER``. Each run gets its own folder,
    children nested under their parent (with ``recursive``), and each run is written once,
    also when a list holds a run and its children. Runs of a sweep (children of one run, or
    runs given together) become HParams sessions: their tags, properties and the metrics
    named in ``hparams`` are the hyperparameters, their scalar series the session's metrics.
    A run's own ``logs/`` files (the event files its code wrote) are copied into its folder as
    they are, and the series read from them are not written a second time.
    Exporting again replaces what an earlier export wrote. An item that cannot be exported
    (a missing or corrupt image) is left out and reported once, as a warning to ``logger``
    or on stderr; the rest is written. ``progress(done, total)`` is called after each run.
    Run ids are looked up in ``workspace`` (default: the configured one, never created).
    """
    root = check_logdir(_one_logdir(logsdir, logdir))
    report = _Reporter(_checked_logger(logger))
    nodes = plan(resolve_runs(run_data, workspace), recursive=recursive)
    top = single_top(nodes)
    for done, (node, series) in enumerate(_with_series(nodes), start=1):
        _export_run(node, root / node.folder, series, hparams, report, describes_sweep=node is top)
        if progress is not None:
            progress(done, len(nodes))
    return [root / node.folder for node in nodes]


POINTS_PER_READ = 1_000_000  # about how many points one read of many runs' series holds
RUNS_PER_READ = 100


def _with_series(nodes: list[RunNode]) -> Iterator[tuple[RunNode, dict[str, MetricSeries]]]:
    """Each node with its run's whole series, read for many runs at once (a few queries rather
    than a few per run) in parts of about POINTS_PER_READ points, so that memory stays bounded."""
    for workspace, group in itertools.groupby(nodes, key=lambda node: node.run.workspace):
        pending = list(group)
        for node in pending:
            node.run.flush()
        run_ids = [node.run.id for node in pending]
        read = workspace.store.get_metrics_of_runs
        for count, series_of in read_in_parts(read, run_ids, POINTS_PER_READ, RUNS_PER_READ):
            for node in pending[:count]:
                yield node, series_of.get(node.run.id, {})
            pending = pending[count:]


def _export_run(
    node: RunNode,
    folder: Path,
    series: dict[str, MetricSeries],
    hparams: Sequence[str] | None,
    report: "_Reporter",
    describes_sweep: bool = False,
) -> None:
    """Write one run's event files in ``folder`` (replacing an earlier export's) from its ``series``,
    and copy the run's own ``logs/`` files beside them; ``describes_sweep``: a HyperDrive sweep
    run gets the HParams experiment of its trials."""
    try:
        remove_previous_export(folder)
        LogsCopier(node.run, folder, report).sync(final=node.run.record.status in RunStatus.TERMINAL)
        writer = HistoryWriter(
            node.run,
            folder,
            in_sweep=node.in_sweep,
            hparam_names=hparams or (),
            report=report,
            describes_sweep=describes_sweep,
        )
        try:
            writer.sync(final=True, series=series)
        finally:
            writer.close()
    except OSError as exc:
        raise TensorboardError(
            f"Cannot write TensorBoard files in {folder}: {exc.strerror or exc}; free space or pick another folder."
        ) from exc


def _one_logdir(logsdir: str | os.PathLike | None, logdir: str | os.PathLike | None) -> str | os.PathLike:
    if logsdir is None and logdir is None:
        raise TensorboardError("Say where to export: export_to_tensorboard(run_data, logsdir).")
    if logsdir is not None and logdir is not None and Path(logsdir) != Path(logdir):
        raise TensorboardError(f"Give one log folder, not both logsdir={logsdir!s} and logdir={logdir!s}.")
    return logsdir if logsdir is not None else logdir  # type: ignore[return-value]


def _checked_logger(logger: Any) -> Any:
    if logger is None or callable(getattr(logger, "warning", None)):
        return logger
    raise TensorboardError(
        f"export_to_tensorboard's third argument is a logger (azureml's order), got {logger!r}; "
        "pass recursive= by name."
    )


class _Reporter:
    """Reports each problem once: a warning to the logger, or a line on stderr."""

    def __init__(self, logger: Any) -> None:
        self._logger = logger
        self._seen: set[str] = set()

    def __call__(self, message: str) -> None:
        if message in self._seen:
            return
        self._seen.add(message)
        if self._logger is not None:
            self._logger.warning(message)
        else:
            print(f"runhistory export: {message}", file=sys.stderr)
