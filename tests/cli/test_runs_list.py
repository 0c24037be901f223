"""``runhistory runs list``."""

from __future__ import annotations

import csv
import io
import json
import re
import sqlite3
from pathlib import Path
from typing import Any, Iterator

import pytest
import sqlalchemy as sa

from runhistory import Experiment, Workspace
from runhistory.core.errors import RunHistoryError
from runhistory.store.base import RunFilter, RunStatus

from tests.cli.support import assert_fits, assert_one_line_error, row_of


def _ids_in(text: str, *runs) -> list[str]:
    """Which of the runs' ids appear in the output, in output order (ids may be folded over
    lines; a child's id extends its parent's with ``_N``, so a match must not go on with ``_``)."""
    flat = "".join(text.split())
    found = {}
    for run in runs:
        match = re.search(re.escape(run.id) + "(?!_)", flat)
        if match:
            found[match.start()] = run.id
    return [found[position] for position in sorted(found)]


def test_lists_top_level_runs_of_every_experiment_newest_first(populated, invoke):
    p = populated
    result = invoke("runs", "list", "-w", str(p.path))
    assert result.exit_code == 0, result.output
    listed = _ids_in(result.stdout, p.baseline, p.failed, p.running, p.child)
    assert listed == [p.running.id, p.failed.id, p.baseline.id]
    assert row_of(result.stdout, "cifar")[1:4] == ["1", "long-job", "Running"]
    assert row_of(result.stdout, "mnist")[1:4] == ["5", "sweep", "Failed"]  # children take numbers too
    order = [line.split()[0] for line in result.stdout.splitlines() if line.split()[:1] in (["cifar"], ["mnist"])]
    assert order == ["cifar", "mnist", "mnist"]
    assert_fits(result.stdout)


def test_filters_by_experiment_and_drops_the_experiment_column(populated, invoke):
    p = populated
    result = invoke("runs", "list", "--experiment", "mnist", "-w", str(p.path))
    assert result.exit_code == 0, result.output
    assert _ids_in(result.stdout, p.baseline, p.failed, p.running) == [p.failed.id, p.baseline.id]
    assert row_of(result.stdout, "#")[:3] == ["#", "name", "status"]
    assert row_of(result.stdout, "1")[1:3] == ["baseline", "Completed"]
    assert_fits(result.stdout)


def test_filters_by_status_in_any_letter_case(populated, invoke):
    p = populated
    result = invoke("runs", "list", "--status", "failed", "-w", str(p.path))
    assert result.exit_code == 0, result.output
    assert _ids_in(result.stdout, p.baseline, p.failed, p.running, p.failed_child) == [p.failed.id]
    children = invoke("runs", "list", "-s", "Failed", "--include-children", "-w", str(p.path))
    assert _ids_in(children.stdout, p.failed, p.failed_child, p.baseline) == [p.failed.id, p.failed_child.id]


def test_include_children_lists_every_descendant(populated, invoke):
    p = populated
    result = invoke("runs", "list", "-e", "mnist", "--include-children", "-w", str(p.path))
    runs = [p.baseline, p.child, p.grandchild, p.failed_child, p.failed]
    assert set(_ids_in(result.stdout, *runs)) == {run.id for run in runs}
    assert row_of(result.stdout, "3")[1:3] == ["grandchild", "Completed"]
    assert_fits(result.stdout)


def test_limit_shows_the_newest_and_says_how_many_are_left(populated, invoke):
    p = populated
    result = invoke("runs", "list", "-c", "--limit", "2", "-w", str(p.path))
    assert result.exit_code == 0, result.output
    assert _ids_in(result.stdout, p.running, p.failed, p.baseline) == [p.running.id, p.failed.id]
    assert "Showing 2 of 6 runs" in result.stdout
    everything = invoke("runs", "list", "-c", "--limit", "0", "-w", str(p.path))
    assert "Showing" not in everything.stdout
    assert len(_ids_in(everything.stdout, p.baseline, p.child, p.grandchild, p.failed_child, p.failed, p.running)) == 6


