"""``runhistory runs list``."""

from __future__ import annotations

import re

from runhistory import Experiment

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
