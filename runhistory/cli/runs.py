"""``runhistory runs ...``: list runs, show one run in detail, print the driver log of a job, end a run by hand."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterator, Mapping

import click
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from runhistory.cli.common import StatusType, make_console, new_table, one_line, resolve_run, workspace_option
from runhistory.cli.format import (
    PlainColumn,
    PlainTable,
    format_duration,
    format_short_time,
    format_time,
    format_value,
    run_duration,
    status_text,
)
from runhistory.cli.output import emit, output_option
from runhistory.core.sizes import format_size
from runhistory.core.errors import NotFoundError, RunFinishedError
from runhistory.watch import follow_log
from runhistory.run import Run
from runhistory.store.query import Key, QueryError, parse_order_by, parse_query
from runhistory.store.base import JOB_RUN_TYPE, MetricKind, MetricStats, MetricSummary, RunFilter, RunRecord, RunStatus
from runhistory.workspace import Workspace

if TYPE_CHECKING:
    from runhistory.cli.sweeps import SweepTrials

DEFAULT_LIMIT = 50
DEFAULT_METRICS = 100  # rows of the metrics table of ``runs show``


@click.group("runs")
def runs_group() -> None:
    """Runs: list them, show one, print a job's log, cancel or fail one by hand.

    \b
    Examples:
      runhistory runs list -e mnist
      runhistory runs show mnist:3
    """


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
    "--filter",
    "query",
    metavar="EXPR",
    help="Only the runs this expression matches, e.g. 'metrics.mse < 3300 and tags.model = \"ridge\"' "
    "(keys: metrics.NAME[.min|.max|.last|.count], properties.NAME, tags.NAME, attributes.status ...).",
)
@click.option(
    "--order-by",
    "order_by",
    metavar="KEY",
    multiple=True,
    help="Sort by this key, e.g. 'metrics.mse asc' (repeatable; runs lacking it come last; default: newest first).",
)
@click.option(
    "--limit",
    "-n",
    type=click.IntRange(min=0),
    metavar="N",
    default=DEFAULT_LIMIT,
    show_default=True,
    help="Show at most this many runs, newest first (0: all).",
)
@click.option(
    "--offset",
    type=click.IntRange(min=0),
    metavar="N",
    default=0,
    help="Skip the newest N runs first (the next page: --offset 50).",
)
@output_option
@workspace_option
def list_runs(
    workspace: Workspace,
    experiment_name: str | None,
    status: str | None,
    include_children: bool,
    query: str | None,
    order_by: tuple[str, ...],
    limit: int,
    offset: int,
    output: str,
) -> None:
    """List runs, newest first: experiment, number, name, status, start, duration and id.

    Only the page shown is read from the run history. JSON and CSV give whole ids and raw
    values; times are seconds since the epoch (UTC), as the store keeps them.

    \b
    Examples:
      runhistory runs list -e mnist --status Failed
      runhistory runs list --limit 50 --offset 50
      runhistory runs list --filter 'metrics.mse < 3300' --order-by metrics.mse
      runhistory runs list -o json | jq -r '.[].id'
    """
    try:
        page = find_runs(
            workspace, experiment_name, status, include_children, limit=limit or None, offset=offset,
            query=query, order_by=order_by,
        )
    except QueryError as error:
        raise BadQueryError(one_line(str(error))) from error
    emit([run_data(record) for record in page.records], output, lambda: _print_runs(workspace, page), columns=RUN_COLUMNS)


class BadQueryError(click.ClickException):
    """A ``--filter`` or ``--order-by`` that does not parse: one line, exit status 2 (a usage error)."""

    exit_code = 2


@dataclass(frozen=True)
class RunPage:
    """The runs ``runs list`` shows, and where they stand among all that match."""

    records: list[RunRecord]
    offset: int
    total: int  # how many runs match, on every page
    experiment_name: str | None = None
    status: str | None = None
    query: str | None = None
    order_by: tuple[str, ...] = ()


MAX_METRIC_COLUMNS = 4


def metric_columns(workspace: Workspace, page: RunPage) -> dict[str, list[str]]:
    """A column for each metric the sort keys and the filter name (at most MAX_METRIC_COLUMNS),
    headed like ``mse`` or ``mse.min``, its cells the runs' values (empty when a run lacks it)."""
    keys = [order.key for order in parse_order_by(page.order_by)]
    if page.query:
        keys += list(_keys_of(parse_query(page.query)))
    wanted = list(dict.fromkeys(key for key in keys if key.section == "metrics"))[:MAX_METRIC_COLUMNS]
    if not wanted or not page.records:
        return {}
    stats = workspace.store.get_metric_stats([record.id for record in page.records])
    columns = {}
    for key in wanted:
        header = key.name if key.field == "last" else f"{key.name}.{key.field}"
        columns[header] = [_stat_cell(stats.get(record.id, {}).get(key.name), key.field or "last") for record in page.records]
    return columns