def test_long_names_and_ids_still_fit_80_columns(tmp_path, invoke):
    from runhistory import Workspace

    ws = Workspace.create(tmp_path / "ws")
    run = Experiment(ws, "a-rather-long-experiment-name-for-a-hyperparameter-sweep").start_logging(
        "a display name that goes on and on and on"
    )
    run.complete()
    result = invoke("runs", "list", "-w", str(tmp_path / "ws"))
    assert result.exit_code == 0, result.output
    assert_fits(result.stdout)
    assert run.id in "".join(result.stdout.split())  # folded, never cut
    assert "…" in result.stdout  # the names are ellipsized instead


def test_no_matching_runs_is_a_message_not_an_error(populated, invoke):
    result = invoke("runs", "list", "-s", "Canceled", "-w", str(populated.path))
    assert result.exit_code == 0
    assert "No Canceled runs in the workspace" in result.stdout


def test_unknown_experiment_is_a_one_line_error_naming_the_known_ones(populated, invoke):
    result = invoke("runs", "list", "--experiment", "nope", "-w", str(populated.path))
    assert_one_line_error(result, "No experiment 'nope'", "cifar, mnist")


def test_invalid_status_is_a_one_line_error_listing_the_statuses(populated, invoke):
    result = invoke("runs", "list", "--status", "Done", "-w", str(populated.path))
    assert_one_line_error(result, "'Done'", "NotStarted, Queued, Starting, Running, NotResponding, CancelRequested, Completed, Failed, Canceled")


def test_negative_limit_is_a_one_line_error(populated, invoke):
    assert_one_line_error(invoke("runs", "list", "--limit", "-3", "-w", str(populated.path)), "--limit")


# --- pages ---


def test_offset_shows_the_next_page_and_says_where_it_is(populated, invoke):
    p = populated
    result = invoke("runs", "list", "-c", "--limit", "2", "--offset", "2", "-w", str(p.path))
    assert result.exit_code == 0, result.output
    everything = invoke("runs", "list", "-c", "--limit", "0", "-o", "json", "-w", str(p.path))
    newest_first = [record["id"] for record in json.loads(everything.stdout)]
    assert len(newest_first) == 6
    runs = [p.baseline, p.child, p.grandchild, p.failed_child, p.failed, p.running]
    assert _ids_in(result.stdout, *runs) == newest_first[2:4]
    assert "Showing runs 3-4 of 6; --offset 4 shows the next ones" in result.stdout
    last = invoke("runs", "list", "-c", "--limit", "2", "--offset", "4", "-w", str(p.path))
    assert _ids_in(last.stdout, *runs) == newest_first[4:]
    assert "Showing runs 5-6 of 6; --limit 0 shows all." in last.stdout
    past = invoke("runs", "list", "--offset", "10", "-w", str(p.path))
    assert past.exit_code == 0 and "No runs past the newest 10 (there are 3)" in past.stdout


def test_a_page_of_a_status_holds_as_many_runs_as_it_asks_for(populated, invoke):
    result = invoke("runs", "list", "-c", "-s", "Completed", "--limit", "2", "-o", "json", "-w", str(populated.path))
    records = json.loads(result.stdout)
    assert [record["status"] for record in records] == ["Completed", "Completed"]
    table = invoke("runs", "list", "-c", "-s", "Completed", "--limit", "2", "-w", str(populated.path))
    assert "Showing 2 of 3 runs" in table.stdout


def ids_of(records) -> list[str]:
    """The ids of run records, in order."""
    return [record.id for record in records]


def test_the_store_reads_a_page_of_the_newest_runs_and_counts_them_all(populated):
    store = populated.workspace.store
    everything = store.list_runs(RunFilter())
    assert [(r.created_time, r.number) for r in everything] == sorted(
        ((r.created_time, r.number) for r in everything), reverse=True
    )
    for limit, offset in ((1, 0), (2, 1), (4, 3), (10, 5), (3, 6), (0, 0)):
        # ids: the running run's heartbeat time moves on between two reads
        assert ids_of(store.list_runs(RunFilter(limit=limit, offset=offset))) == ids_of(everything[offset : offset + limit])
    assert ids_of(store.list_runs(RunFilter(offset=4))) == ids_of(everything[4:])
    assert store.count_runs(RunFilter(limit=1, offset=3)) == len(everything) == 6
    assert store.count_runs(RunFilter(top_level_only=True, status="Failed")) == 1
    with pytest.raises(RunHistoryError, match="limit of a run listing"):
        store.list_runs(RunFilter(limit=-1))
    with pytest.raises(RunHistoryError, match="offset of a run listing"):
        store.list_runs(RunFilter(offset=-2))


