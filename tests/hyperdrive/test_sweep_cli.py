"""``runhistory runs show SWEEP``: a real sweep's trials, with parameters, status (Pruned) and primary metric."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from runhistory import Experiment, ScriptRunConfig, Workspace
from runhistory.cli.main import cli
from runhistory.compute import ComputeTarget, LocalCompute
from runhistory.train.hyperdrive import BanditPolicy, GridParameterSampling, HyperDriveConfig, PrimaryMetricGoal, choice

from tests.jobs.support import write_script

# The poor trial (x < 0.5) starts logging late and slowly: the good one's value at each step is
# known first, so the Bandit policy prunes the poor one whichever trial the grid starts first.
TRIAL = """
import sys, time
from runhistory import Run
x = float(sys.argv[sys.argv.index("--x") + 1])
run = Run.get_context()
poor = x < 0.5
time.sleep(1.5 if poor else 0)
for step in range(10):
    run.log("score", x)
    run.flush()
    time.sleep(0.6 if poor else 0.2)
"""


@pytest.fixture(autouse=True)
def own_temp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Job folders (the controller's too) under the test's folder."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))


def _pruning_sweep(ws: Workspace, source: Path):
    ComputeTarget.create(ws, "here", LocalCompute.provisioning_configuration(working_directory=str(source.parent / "jobs")))
    write_script(source, "trial.py", TRIAL)
    config = HyperDriveConfig(
        run_config=ScriptRunConfig(source, "trial.py", compute_target="here"),
        hyperparameter_sampling=GridParameterSampling({"x": choice(1.0, 0.1)}),
        policy=BanditPolicy(slack_amount=0.2, evaluation_interval=1, delay_evaluation=1),
        primary_metric_name="score",
        primary_metric_goal=PrimaryMetricGoal.MAXIMIZE,
        max_total_runs=2,
        max_concurrent_runs=2,
    )
    sweep = Experiment(ws, "tune").submit(config)
    sweep.wait_for_completion(show_output=False)
    return sweep


def _show(ws_path: Path, *args: str) -> str:
    result = CliRunner(env={"COLUMNS": "100"}).invoke(cli, ["runs", "show", *args, "-w", str(ws_path)])
    assert result.exit_code == 0, result.output
    return result.stdout


def _trials_section(text: str) -> list[list[str]]:
    lines = text.splitlines()
    start = lines.index("Trials")
    end = next(i for i in range(start + 1, len(lines)) if not lines[i].strip())
    return [line.split() for line in lines[start + 1 : end]]


def test_runs_show_lists_trials_with_parameters_status_and_metric(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "ws")
    sweep = _pruning_sweep(ws, tmp_path / "project")
    assert sweep.get_status() == "Completed"
    good, poor = sorted(sweep.get_children(), key=lambda run: -json.loads(run.get_properties()["hyperparameters"])["x"])

    data = json.loads(_show(tmp_path / "ws", sweep.id, "-o", "json"))["sweep"]
    assert data["primary_metric_name"] == "score"
    assert data["best_child_run_id"] == good.id
    by_run = {trial["run_id"]: trial for trial in data["trials"]}
    assert by_run[good.id]["status"] == "Completed" and by_run[good.id]["primary_metric"] == 1.0
    assert by_run[good.id]["hyperparameters"] == {"x": 1.0}
    assert by_run[poor.id]["status"] == "Pruned" and by_run[poor.id]["hyperparameters"] == {"x": 0.1}
    assert by_run[poor.id]["primary_metric"] == 0.1
    assert poor.get_status() == "Canceled"  # the store's status; "Pruned" is what the sweep made of it

    rows = _trials_section(_show(tmp_path / "ws", sweep.id))
    assert rows[0] == ["#", "status", "x", "score"]
    assert {good.number: "Completed", poor.number: "Pruned"} == {
        int(row[0].lstrip("*")): row[1] for row in rows[1:] if row[0].lstrip("*").isdigit()
    }
    best_row = next(row for row in rows if row[0].startswith("*"))
    assert best_row == [f"*{good.number}", "Completed", "1", "1"]
    assert ["*", "the", "best", "trial", f"({good.id})"] in rows


def test_a_plain_run_with_children_shows_no_trials(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "ws")
    parent = Experiment(ws, "plain").start_logging("parent")
    with parent.child_run("child") as child:
        child.log("score", 1.0)
    parent.complete()
    text = _show(tmp_path / "ws", parent.id)
    assert "Trials" not in text.splitlines() and "Children" in text.splitlines()
    assert "sweep" not in json.loads(_show(tmp_path / "ws", parent.id, "-o", "json"))
