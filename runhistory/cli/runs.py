"""``runhistory runs ...``: list runs, show one run in detail, print the driver log of a job, end a run by hand."""

from __future__ import annotations

import sys
from typing import Any

import click
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from runhistory.cli.common import StatusType, make_console, new_table, resolve_run, workspace_option
from runhistory.cli.format import (
    format_duration,
    format_short_time,
    format_size,
    format_time,
    format_value,
    run_duration,
    status_text,
)
from runhistory.core.errors import NotFoundError, RunFinishedError
from runhistory.jobs.watch import follow_log
from runhistory.run import Run
from runhistory.store.base import JOB_RUN_TYPE, MetricSummary, RunFilter, RunRecord, RunStatus
from runhistory.workspace import Workspace

DEFAULT_LIMIT = 50


@click.group("runs")
def runs_group() -> None:
    """Runs: list them, show one, print a job's log, cancel or fail one by hand."""


# --- runs list ---


@runs_group.command("list")
@click.option("--experiment", "-e", "experiment_name", metavar="NAME", help="Only the runs of this experiment.")
@click.option(
    "--status",
    "-s",
    type=StatusType(),
    help=f"Only the runs with this status: {', '.join(RunStatus.ALL)}.",
)
@click.option("--include-children", "-c", is_flag=True, help="Also list child runs (by default only top-level runs).")
@click.option(
    "--limit",
    "-n",
    type=click.IntRange(min=0),
    metavar="N",
    default=DEFAULT_LIMIT,
    show_default=True,
    help="Show at most this many runs, newest first (0: all).",
)
@workspace_option
def list_runs(
    workspace: Workspace, experiment_name: str | None, status: str | None, include_children: bool, limit: int
) -> None:
    """List runs, newest first: experiment, number, name, status, start, duration and id."""
    console = make_console()
    records = find_runs(workspace, experiment_name, status, include_children)
    if not records:
        console.print(_no_runs_message(workspace, experiment_name, status), markup=False, soft_wrap=True)
        return
    shown = records[:limit] if limit else records
    console.print(runs_table(shown, console.width, show_experiment=experiment_name is None))
    if len(shown) < len(records):
        more = f"Showing {len(shown)} of {len(records)} runs; --limit 0 shows all."
        console.print(more, style="dim", markup=False, soft_wrap=True)


def find_runs(
    workspace: Workspace, experiment_name: str | None, status: str | None, include_children: bool
) -> list[RunRecord]:
    """The runs matching the options, newest first; NotFoundError for an unknown experiment."""
    store = workspace._backends.store
    experiment_id = None
    if experiment_name is not None:
        experiment = store.get_experiment(experiment_name)
        if experiment is None:
            raise NotFoundError(_unknown_experiment_message(workspace, experiment_name))
        experiment_id = experiment.id
    run_filter = RunFilter(experiment_id=experiment_id, top_level_only=not include_children, status=status)
    records = store.list_runs(run_filter)
    return sorted(records, key=lambda record: (record.created_time, record.number), reverse=True)


def _unknown_experiment_message(workspace: Workspace, name: str) -> str:
    names = [experiment.name for experiment in workspace._backends.store.list_experiments()]
    known = f"; it has: {', '.join(names[:10])}{', ...' if len(names) > 10 else ''}" if names else "; it has none"
    return f"No experiment {name!r} in the workspace at {workspace.tracking_uri}{known}."


def _no_runs_message(workspace: Workspace, experiment_name: str | None, status: str | None) -> str:
    where = f" of experiment {experiment_name!r}" if experiment_name else ""
    which = f" {status}" if status else ""
    return f"No{which} runs{where} in the workspace at {workspace.tracking_uri}."


def runs_table(records: list[RunRecord], width: int, show_experiment: bool = True) -> Table:
    """The table of ``runs list`` for a terminal ``width`` wide: names ellipsize, ids fold."""
    rows = [_run_row(record) for record in records]
    if not show_experiment:
        rows = [row[1:] for row in rows]
    headers = (["experiment"] if show_experiment else []) + ["#", "name", "status", "start", "duration", "id"]
    widths = _column_widths(headers, rows, width)
    table = new_table()
    for header, column_width in zip(headers, widths):
        justify = "right" if header in ("#", "duration") else "left"
        table.add_column(_clipped(header), justify=justify, overflow="fold", width=column_width)
    for row in rows:
        table.add_row(*row)
    return table


def _run_row(record: RunRecord) -> list[Text]:
    """The cells of one run: experiment, number, name, status, start, duration, id."""
    return [
        _clipped(record.experiment_name),
        Text(str(record.number)),
        _clipped(_shown_name(record)),
        status_text(record.status),
        Text(format_short_time(record.start_time)),
        Text(format_duration(run_duration(record.start_time, record.end_time))),
        Text(record.id, style="dim"),
    ]