def _keys_of(node: Any) -> Iterator[Key]:
    if hasattr(node, "items"):
        for item in node.items:
            yield from _keys_of(item)
    elif hasattr(node, "item"):
        yield from _keys_of(node.item)
    else:
        yield node.key


def _stat_cell(stats: MetricStats | None, field: str) -> str:
    if stats is None:
        return ""
    return format_value(getattr(stats, field))


def find_runs(
    workspace: Workspace,
    experiment_name: str | None,
    status: str | None,
    include_children: bool,
    *,
    limit: int | None = None,
    offset: int = 0,
    query: str | None = None,
    order_by: tuple[str, ...] = (),
) -> RunPage:
    """The page of runs matching the options, newest first (all of them when ``limit`` is None);
    NotFoundError for an unknown experiment. Only that page is read from the store."""
    store = workspace.store
    experiment_id = None
    if experiment_name is not None:
        experiment = store.get_experiment(experiment_name)
        if experiment is None:
            raise NotFoundError(_unknown_experiment_message(workspace, experiment_name))
        experiment_id = experiment.id
    run_filter = RunFilter(
        experiment_id=experiment_id,
        top_level_only=not include_children,
        status=status,
        limit=limit,
        offset=offset,
        query=query,
        order_by=tuple(order_by),
    )
    records = store.list_runs(run_filter)
    if limit is not None:
        records = records[:limit]  # a store that ignores the limit (an older server) still shows one page
    partial = offset > 0 or (limit is not None and len(records) >= limit)
    total = store.count_runs(run_filter) if partial else len(records)
    return RunPage(records, offset, total, experiment_name, status, query, tuple(order_by))


def _print_runs(workspace: Workspace, page: RunPage) -> None:
    console = make_console()
    if not page.records:
        console.print(_no_runs_message(workspace, page), markup=False, soft_wrap=True)
        return
    extra = metric_columns(workspace, page)
    table = runs_table(page.records, console.width, show_experiment=page.experiment_name is None, extra=extra)
    if table.min_width and table.min_width > console.width:  # the terminal wraps the line; the id stays whole
        console.width = table.min_width
    console.print(table)
    shown = len(page.records)
    if shown < page.total:
        if page.offset:
            more = f"Showing runs {page.offset + 1}-{page.offset + shown} of {page.total}"
        else:
            more = f"Showing {shown} of {page.total} runs"
        if page.offset + shown < page.total:
            more += f"; --offset {page.offset + shown} shows the next ones, --limit 0 all."
        else:
            more += "; --limit 0 shows all."
        console.print(more, style="dim", markup=False, soft_wrap=True)


# The fields of a run in JSON and CSV (the same columns): whole ids, times in seconds since the epoch.
RUN_COLUMNS = (
    "id",
    "experiment",
    "number",
    "display_name",
    "status",
    "run_type",
    "parent_id",
    "target",
    "created_time",
    "start_time",
    "end_time",
    "error",
)


def run_data(record: RunRecord) -> dict[str, Any]:
    """A run as a plain record for JSON and CSV (see :data:`RUN_COLUMNS`)."""
    return {
        "id": record.id,
        "experiment": record.experiment_name,
        "number": record.number,
        "display_name": record.display_name,
        "status": record.status,
        "run_type": record.run_type,
        "parent_id": record.parent_id,
        "target": record.target,
        "created_time": record.created_time,
        "start_time": record.start_time,
        "end_time": record.end_time,
        "error": record.error,
    }


def _unknown_experiment_message(workspace: Workspace, name: str) -> str:
    names = [experiment.name for experiment in workspace.store.list_experiments()]
    known = f"; it has: {', '.join(names[:10])}{', ...' if len(names) > 10 else ''}" if names else "; it has none"
    return f"No experiment {name!r} in the workspace at {workspace.tracking_uri}{known}."


def _no_runs_message(workspace: Workspace, page: RunPage) -> str:
    where = f" of experiment {page.experiment_name!r}" if page.experiment_name else ""
    which = f" {page.status}" if page.status else ""
    beyond = f" past the newest {page.offset} (there are {page.total})" if page.offset and page.total else ""
    matching = f" matching {page.query!r}" if page.query else ""
    return f"No{which} runs{where}{matching}{beyond} in the workspace at {workspace.tracking_uri}."


