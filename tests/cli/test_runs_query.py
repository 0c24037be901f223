"""``runhistory runs list --filter EXPR --order-by KEY``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runhistory import Experiment, Workspace


@pytest.fixture
def sweep_ws(tmp_path: Path) -> Path:
    """A workspace whose experiment ``sweep`` has a parent and four children with alpha and mse."""
    ws = Workspace.create(tmp_path / "ws")
    parent = Experiment(ws, "sweep").start_logging(display_name="parent")
    for alpha, mse in (("0.1", 3.0), ("0.4", 1.0), ("0.2", 2.0), ("0.3", None)):
        child = parent.child_run(f"alpha{alpha}")
        child.add_properties({"alpha": alpha})
        if mse is not None:
            child.log("mse", mse)
        child.complete()
    parent.complete()
    return tmp_path / "ws"


def _names(output: str) -> list[str]:
    return [run["display_name"] for run in json.loads(output)]


def test_filters_and_sorts_runs(sweep_ws: Path, invoke) -> None:
    result = invoke("runs", "list", "-w", str(sweep_ws), "-e", "sweep", "-c", "--order-by", "metrics.mse asc", "-o", "json")
    assert result.exit_code == 0, result.output
    assert _names(result.stdout) == ["alpha0.4", "alpha0.2", "alpha0.1", "alpha0.3", "parent"]
    result = invoke(
        "runs", "list", "-w", str(sweep_ws), "-c", "--filter", "properties.alpha >= 0.2", "--order-by", "params.alpha desc", "-o", "json"
    )
    assert _names(result.stdout) == ["alpha0.4", "alpha0.3", "alpha0.2"]
    result = invoke("runs", "list", "-w", str(sweep_ws), "-c", "--filter", "metrics.mse < 2.5", "--order-by", "metrics.mse desc")
    assert result.exit_code == 0, result.output
    assert "alpha0.2" in result.stdout and "alpha0.4" in result.stdout and "alpha0.1" not in result.stdout
    assert result.stdout.index("alpha0.2") < result.stdout.index("alpha0.4")
    header, first = result.stdout.splitlines()[0], result.stdout.splitlines()[2]
    assert header.split()[-2:] == ["mse", "id"]  # the sorted-by metric is a column
    assert first.split()[-2] == "2"


def test_metric_columns_of_the_sort_keys_and_the_filter(sweep_ws: Path, invoke) -> None:
    result = invoke(
        "runs", "list", "-w", str(sweep_ws), "-c", "--order-by", "metrics.mse.count desc", "--filter", "metrics.mse.max >= 1"
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0].split()[-3:] == ["mse.count", "mse.max", "id"]


def test_repeated_sort_keys_and_paging(sweep_ws: Path, invoke) -> None:
    args = ("runs", "list", "-w", str(sweep_ws), "-c", "--order-by", "metrics.mse.count desc", "--order-by", "params.alpha asc")
    result = invoke(*args, "-o", "json")
    assert _names(result.stdout) == ["alpha0.1", "alpha0.2", "alpha0.4", "alpha0.3", "parent"]  # no mse: last
    assert _names(invoke(*args, "--limit", "2", "--offset", "1", "-o", "json").stdout) == ["alpha0.2", "alpha0.4"]
    shown = invoke(*args, "--limit", "2")
    assert "Showing 2 of 5 runs" in shown.stdout


def test_no_run_matches(sweep_ws: Path, invoke) -> None:
    result = invoke("runs", "list", "-w", str(sweep_ws), "--filter", "metrics.mse > 100")
    assert result.exit_code == 0
    assert "No runs matching 'metrics.mse > 100'" in result.stdout


@pytest.mark.parametrize(
    "option, value, fragment",
    [
        ("--filter", "metrics.mse <", "Bad run filter at column 14: expected a value after '<', found the end."),
        ("--filter", "attributes.colour = 'red'", "unknown attribute 'colour'"),
        ("--order-by", "metrics.mse upwards", "Bad sort key at column 13"),
    ],
)
def test_a_bad_expression_is_one_line_and_exit_status_2(sweep_ws: Path, invoke, option: str, value: str, fragment: str) -> None:
    result = invoke("runs", "list", "-w", str(sweep_ws), option, value)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and fragment in lines[0], result.stderr
    assert result.stdout == "" and "Traceback" not in result.output