_NAME_MIN_WIDTH = 12


def _column_widths(headers: list[str], rows: list[list[Text]], width: int) -> list[int]:
    """Each column's natural width when the table fits ``width``; else squeezed (see below)."""
    natural = [max([len(header)] + [cell.cell_len for cell in column]) for header, column in zip(headers, zip(*rows))]
    flexible = [index for index, header in enumerate(headers) if header in ("experiment", "name")]
    id_index = len(headers) - 1
    fixed = sum(w for i, w in enumerate(natural) if i not in flexible and i != id_index)
    room = width - 2 * (len(headers) - 1) - fixed  # two spaces between columns
    if sum(natural[i] for i in flexible) + natural[id_index] <= room:
        return natural
    return _squeezed_widths(natural, flexible, id_index, room)


def _squeezed_widths(natural: list[int], flexible: list[int], id_index: int, room: int) -> list[int]:
    """The id keeps at least half of ``room`` (all it needs while names keep 12 columns each);
    the experiment and display names share the rest, a short one leaving its spare to the other."""
    names_natural = sum(natural[i] for i in flexible)
    wanted = max(room // 2, room - names_natural, room - _NAME_MIN_WIDTH * len(flexible))
    widths = list(natural)
    widths[id_index] = max(8, min(natural[id_index], wanted))
    share = max(4, (room - widths[id_index]) // len(flexible))
    for index in flexible:
        widths[index] = min(natural[index], share)
    spare = room - widths[id_index] - sum(widths[i] for i in flexible)
    for index in flexible:
        extra = max(0, min(spare, natural[index] - widths[index]))
        widths[index] += extra
        spare -= extra
    return widths


def _clipped(text: str) -> Text:
    """A one-line cell that ends in an ellipsis rather than wrapping."""
    return Text(text, no_wrap=True, overflow="ellipsis")


def _shown_name(record: RunRecord) -> str:
    """The display name, blank when it is only the id again (the default)."""
    return "" if record.display_name == record.id else record.display_name


# --- runs logs ---


@runs_group.command("logs")
@click.argument("run_ref", metavar="RUN")
@click.option("--follow", "-f", is_flag=True, help="Keep printing as the log grows, until the run ends.")
@workspace_option
def run_logs(workspace: Workspace, run_ref: str, follow: bool) -> None:
    """Print the driver log (stdout and stderr) of a job run (an id or EXPERIMENT:NUMBER)."""
    run = resolve_run(workspace, run_ref)
    if run._record.run_type != JOB_RUN_TYPE:
        raise NotFoundError(f"Run {run_ref} has no driver log: it is not a job (its type is {run._record.run_type}).")
    status = follow_log(run, sys.stdout, follow=follow)
    if follow:
        click.echo(f"Run {run._record.experiment_name}:{run.number} {status}.", err=True)


# --- runs cancel / runs fail ---

FAILED_BY_HAND_CODE = "FailedByUser"


@runs_group.command("cancel")
@click.argument("run_ref", metavar="RUN")
@workspace_option
def cancel_run(workspace: Workspace, run_ref: str) -> None:
    """End a run (an id or EXPERIMENT:NUMBER) as Canceled; a job's processes are stopped."""
    run = _open_run(workspace, run_ref)
    run.cancel()
    _report_end(run, RunStatus.CANCELED)


@runs_group.command("fail")
@click.argument("run_ref", metavar="RUN")
@click.option("--message", "-m", metavar="M", default=None, help="The error to record (default: that it was failed by hand).")
@workspace_option
def fail_run(workspace: Workspace, run_ref: str, message: str | None) -> None:
    """End a run (an id or EXPERIMENT:NUMBER) as Failed, e.g. one whose process is gone."""
    run = _open_run(workspace, run_ref)
    text = message if message and message.strip() else "Marked Failed by hand (runhistory runs fail)."
    run.fail(text, error_code=FAILED_BY_HAND_CODE)
    _report_end(run, RunStatus.FAILED)


def _open_run(workspace: Workspace, run_ref: str) -> Run:
    """The run to end; RunFinishedError when it has ended already."""
    run = resolve_run(workspace, run_ref)
    if run._record.status in RunStatus.TERMINAL:
        raise RunFinishedError(_already_ended(run))
    return run


def _report_end(run: Run, wanted: str) -> None:
    status = run._record.status
    if status not in (wanted, RunStatus.CANCEL_REQUESTED):  # it ended some other way meanwhile
        raise RunFinishedError(_already_ended(run))
    click.echo(f"Run {run._record.experiment_name}:{run.number} ({run.id}) is {status}.")


def _already_ended(run: Run) -> str:
    record = run._record
    return (
        f"Run {record.experiment_name}:{record.number} ({record.id}) has already ended: it is {record.status} "
        f"since {format_time(record.end_time) or 'an unknown time'}; nothing was changed."
    )


# --- runs show ---


@runs_group.command("show")
@click.argument("run_ref", metavar="RUN")
@workspace_option
def show_run(workspace: Workspace, run_ref: str) -> None:
    """Show one run (an id or EXPERIMENT:NUMBER): times, children, metrics, tags, properties, files."""
    run = resolve_run(workspace, run_ref)
    console = make_console()
    for section in run_sections(run):
        console.print(section)


def run_sections(run: Run) -> list[RenderableType]:
    """What ``runs show`` prints, section by section."""
    store = run._backends.store
    return [
        run_header(run._record),
        _section("Children", children_tree(run)),
        _section("Metrics", metrics_table(store.get_metric_summaries(run.id))),
        _section("Tags", key_value_table(run.get_tags())),
        _section("Properties", key_value_table(run.get_properties())),
        _section("Files", files_table(run._backends.artifacts.list(run.id))),
    ]


def _section(title: str, body: RenderableType | None) -> RenderableType:
    if body is None:
        return Text.assemble(("\n" + title + ": ", "bold"), ("none", "dim"))
    return Group(Text("\n" + title, style="bold"), body)


def run_header(record: RunRecord) -> Table:
    """Identity, status, times and error of a run, as aligned ``key  value`` lines."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    rows: list[tuple[str, Any]] = [
        ("Run", Text(f"{record.experiment_name}:{record.number}")),
        ("Id", Text(record.id)),
    ]
    if _shown_name(record):
        rows.append(("Name", Text(record.display_name)))
    rows += [("Status", status_text(record.status)), ("Type", Text(record.run_type))]
    if record.target is not None:
        rows.append(("Target", Text(record.target)))
    if record.parent_id is not None:
        rows.append(("Parent", Text(record.parent_id)))
    rows += [
        ("Created", format_time(record.created_time)),
        ("Started", format_time(record.start_time)),
        ("Ended", format_time(record.end_time)),
        ("Duration", format_duration(run_duration(record.start_time, record.end_time))),
    ]
    if record.error:
        rows.append(("Error", Text(_error_message(record.error), style="red")))
    for key, value in rows:
        grid.add_row(key, value)
    return grid


def _error_message(error: dict[str, Any]) -> str:
    message = str(error.get("message") or error.get("code") or "unknown error")
    return " ".join(message.split())


def children_tree(run: Run) -> Tree | None:
    """The run's descendants as a tree (number, name, status, id), or None when it has none."""
    children = run.get_children()
    if not children:
        return None
    tree = Tree(_run_label(run._record), guide_style="dim")
    _add_children(tree, children)
    return tree


def _add_children(tree: Tree, children: list[Run]) -> None:
    for child in children:
        branch = tree.add(_run_label(child._record))
        _add_children(branch, child.get_children())


def _run_label(record: RunRecord) -> Text:
    return Text.assemble((f"#{record.number} ", "bold"), record.display_name, "  ", status_text(record.status))


def metrics_table(summaries: list[MetricSummary]) -> Table | None:
    """Name, kind, number of points and last value of each series, or None when there are none."""
    if not summaries:
        return None
    table = new_table()
    table.add_column("name", overflow="fold", max_width=30)
    table.add_column("kind", no_wrap=True)
    table.add_column("count", justify="right", no_wrap=True)
    table.add_column("last value", overflow="ellipsis", no_wrap=True, ratio=1)
    for summary in summaries:
        table.add_row(Text(summary.name), summary.kind, str(summary.count), Text(format_value(summary.last_value)))
    return table


def key_value_table(values: dict[str, Any]) -> Table | None:
    """Tags or properties, sorted by name, or None when there are none."""
    if not values:
        return None
    table = new_table()
    table.add_column("name", overflow="fold", max_width=30)
    table.add_column("value", overflow="fold", ratio=1)
    for key in sorted(values):
        table.add_row(Text(key), Text("" if values[key] is None else str(values[key])))
    return table


def files_table(files: dict[str, int]) -> Table | None:
    """The run's files with their sizes, or None when it has none."""
    if not files:
        return None
    table = new_table()
    table.add_column("name", overflow="fold", ratio=1)
    table.add_column("size", justify="right", no_wrap=True)
    for name, size in files.items():
        table.add_row(Text(name), format_size(size))
    return table