# The columns a narrow terminal drops, first to last; the id always stays whole. The display
# name goes last: the id already starts with the experiment's name, the name is only here.
_DROPPED_FIRST = ("duration", "start", "#", "experiment", "status", "name")
_FLEXIBLE = ("experiment", "name")  # these ellipsize to fit, down to _NAME_MIN_WIDTH
_NAME_MIN_WIDTH = 8
_COLUMN_GAP = 2  # the table puts two spaces between columns


def runs_table(
    records: list[RunRecord], width: int, show_experiment: bool = True, extra: Mapping[str, list[str]] | None = None
) -> Table:
    """The table of ``runs list`` for a terminal ``width`` wide: names ellipsize, ids stay whole
    on one line, and where even that does not fit, the least needed columns are left out.
    ``extra``: more columns (a header and a cell per run) before the id."""
    extra = dict(extra or {})
    headers = (["experiment"] if show_experiment else []) + ["#", "name", "status", "start", "duration", *extra, "id"]
    rows = [_run_row(record) for record in records]
    for at, row in enumerate(rows):
        row[-1:-1] = [Text(cells[at], no_wrap=True) for cells in extra.values()]
    if not show_experiment:
        rows = [row[1:] for row in rows]
    columns = dict(zip(headers, zip(*rows)))
    natural = {header: max([len(header)] + [cell.cell_len for cell in cells]) for header, cells in columns.items()}
    # the metrics a listing is sorted or filtered by outlast the start, the duration and the number
    dropped_first = _DROPPED_FIRST[:3] + tuple(reversed(extra)) + _DROPPED_FIRST[3:]
    widths = _fitted_widths(headers, natural, width, dropped_first)
    table = new_table()
    table.min_width = sum(widths.values()) + _COLUMN_GAP * (len(widths) - 1)  # an id wider than the terminal stays whole
    for header, column_width in widths.items():
        justify = "right" if header in ("#", "duration", *extra) else "left"
        table.add_column(_clipped(header), justify=justify, no_wrap=True, overflow="ellipsis", width=column_width)
    kept = [headers.index(header) for header in widths]
    for row in rows:
        table.add_row(*(row[index] for index in kept))
    return table


def _fitted_widths(
    headers: list[str], natural: dict[str, int], width: int, dropped_first: tuple[str, ...] = _DROPPED_FIRST
) -> dict[str, int]:
    """The columns kept and their widths: all at their natural width when they fit ``width``;
    else the names squeezed; else columns dropped in the order of ``dropped_first``."""
    kept = list(headers)
    while True:
        widths = _squeezed_widths(kept, natural, width)
        droppable = [header for header in dropped_first if header in kept]
        if widths is not None or not droppable:
            return widths if widths is not None else {header: natural[header] for header in kept}
        kept.remove(droppable[0])


def _squeezed_widths(kept: list[str], natural: dict[str, int], width: int) -> dict[str, int] | None:
    """Widths of the ``kept`` columns within ``width``, the experiment and display names sharing
    what the others leave (a short one leaving its spare to the other); None when they cannot fit."""
    flexible = [header for header in kept if header in _FLEXIBLE]
    room = width - _COLUMN_GAP * (len(kept) - 1) - sum(natural[h] for h in kept if h not in flexible)
    widths = {header: natural[header] for header in kept}
    if sum(natural[h] for h in flexible) <= room:
        return widths
    if sum(min(natural[h], _NAME_MIN_WIDTH) for h in flexible) > room:
        return None
    share = room // len(flexible)
    for header in flexible:
        widths[header] = min(natural[header], share)
    spare = room - sum(widths[h] for h in flexible)
    for header in flexible:
        extra = max(0, min(spare, natural[header] - widths[header]))
        widths[header] += extra
        spare -= extra
    return widths


def _run_row(record: RunRecord) -> list[Text]:
    """The cells of one run: experiment, number, name, status, start, duration, id."""
    return [
        _clipped(record.experiment_name),
        Text(str(record.number)),
        _clipped(_shown_name(record)),
        status_text(record.status),
        Text(format_short_time(record.start_time)),
        Text(format_duration(run_duration(record.start_time, record.end_time))),
        Text(record.id, style="dim", no_wrap=True),
    ]


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
    """Print the driver log (stdout and stderr) of a job run (an id or EXPERIMENT:NUMBER).

    \b
    Examples:
      runhistory runs logs mnist:3
      runhistory runs logs mnist:3 --follow
    """
    run = resolve_run(workspace, run_ref)
    if run.record.run_type != JOB_RUN_TYPE:
        raise NotFoundError(f"Run {run_ref} has no driver log: it is not a job (its type is {run.record.run_type}).")
    status = follow_log(run, sys.stdout, follow=follow)
    if follow:
        click.echo(f"Run {run.record.experiment_name}:{run.number} {status}.", err=True)


