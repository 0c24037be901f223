"""Sweeps on a server workspace: a real ``runhistory server`` process, a client workspace of it, the
controller and trials as real jobs on local targets registered through that workspace, and the
Optuna study kept in the sweep's ``outputs/optuna.db``, read back through the server's files."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from runhistory import Experiment, Workspace
from runhistory.store.base import RunStatus
from runhistory.train.hyperdrive import GridParameterSampling, HyperDriveConfig, HyperDriveRun, PrimaryMetricGoal, choice
from runhistory.train.hyperdrive.controller import OPTUNA_FILE

from tests.hyperdrive.sweep_support import (  # noqa: F401 - fixtures
    controllers_target,
    no_sweep_left_behind,
    sweep_exp,
    trial_config,
    trials_source,
    trials_target,
    wait_for_sweep,
)
from tests.jobs.support import wait_until
from tests.server.conftest import client_home, remote_ws, server  # noqa: F401 - fixtures

pytestmark = pytest.mark.xdist_group("sweeps")

STUDY_FILE = f"outputs/{OPTUNA_FILE}"
SWEEP_TIMEOUT_S = 120


@pytest.fixture
def ws(remote_ws: Workspace) -> Workspace:
    """The sweeps' workspace: a client of the test's server (sweep_support's fixtures register
    their targets, and submit their sweeps, through it)."""
    return remote_ws


def grid_sweep(source: Path, target: str, script: str = "score.py", **trial_options: object) -> HyperDriveConfig:
    """A grid sweep of ``script`` over x in (1, 2, 3), two trials at a time, maximizing their
    ``score`` (score.py logs x * 10)."""
    return HyperDriveConfig(
        run_config=trial_config(source, script, target, **trial_options),
        hyperparameter_sampling=GridParameterSampling({"x": choice(1, 2, 3)}),
        primary_metric_name="score",
        primary_metric_goal=PrimaryMetricGoal.MAXIMIZE,
        max_total_runs=10,
        max_concurrent_runs=2,
    )


def study_trials(ws: Workspace, sweep: HyperDriveRun, folder: Path) -> list[tuple[int, str, float | None]]:
    """The trials of the sweep's Optuna study (number, state, value), from its ``outputs/optuna.db``
    downloaded through the workspace's files."""
    import optuna

    path = folder / OPTUNA_FILE
    path.write_bytes(ws.artifacts.read(sweep.id, STUDY_FILE))
    with sqlite3.connect(path) as db:  # Optuna's own tables, as a check independent of Optuna
        assert db.execute("SELECT study_name FROM studies").fetchall() == [(sweep.id,)]
    study = optuna.load_study(study_name=sweep.id, storage=f"sqlite:///{path}")
    return sorted((trial.number, trial.state.name, trial.value) for trial in study.trials)


def test_a_grid_sweep_on_a_server_workspace(
    ws: Workspace, sweep_exp: Experiment, trials_source: Path, trials_target: str, tmp_path: Path
) -> None:
    sweep = sweep_exp.submit(grid_sweep(trials_source, trials_target))
    assert isinstance(sweep, HyperDriveRun)
    sweep.wait_for_completion(show_output=False, timeout=SWEEP_TIMEOUT_S)
    assert sweep.get_status() == RunStatus.COMPLETED, sweep.get_details().get("error")

    children = sweep.get_children()
    assert sorted(json.loads(child.get_properties()["hyperparameters"])["x"] for child in children) == [1, 2, 3]
    assert all(child.get_status() == RunStatus.COMPLETED for child in children)
    for child in children:  # each trial's properties hold its point, its arguments are that point
        properties = child.get_properties()
        assert properties["x"] == str(json.loads(properties["hyperparameters"])["x"])
        assert child.get_details()["runDefinition"]["arguments"] == ["--x", properties["x"]]
        assert child.get_metrics()["score"] == int(properties["x"]) * 10
    best = sweep.get_best_run_by_primary_metric()
    assert best is not None and best.get_properties()["x"] == "3" and best.get_metrics()["score"] == 30
    assert sweep.get_properties()["best_child_run_id"] == best.id
    again = HyperDriveRun.from_run(Workspace(ws.tracking_uri).get_run(sweep.id))  # another client ranks the same
    assert again.get_best_run_by_primary_metric() == best

    assert STUDY_FILE in sweep.get_file_names()
    trials = study_trials(ws, sweep, tmp_path)
    assert {state for _number, state, _value in trials} == {"COMPLETE"}
    by_trial = {int(child.get_properties()["optuna_trial"]): child.get_metrics()["score"] for child in children}
    assert {number: value for number, _state, value in trials} == by_trial


def test_a_server_sweep_goes_on_past_a_failing_trial(
    ws: Workspace, sweep_exp: Experiment, trials_source: Path, trials_target: str, tmp_path: Path
) -> None:
    sweep = sweep_exp.submit(grid_sweep(trials_source, trials_target, environment={"FAIL_AT_2": "1"}))
    sweep.wait_for_completion(show_output=False, timeout=SWEEP_TIMEOUT_S)
    assert sweep.get_status() == RunStatus.COMPLETED, sweep.get_details().get("error")

    statuses = {json.loads(child.get_properties()["hyperparameters"])["x"]: child.get_status() for child in sweep.get_children()}
    assert statuses == {1: RunStatus.COMPLETED, 2: RunStatus.FAILED, 3: RunStatus.COMPLETED}
    best = sweep.get_best_run_by_primary_metric(include_failed=False)
    assert best is not None and best.get_metrics()["score"] == 30
    states = sorted(state for _number, state, _value in study_trials(ws, sweep, tmp_path))
    assert states == ["COMPLETE", "COMPLETE", "FAIL"]


def test_a_canceled_server_sweep_keeps_its_study(
    ws: Workspace, sweep_exp: Experiment, trials_source: Path, trials_target: str, tmp_path: Path
) -> None:
    sweep = sweep_exp.submit(grid_sweep(trials_source, trials_target, "sleep.py"))
    wait_until(lambda: [c.get_status() for c in sweep.get_children()] == [RunStatus.RUNNING] * 2, SWEEP_TIMEOUT_S, 0.2, "two trials")
    sweep.cancel()
    assert wait_for_sweep(sweep, *RunStatus.TERMINAL) == RunStatus.CANCELED
    assert [child.get_status() for child in sweep.get_children()] == [RunStatus.CANCELED] * 2
    # the supervisor uploads ./outputs however the script ended: the trials in flight were told FAIL
    assert [state for _number, state, _value in study_trials(ws, sweep, tmp_path)] == ["FAIL", "FAIL"]
