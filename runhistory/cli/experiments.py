"""``runhistory experiments ...``: the experiments of a workspace."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import click
from rich.table import Table
from rich.text import Text

from runhistory.cli.common import make_console, new_table, workspace_option
from runhistory.cli.format import format_time
from runhistory.cli.output import emit, output_option
from runhistory.store.base import ExperimentRecord, RunFilter, RunRecord
from runhistory.workspace import Workspace


@dataclass(frozen=True)
class ExperimentRow:
    """One line of ``experiments list``."""

    name: str
    runs: int
    child_runs: int
    last_run_time: float | None


@click.group("experiments")
def experiments_group() -> None:
    """Experiments: named groups of runs.

    \b
    Example:
      runhistory experiments list -w ~/projects/mnist
    """


@experiments_group.command("list")
@output_option
@workspace_option
def list_experiments(workspace: Workspace, output: str) -> None:
    """List the experiments with their number of runs and the time of their last run.

    JSON and CSV give the time of the last run in seconds since the epoch (UTC).

    \b
    Examples:
      runhistory experiments list
      runhistory experiments list -o csv > experiments.csv
    """
    rows = experiment_rows(workspace)
    emit([dataclasses.asdict(row) for row in rows], output, lambda: _print_experiments(workspace, rows), columns=EXPERIMENT_COLUMNS)


EXPERIMENT_COLUMNS = tuple(field.name for field in dataclasses.fields(ExperimentRow))


def _print_experiments(workspace: Workspace, rows: list[ExperimentRow]) -> None:
    console = make_console()
    if not rows:
        console.print(f"No experiments in the workspace at {workspace.tracking_uri}.", markup=False, soft_wrap=True)
        return
    console.print(experiments_table(rows))


def experiment_rows(workspace: Workspace) -> list[ExperimentRow]:
    """Every experiment of the workspace, by name, with its run counts (one query for all runs)."""
    store = workspace.store
    runs_by_experiment: dict[int, list[RunRecord]] = {}
    for record in store.list_runs(RunFilter()):
        runs_by_experiment.setdefault(record.experiment_id, []).append(record)
    return [
        _experiment_row(experiment, runs_by_experiment.get(experiment.id, []))
        for experiment in store.list_experiments()
    ]


def _experiment_row(experiment: ExperimentRecord, runs: list[RunRecord]) -> ExperimentRow:
    top_level = sum(1 for run in runs if run.parent_id is None)
    last = max((run.created_time for run in runs), default=None)
    return ExperimentRow(experiment.name, top_level, len(runs) - top_level, last)


def experiments_table(rows: list[ExperimentRow]) -> Table:
    """The table of ``experiments list``."""
    table = new_table()
    table.add_column("experiment", overflow="fold", ratio=1)
    table.add_column("runs", justify="right", no_wrap=True)
    table.add_column("child runs", justify="right", no_wrap=True)
    table.add_column("last run", no_wrap=True)
    for row in rows:
        table.add_row(Text(row.name), str(row.runs), str(row.child_runs), format_time(row.last_run_time))
    return table