# --- runs cancel / runs fail ---

FAILED_BY_HAND_CODE = "FailedByUser"


@runs_group.command("cancel")
@click.argument("run_ref", metavar="RUN")
@workspace_option
def cancel_run(workspace: Workspace, run_ref: str) -> None:
    """End a run (an id or EXPERIMENT:NUMBER) as Canceled; a job's processes are stopped.

    \b
    Example:
      runhistory runs cancel mnist:3
    """
    run = _open_run(workspace, run_ref)
    run.cancel()
    _report_end(run, RunStatus.CANCELED)


@runs_group.command("fail")
@click.argument("run_ref", metavar="RUN")
@click.option("--message", "-m", metavar="M", default=None, help="The error to record (default: that it was failed by hand).")
@workspace_option
def fail_run(workspace: Workspace, run_ref: str, message: str | None) -> None:
    """End a run (an id or EXPERIMENT:NUMBER) as Failed, e.g. one whose process is gone.

    \b
    Example:
      runhistory runs fail mnist:3 -m "the machine was switched off"
    """
    run = _open_run(workspace, run_ref)
    text = message if message and message.strip() else "Marked Failed by hand (runhistory runs fail)."
    run.fail(text, error_code=FAILED_BY_HAND_CODE)
    _report_end(run, RunStatus.FAILED)


def _open_run(workspace: Workspace, run_ref: str) -> Run:
    """The run to end; RunFinishedError when it has ended already."""
    run = resolve_run(workspace, run_ref)
    if run.record.status in RunStatus.TERMINAL:
        raise RunFinishedError(_already_ended(run))
    return run


def _report_end(run: Run, wanted: str) -> None:
    status = run.record.status
    if status not in (wanted, RunStatus.CANCEL_REQUESTED):  # it ended some other way meanwhile
        raise RunFinishedError(_already_ended(run))
    click.echo(f"Run {run.record.experiment_name}:{run.number} ({run.id}) is {status}.")


def _already_ended(run: Run) -> str:
    record = run.record
    return (
        f"Run {record.experiment_name}:{record.number} ({record.id}) has already ended: it is {record.status} "
        f"since {format_time(record.end_time) or 'an unknown time'}; nothing was changed."
    )


# --- runs show ---


@runs_group.command("show")
@click.argument("run_ref", metavar="RUN")
@click.option(
    "--metrics",
    "metrics_limit",
    type=click.IntRange(min=0),
    metavar="N",
    default=DEFAULT_METRICS,
    show_default=True,
    help="Show at most this many metrics in the table, by name (0: all); JSON and CSV give all.",
)
@output_option
@workspace_option
def show_run(workspace: Workspace, run_ref: str, metrics_limit: int, output: str) -> None:
    """Show one run (an id or EXPERIMENT:NUMBER): times, children, metrics, tags, properties, files.

    JSON and CSV give the fields of ``runs list`` and, besides, the children's ids, the metrics
    (kind, count, last value), tags, properties and files (name: bytes); times are seconds
    since the epoch (UTC).

    \b
    Examples:
      runhistory runs show mnist:3
      runhistory runs show mnist:3 --metrics 0 | grep loss
      runhistory runs show mnist:3 -o json | jq .metrics
    """
    run = resolve_run(workspace, run_ref)
    details = RunDetails.of(run)
    emit(details.data(), output, lambda: _print_sections(details, metrics_limit or None), columns=SHOW_COLUMNS)


@dataclass(frozen=True)
class RunDetails:
    """What ``runs show`` shows of a run, read once for every output format."""

    run: Run
    children: list[Run]
    metrics: list[MetricSummary]
    tags: dict[str, Any]
    properties: dict[str, str]
    files: dict[str, int]
    sweep: "SweepTrials | None" = None  # a HyperDrive sweep's trials

    @classmethod
    def of(cls, run: Run) -> "RunDetails":
        """Read the run's children, metrics summaries (one query), tags, properties and file list."""
        from runhistory.cli.sweeps import sweep_trials  # the sweep's names load only for ``runs show``

        workspace = run.workspace
        children = run.get_children()
        return cls(
            run,
            children,
            workspace.store.get_metric_summaries(run.id),
            run.get_tags(),
            run.get_properties(),
            workspace.artifacts.list(run.id),
            sweep_trials(run, children),
        )

    def data(self) -> dict[str, Any]:
        """The run as one plain record (see :data:`SHOW_COLUMNS`)."""
        metrics = {summary.name: _metric_data(summary) for summary in self.metrics}
        return {
            **run_data(self.run.record),
            "children": [child.id for child in self.children],
            "metrics": metrics,
            "tags": self.tags,
            "properties": self.properties,
            "files": self.files,
            **({"sweep": self.sweep.data()} if self.sweep is not None else {}),
        }


