"""Sweeps on the local target: real Optuna studies, real job processes for the controller and trials."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from runhistory import Experiment, Run
from runhistory.core.errors import JobConfigError
from runhistory.store.base import RunStatus
from runhistory.train.hyperdrive import (
    BanditPolicy,
    BayesianParameterSampling,
    GridParameterSampling,
    HyperDriveConfig,
    HyperDriveRun,
    PrimaryMetricGoal,
    RandomParameterSampling,
    choice,
    uniform,
)

from tests.hyperdrive.sweep_support import (  # noqa: F401 - fixtures
    controller_pids,
    controllers_target,
    no_sweep_left_behind,
    sweep_exp,
    terminal,
    trial_config,
    trials_source,
    trials_target,
    wait_for_sweep,
)
from tests.jobs.support import wait_for_status, wait_until

pytestmark = pytest.mark.xdist_group("sweeps")


def grid_config(source: Path, target: str, **options: object) -> HyperDriveConfig:
    defaults: dict = dict(
        hyperparameter_sampling=GridParameterSampling({"x": choice(1, 2), "y": choice(0, 5)}),
        primary_metric_name="score",
        primary_metric_goal=PrimaryMetricGoal.MAXIMIZE,
        max_total_runs=10,
        max_concurrent_runs=4,
    )
    run_config = options.pop("run_config", None) or trial_config(source, "score.py", target)
    return HyperDriveConfig(run_config=run_config, **{**defaults, **options})


@pytest.mark.both_stores  # the study in optuna.db beside SQLite; in the workspace's own PostgreSQL database
def test_grid_sweep_visits_every_point_once_and_finds_the_best(sweep_exp: Experiment, trials_source: Path, trials_target: str) -> None:
    sweep = sweep_exp.submit(grid_config(trials_source, trials_target))
    assert isinstance(sweep, HyperDriveRun)
    sweep.wait_for_completion(show_output=False, timeout=120)
    assert sweep.get_status() == RunStatus.COMPLETED
    children = sweep.get_children()
    points = sorted(tuple(json.loads(child.get_properties()["hyperparameters"]).values()) for child in children)
    assert points == [(1, 0), (1, 5), (2, 0), (2, 5)]  # the grid's size caps max_total_runs=10
    best = sweep.get_best_run_by_primary_metric()
    assert best is not None and best.get_metrics()["score"] == 25
    assert best.get_details()["runDefinition"]["arguments"] == ["--x", "2", "--y", "5"]
    assert {key: best.get_properties()[key] for key in ("x", "y")} == {"x": "2", "y": "5"}  # UI columns and axes
    assert sweep.get_properties()["best_child_run_id"] == best.id
    ranked = sweep.get_children_sorted_by_primary_metric()
    assert [row["best_primary_metric"] for row in ranked] == [25.0, 20.0, 15.0, 10.0]
    assert [row["best_primary_metric"] for row in sweep.get_children_sorted_by_primary_metric(top=2, reverse=True)] == [10.0, 15.0]
    assert set(sweep.get_hyperparameters()) == {child.id for child in children}
    assert sorted(metrics["score"] for metrics in sweep.get_metrics().values()) == [10, 15, 20, 25]
    assert all(child.get_tags()["hyperdrive.trial"] == child.get_properties()["optuna_trial"] for child in children)
    # a plain lookup of the sweep ranks the same
    again = HyperDriveRun.from_run(sweep_exp.workspace.get_run(sweep.id))
    assert again.get_best_run_by_primary_metric() == best


def test_a_failing_trial_does_not_stop_the_sweep(sweep_exp: Experiment, trials_source: Path, trials_target: str) -> None:
    run_config = trial_config(trials_source, "score.py", trials_target, environment={"FAIL_AT_2": "1"})
    sweep = sweep_exp.submit(grid_config(trials_source, trials_target, run_config=run_config))
    sweep.wait_for_completion(show_output=False, timeout=120)
    assert sweep.get_status() == RunStatus.COMPLETED
    statuses = sorted(child.get_status() for child in sweep.get_children())
    assert statuses == [RunStatus.COMPLETED, RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.FAILED]
    best = sweep.get_best_run_by_primary_metric(include_failed=False)
    assert best is not None and best.get_metrics()["score"] == 15


def test_every_trial_failing_fails_the_sweep(sweep_exp: Experiment, trials_source: Path, trials_target: str) -> None:
    run_config = trial_config(trials_source, "score.py", trials_target, environment={"FAIL_AT_2": "1"})
    sampling = GridParameterSampling({"x": choice(2)})
    sweep = sweep_exp.submit(grid_config(trials_source, trials_target, run_config=run_config, hyperparameter_sampling=sampling))
    assert wait_for_sweep(sweep, *RunStatus.TERMINAL) == RunStatus.FAILED
    assert sweep.get_best_run_by_primary_metric() is None


def test_max_concurrent_runs_holds(sweep_exp: Experiment, trials_source: Path, trials_target: str) -> None:
    run_config = trial_config(trials_source, "score.py", trials_target, arguments=["--sleep", "1"])
    config = grid_config(
        trials_source,
        trials_target,
        run_config=run_config,
        hyperparameter_sampling=RandomParameterSampling({"x": choice(1, 2, 3)}, properties={"seed": 3}),
        max_total_runs=5,
        max_concurrent_runs=2,
    )
    sweep = sweep_exp.submit(config)
    sweep.wait_for_completion(show_output=False, timeout=120)
    records = [child.record for child in sweep.get_children()]
    assert len(records) == 5 and all(record.status == RunStatus.COMPLETED for record in records)
    for record in records:  # at no trial's start were more than 2 running
        at_once = [o for o in records if o.start_time <= record.start_time < o.end_time]
        assert len(at_once) <= 2


def test_bandit_policy_cancels_a_lagging_trial(sweep_exp: Experiment, trials_source: Path, trials_target: str) -> None:
    config = HyperDriveConfig(
        run_config=trial_config(trials_source, "curve.py", trials_target),
        hyperparameter_sampling=GridParameterSampling({"quality": choice(1.0, 0.2)}),
        primary_metric_name="acc",
        primary_metric_goal=PrimaryMetricGoal.MAXIMIZE,
        max_total_runs=2,
        max_concurrent_runs=2,
        policy=BanditPolicy(slack_factor=0.1, evaluation_interval=1, delay_evaluation=2),
    )
    sweep = sweep_exp.submit(config)
    sweep.wait_for_completion(show_output=False, timeout=120)
    by_quality = {json.loads(c.get_properties()["hyperparameters"])["quality"]: c for c in sweep.get_children()}
    poor, good = by_quality[0.2], by_quality[1.0]
    assert poor.get_status() == RunStatus.CANCELED
    assert poor.get_properties()["hyperdrive.pruned"] == "1"
    assert len(poor.get_metrics()["acc"]) < 12  # stopped before its end
    assert good.get_status() == RunStatus.COMPLETED
    assert sweep.get_best_run_by_primary_metric() == good
    rows = {row["run_id"]: row["display_status"] for row in sweep.trial_rows()}
    assert rows[poor.id] == "Pruned"


def two_sleeping_trials(sweep_exp: Experiment, trials_source: Path, trials_target: str) -> HyperDriveRun:
    """A sweep of two trials that sleep, once both are Running."""
    config = grid_config(
        trials_source,
        trials_target,
        run_config=trial_config(trials_source, "sleep.py", trials_target),
        hyperparameter_sampling=GridParameterSampling({"x": choice(1, 2)}),
    )
    sweep = sweep_exp.submit(config)
    wait_until(lambda: len([c for c in sweep.get_children() if c.get_status() == RunStatus.RUNNING]) == 2, 60, 0.2, "trials")
    return sweep


def test_a_killed_controller_fails_the_sweep_and_its_trials_end_canceled(
    sweep_exp: Experiment, trials_source: Path, trials_target: str, tmp_path: Path
) -> None:
    sweep = two_sleeping_trials(sweep_exp, trials_source, trials_target)
    [pid] = controller_pids(tmp_path)
    os.kill(pid, signal.SIGKILL)
    # Run.get_status: the sweep's supervisor ends the trials, not the HyperDriveRun's fallback
    assert wait_for_status(Run(sweep.experiment, sweep.id), *RunStatus.TERMINAL) == RunStatus.FAILED
    assert [c.get_status() for c in sweep.get_children()] == [RunStatus.CANCELED, RunStatus.CANCELED]


def test_a_canceled_sweep_cancels_its_trials(sweep_exp: Experiment, trials_source: Path, trials_target: str) -> None:
    sweep = two_sleeping_trials(sweep_exp, trials_source, trials_target)
    sweep.cancel()
    assert wait_for_sweep(sweep, *RunStatus.TERMINAL) == RunStatus.CANCELED
    wait_until(lambda: all(terminal(c.get_status()) for c in sweep.get_children()), 40, 0.5, "trials end")
    assert [c.get_status() for c in sweep.get_children()] == [RunStatus.CANCELED, RunStatus.CANCELED]


def test_max_duration_ends_the_sweep_and_cancels_what_runs(sweep_exp: Experiment, trials_source: Path, trials_target: str) -> None:
    config = grid_config(
        trials_source,
        trials_target,
        run_config=trial_config(trials_source, "sleep.py", trials_target),
        hyperparameter_sampling=GridParameterSampling({"x": choice(1, 2, 3)}),
        max_concurrent_runs=1,
        max_duration_minutes=0.1,
    )
    sweep = sweep_exp.submit(config)
    sweep.wait_for_completion(show_output=False, raise_on_error=False, timeout=120)
    children = sweep.get_children()
    assert len(children) == 1  # one at a time, and each sleeps longer than the sweep may last
    wait_until(lambda: terminal(children[0].get_status()), 30, 0.2, "the trial to end")
    assert children[0].get_status() == RunStatus.CANCELED


def test_show_output_prints_the_trials(sweep_exp: Experiment, trials_source: Path, trials_target: str, capsys: pytest.CaptureFixture) -> None:
    sampling = GridParameterSampling({"x": choice(1, 2)})
    sweep = sweep_exp.submit(grid_config(trials_source, trials_target, hyperparameter_sampling=sampling))
    sweep.wait_for_completion(show_output=True, timeout=120)
    out = capsys.readouterr().out
    assert f"RunId: {sweep.id}" in out
    assert "x=1" in out and "x=2" in out and "Completed" in out


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"primary_metric_goal": "BIGGER"}, "Unknown primary_metric_goal 'BIGGER'"),
        ({"max_total_runs": 0}, "max_total_runs must be an integer of at least 1"),
        ({"max_concurrent_runs": 0}, "max_concurrent_runs must be an integer of at least 1"),
        ({"primary_metric_name": ""}, "primary_metric_name must be"),
        ({"max_duration_minutes": -1}, "max_duration_minutes must be a positive number"),
        ({"hyperparameter_sampling": {"x": [1, 2]}}, "hyperparameter_sampling must be a RandomParameterSampling"),
        (
            {"hyperparameter_sampling": BayesianParameterSampling({"x": uniform(0, 1)}), "policy": BanditPolicy(slack_factor=0.1)},
            "BayesianParameterSampling takes no early termination policy",
        ),
        ({"policy": "bandit"}, "policy must be a BanditPolicy"),
    ],
)
def test_bad_configs_say_one_sentence(trials_source: Path, change: dict, says: str) -> None:
    with pytest.raises(JobConfigError) as raised:
        grid_config(trials_source, "local", **change)
    assert says in str(raised.value) and "\n" not in str(raised.value)


def test_exactly_one_trial_config(trials_source: Path) -> None:
    run_config = trial_config(trials_source, "score.py", "local")
    common = dict(
        hyperparameter_sampling=GridParameterSampling({"x": choice(1)}),
        primary_metric_name="score",
        primary_metric_goal="maximize",
        max_total_runs=1,
    )
    with pytest.raises(JobConfigError, match="exactly one of run_config"):
        HyperDriveConfig(run_config=run_config, estimator=run_config, **common)
    with pytest.raises(JobConfigError, match="exactly one of run_config"):
        HyperDriveConfig(**common)
    assert HyperDriveConfig(estimator=run_config, **common).primary_metric_goal == PrimaryMetricGoal.MAXIMIZE


def test_an_empty_space_says_one_sentence() -> None:
    with pytest.raises(JobConfigError) as raised:
        RandomParameterSampling({}).check()
    assert "\n" not in str(raised.value)
