"""``runhistory experiments list``."""

from __future__ import annotations

import csv
import io
import json

from runhistory import Experiment

from tests.cli.support import assert_fits, row_of


def test_lists_every_experiment_with_its_run_counts(populated, invoke):
    result = invoke("experiments", "list", "--workspace", str(populated.path))
    assert result.exit_code == 0, result.output
    assert row_of(result.stdout, "experiment")[:4] == ["experiment", "runs", "child", "runs"]
    mnist = row_of(result.stdout, "mnist")
    assert mnist[1:3] == ["2", "3"]  # 2 top-level runs, 3 child runs
    assert len(mnist) == 5  # name, runs, child runs, date, time
    assert row_of(result.stdout, "cifar")[1:3] == ["1", "0"]
    assert_fits(result.stdout)


def test_an_experiment_without_runs_has_no_last_run_time(populated, invoke):
    Experiment(populated.workspace, "empty")
    result = invoke("experiments", "list", "-w", str(populated.path))
    assert row_of(result.stdout, "empty") == ["empty", "0", "0"]


def test_an_empty_workspace_says_so(tmp_path, invoke):
    from runhistory import Workspace

    Workspace.create(tmp_path / "fresh")
    result = invoke("experiments", "list", "-w", str(tmp_path / "fresh"))
    assert result.exit_code == 0
    assert "No experiments in the workspace at" in result.stdout


def test_json_and_csv_give_the_same_rows(populated, invoke):
    as_json = json.loads(invoke("experiments", "list", "-o", "json", "-w", str(populated.path)).stdout)
    assert [(e["name"], e["runs"], e["child_runs"]) for e in as_json] == [("cifar", 1, 0), ("mnist", 2, 3)]
    assert all(isinstance(e["last_run_time"], float) for e in as_json)
    rows = list(csv.DictReader(io.StringIO(invoke("experiments", "list", "-o", "csv", "-w", str(populated.path)).stdout)))
    assert [row["name"] for row in rows] == ["cifar", "mnist"] and list(rows[0]) == list(as_json[0])