SHOW_COLUMNS = (*RUN_COLUMNS, "children", "metrics", "tags", "properties", "files")


def _print_sections(details: RunDetails, metrics_limit: int | None) -> None:
    console = make_console()
    for section in run_sections(details, metrics_limit):
        console.print(section)


def run_sections(details: RunDetails, metrics_limit: int | None = DEFAULT_METRICS) -> list[RenderableType]:
    """What ``runs show`` prints, section by section (at most ``metrics_limit`` metrics; None: all)."""
    trials = []
    if details.sweep is not None:
        from runhistory.cli.sweeps import trials_table

        trials = [_section("Trials", trials_table(details.sweep))]
    return [
        run_header(details.run.record),
        *trials,
        _section("Children", children_tree(details.run, details.children)),
        _section("Metrics", metrics_section(details.metrics, metrics_limit)),
        _section("Tags", key_value_table(details.tags)),
        _section("Properties", key_value_table(details.properties)),
        _section("Files", files_table(details.files)),
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


def children_tree(run: Run, children: list[Run]) -> Tree | None:
    """The run's descendants (under its ``children``) as a tree (number, name, status), or None when it has none."""
    if not children:
        return None
    tree = Tree(_run_label(run.record), guide_style="dim")
    _add_children(tree, children)
    return tree


def _add_children(tree: Tree, children: list[Run]) -> None:
    for child in children:
        branch = tree.add(_run_label(child.record))
        _add_children(branch, child.get_children())


def _run_label(record: RunRecord) -> Text:
    return Text.assemble((f"#{record.number} ", "bold"), record.display_name, "  ", status_text(record.status))


def _metric_data(summary: MetricSummary) -> dict[str, Any]:
    """A series in ``runs show``'s JSON and CSV: kind, count, last value (a summary's: its plugin)
    and, for a series that did not come from the SDK, its source."""
    data = {"kind": summary.kind, "count": summary.count, "last_value": summary.last_value}
    if summary.source:
        data["source"] = summary.source
    return data


_NAME_COLUMN = PlainColumn("name", max_width=30, fold=True, shrinks=True)
_KIND_COUNT_COLUMNS = (PlainColumn("kind"), PlainColumn("count", justify="right"))
_SOURCE_COLUMN = PlainColumn("source")
_LAST_VALUE_COLUMN = PlainColumn("last value", shrinks=True)


def metrics_section(summaries: list[MetricSummary], limit: int | None) -> RenderableType | None:
    """The metrics table (the first ``limit`` by name; None: all), with a line saying how many
    more there are; None when the run has none."""
    table = metrics_table(summaries[:limit] if limit is not None else summaries)
    if table is None or limit is None or len(summaries) <= limit:
        return table
    more = f"Showing {limit:,} of {len(summaries):,} metrics; --metrics 0 shows all, -o json gives data."
    return Group(table, Text(more, style="dim"))


def metrics_table(summaries: list[MetricSummary]) -> PlainTable | None:
    """Name, kind, number of points and last value of each series, or None when there are none.

    A TensorBoard summary kept in the run's event files shows its plugin as its kind ("images")
    and no last value; where some series came from elsewhere than the SDK, a source column
    says where ("tensorboard": the run's own event files). A plain table: a run may have
    100,000 series, and a rich Table takes 0.4 ms a row."""
    if not summaries:
        return None
    with_source = any(summary.source for summary in summaries)
    rows = [_metric_row(summary, with_source) for summary in summaries]
    columns = (_NAME_COLUMN, *_KIND_COUNT_COLUMNS, *((_SOURCE_COLUMN,) if with_source else ()), _LAST_VALUE_COLUMN)
    return PlainTable(columns, rows)


def _metric_row(summary: MetricSummary, with_source: bool) -> tuple[str, ...]:
    if summary.kind == MetricKind.SUMMARY:
        kind, last = str(summary.last_value), ""
    else:
        kind, last = summary.kind, format_value(summary.last_value)
    source = (summary.source,) if with_source else ()
    return (summary.name, kind, str(summary.count), *source, last)


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