MANY = 600  # runs of the listing that must read one page only


@pytest.fixture
def many_runs(tmp_path: Path) -> Path:
    """A workspace with MANY Completed runs of experiment ``many``."""
    ws = Workspace.create(tmp_path / "ws")
    experiment = ws.store.get_or_create_experiment("many")
    for _ in range(MANY):
        ws.store.create_run(experiment.id, status=RunStatus.COMPLETED)
    return tmp_path / "ws"


@pytest.fixture
def statements() -> Iterator[list[tuple[str, Any]]]:
    """Every SQL statement run (by any engine) while the test runs, with its parameters."""
    seen: list[tuple[str, Any]] = []

    def record(_connection, _cursor, statement, parameters, _context, _executemany) -> None:
        seen.append((statement, parameters))

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", record)
    yield seen
    sa.event.remove(sa.engine.Engine, "before_cursor_execute", record)


def _rows_read(database: Path, found: list[tuple[str, Any]]) -> list[int]:
    """How many rows each SELECT among the statements gives, asked again of the database."""
    with sqlite3.connect(database) as connection:
        return [
            len(connection.execute(statement, parameters).fetchall())
            for statement, parameters in found
            if statement.lstrip().upper().startswith("SELECT")
        ]


def test_a_page_of_many_runs_reads_that_page_and_counts_the_rest(many_runs, invoke, statements):
    result = invoke("runs", "list", "-e", "many", "--offset", "100", "-w", str(many_runs))
    assert result.exit_code == 0, result.output
    assert f"Showing runs 101-150 of {MANY}; --offset 150 shows the next ones" in result.stdout
    rows = _rows_read(many_runs / "runhistory.db", statements)
    assert rows and max(rows) <= 50, rows  # the page, never every run


# --- output formats and narrow terminals ---


def test_json_has_whole_ids_and_raw_values(populated, invoke):
    p = populated
    result = invoke("runs", "list", "-o", "json", "-w", str(p.path))
    assert result.exit_code == 0, result.output
    records = json.loads(result.stdout)
    assert [record["id"] for record in records] == [p.running.id, p.failed.id, p.baseline.id]
    failed = records[1]
    assert failed["experiment"] == "mnist" and failed["number"] == 5 and failed["display_name"] == "sweep"
    assert failed["status"] == "Failed" and failed["error"]["message"] == "out of memory"
    assert isinstance(failed["start_time"], float) and failed["end_time"] >= failed["start_time"]
    assert failed["start_time"] == p.failed.record.start_time  # seconds since the epoch, as stored
    assert records[0]["end_time"] is None


def test_csv_has_the_same_columns(populated, invoke):
    result = invoke("runs", "list", "-c", "-o", "csv", "-w", str(populated.path))
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    as_json = json.loads(invoke("runs", "list", "-c", "-o", "json", "-w", str(populated.path)).stdout)
    assert list(rows[0]) == list(as_json[0])
    assert [row["id"] for row in rows] == [record["id"] for record in as_json]
    assert rows[0]["end_time"] == "" and float(rows[-1]["created_time"]) == as_json[-1]["created_time"]


def test_json_of_no_runs_is_an_empty_list(populated, invoke):
    result = invoke("runs", "list", "-s", "Canceled", "-o", "json", "-w", str(populated.path))
    assert result.exit_code == 0 and json.loads(result.stdout) == []


def test_a_narrow_terminal_drops_columns_and_keeps_ids_on_one_line(populated, invoke):
    p = populated
    result = invoke("runs", "list", "-c", "-w", str(p.path), env={"COLUMNS": "60"})
    assert result.exit_code == 0, result.output
    assert_fits(result.stdout, 60)
    header = result.stdout.splitlines()[0].split()
    assert "id" in header and "status" in header and "duration" not in header
    for run in (p.baseline, p.child, p.grandchild, p.failed_child, p.failed, p.running):
        assert any(run.id in line.split() for line in result.stdout.splitlines()), run.id
    wide = invoke("runs", "list", "-c", "-w", str(p.path), env={"COLUMNS": "120"})
    assert wide.stdout.splitlines()[0].split() == ["experiment", "#", "name", "status", "start", "duration", "id"]
