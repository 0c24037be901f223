"""``runhistory import tensorboard``: TensorBoard logs written elsewhere, as runs."""

from __future__ import annotations

from pathlib import Path

import click
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

from runhistory.cli.common import RunHistoryGroup, make_console, new_table, resolve_run, workspace_option
from runhistory.core.errors import RunHistoryError
from runhistory.experiment import Experiment
from runhistory.tensorboard.importer import ImportedRun, LogdirImport
from runhistory.workspace import Workspace


@click.group("import", cls=RunHistoryGroup)
def import_group() -> None:
    """Bring logs written elsewhere into the run history.

    \b
    Examples:
      runhistory import tensorboard ./runs --experiment mnist
    """


@import_group.command("tensorboard")
@click.argument("logdir", type=click.Path(path_type=Path))
@click.option("--experiment", "-e", "experiment_name", required=True, metavar="NAME", help="The experiment the runs go into (created if new).")
@click.option("--parent", "parent_ref", metavar="RUN", help="Import the runs as children of this run (an id or EXPERIMENT:NUMBER).")
@workspace_option(create=True)
def import_tensorboard_command(logdir: Path, experiment_name: str, parent_ref: str | None, workspace: Workspace) -> None:
    """Import the TensorBoard event files under LOGDIR: one run per TensorBoard run folder
    (nested folders become child runs), scalars, text and hparams as metrics and properties,
    the event files as the runs' logs/ files. Importing the same folder again adds only what is new.

    \b
    Examples:
      runhistory import tensorboard ./runs --experiment mnist
      runhistory import tensorboard ./sweep-logs -e mnist --parent mnist:3
    """
    parent = resolve_run(workspace, parent_ref) if parent_ref is not None else None
    console = make_console()
    plan = LogdirImport(logdir, Experiment(workspace, experiment_name), parent=parent, report=lambda line: console.print(line, markup=False, highlight=False))
    columns = (TextColumn("Importing"), BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("import", total=plan.pending_bytes)
        imported = plan.run(on_bytes=lambda count: progress.advance(task, count))
    _print_summary(console, imported, experiment_name)
    failed = [one for one in imported if one.error is not None]
    if failed:
        raise RunHistoryError(f"{len(failed)} of {len(imported)} run folders were not imported (see above).")


def _print_summary(console, imported: list[ImportedRun], experiment_name: str) -> None:
    table = new_table()
    for column in ("folder", "run", "new", "points", "bytes"):
        table.add_column(column)
    for one in imported:
        run = "-" if one.run is None else f"{experiment_name}:{one.run.number}"
        table.add_row(one.name, run, "yes" if one.created else "no", str(one.points), str(one.bytes))
    console.print(table)
    created = sum(one.created for one in imported)
    points = sum(one.points for one in imported)
    console.print(f"Imported {len(imported)} TensorBoard run(s) into experiment {experiment_name!r}: {created} new, {points} new points.")
