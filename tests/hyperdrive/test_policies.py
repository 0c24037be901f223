"""Early termination policies as Optuna pruners, on trials driven by hand (ask, report, should_prune)."""

from __future__ import annotations

import optuna
import pytest

from runhistory.core.errors import JobConfigError
from runhistory.train.hyperdrive import (
    BanditPolicy,
    EarlyTerminationPolicy,
    MedianStoppingPolicy,
    NoTerminationPolicy,
    TruncationSelectionPolicy,
)
from runhistory.train.hyperdrive.policy import STARTUP_TRIALS, study_direction
from runhistory.train.hyperdrive.pruners import BanditPruner

optuna.logging.set_verbosity(optuna.logging.WARNING)


def study_for(policy: EarlyTerminationPolicy, goal: str) -> optuna.Study:
    return optuna.create_study(direction=study_direction(goal), pruner=policy.optuna_pruner(goal))


def run_trial(study: optuna.Study, curve: list[float]) -> int | None:
    """Report ``curve`` step by step; the step the trial was pruned at, or None when it completed."""
    trial = study.ask()
    for step, value in enumerate(curve):
        trial.report(value, step)
        if trial.should_prune():
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            return step
    study.tell(trial, curve[-1])
    return None


GOOD = [0.5, 0.6, 0.7, 0.8, 0.9]


def test_bandit_prunes_a_trial_beyond_the_slack_factor_and_keeps_one_within() -> None:
    study = study_for(BanditPolicy(slack_factor=0.1), "MAXIMIZE")
    assert run_trial(study, GOOD) is None
    assert run_trial(study, [0.47, 0.56, 0.65, 0.75, 0.85]) is None  # within best / 1.1 at every step
    assert run_trial(study, [0.5, 0.6, 0.6, 0.7, 0.8]) == 2  # 0.6 < 0.7 / 1.1
    assert isinstance(study.pruner, BanditPruner)


def test_bandit_with_a_slack_amount_when_minimizing() -> None:
    study = study_for(BanditPolicy(slack_amount=0.2), "MINIMIZE")
    assert run_trial(study, [1.0, 0.8, 0.6, 0.4]) is None
    assert run_trial(study, [1.1, 0.95, 0.75, 0.55]) is None  # at most 0.2 above the best
    assert run_trial(study, [1.1, 1.05, 0.9, 0.7]) == 1  # 1.05 > 0.8 + 0.2
    assert run_trial(study, [0.5, 0.3, 0.2, 0.1]) is None  # a better trial is never pruned


def test_bandit_compares_with_trials_still_running() -> None:
    study = study_for(BanditPolicy(slack_factor=0.5), "MAXIMIZE")
    leader, lagger = study.ask(), study.ask()
    leader.report(10.0, 0)
    lagger.report(5.0, 0)  # below 10 / 1.5, and no trial has finished yet
    assert lagger.should_prune() and not leader.should_prune()


def test_bandit_waits_for_the_delay_and_evaluates_every_interval() -> None:
    study = study_for(BanditPolicy(evaluation_interval=2, slack_factor=0.1, delay_evaluation=1), "MAXIMIZE")
    assert run_trial(study, GOOD) is None
    assert run_trial(study, [0.1, 0.1, 0.1, 0.1, 0.1]) == 1  # not at step 0: the delay
    assert run_trial(study, [0.5, 0.6, 0.1, 0.8, 0.9]) is None  # lags only at step 2, which is not evaluated
    assert run_trial(study, [0.5, 0.6, 0.7, 0.1, 0.9]) == 3


def test_bandit_judges_the_latest_step_when_steps_come_in_batches() -> None:
    study = study_for(BanditPolicy(evaluation_interval=3, slack_factor=0.1), "MAXIMIZE")
    assert run_trial(study, GOOD) is None
    trial = study.ask()
    for step, value in enumerate([0.5, 0.6, 0.7, 0.1]):  # steps 0..3 reported, then asked once
        trial.report(value, step)
    assert trial.should_prune()  # step 3 is an evaluation step, the first this trial reached


def test_bandit_goes_on_without_a_peer_at_the_step() -> None:
    study = study_for(BanditPolicy(slack_amount=0.0), "MAXIMIZE")
    assert run_trial(study, [1.0, 1.0]) is None
    assert run_trial(study, [1.0, 1.0, 0.0, 0.0]) is None  # nobody else reached steps 2 and 3


def test_median_prunes_a_lagging_trial_once_enough_trials_finished() -> None:
    study = study_for(MedianStoppingPolicy(), "MAXIMIZE")
    lagging = [0.1, 0.1, 0.1, 0.1, 0.1]
    assert run_trial(study, lagging) is None  # no finished trial to compare with yet
    assert STARTUP_TRIALS == 2
    assert run_trial(study, GOOD) is None
    assert run_trial(study, [0.6, 0.7, 0.8, 0.9, 1.0]) is None  # a good one is kept
    assert run_trial(study, lagging) == 0


def test_median_when_minimizing_and_with_a_delay() -> None:
    study = study_for(MedianStoppingPolicy(delay_evaluation=2), "MINIMIZE")
    for curve in ([1.0, 0.8, 0.6, 0.5], [1.0, 0.7, 0.5, 0.4], [1.2, 0.9, 0.5, 0.44]):
        assert run_trial(study, curve) is None
    assert run_trial(study, [0.1, 0.1, 0.1, 0.1]) is None  # the best one
    assert run_trial(study, [3.0, 3.0, 3.0, 3.0]) == 2  # not before the delay


@pytest.mark.parametrize("goal", ["MAXIMIZE", "MINIMIZE"])
def test_truncation_prunes_the_worst_percent_in_the_goals_direction(goal: str) -> None:
    study = study_for(TruncationSelectionPolicy(truncation_percentage=20), goal)
    values = (0.1, 0.2, 0.3, 0.4, 0.5)
    for value in values if goal == "MAXIMIZE" else reversed(values):  # each better than the last
        assert run_trial(study, [value, value]) is None
    # the worst 20% of [0.1 .. 0.5] lies below 0.18 when maximizing, above 0.42 when minimizing
    worst, middling = (0.15, 0.25) if goal == "MAXIMIZE" else (0.45, 0.35)
    assert run_trial(study, [worst, worst]) == 0
    assert run_trial(study, [middling, middling]) is None


def test_truncation_of_most_trials_keeps_only_the_best() -> None:
    study = study_for(TruncationSelectionPolicy(90), "MAXIMIZE")
    for value in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10):
        assert run_trial(study, [value]) is None
    assert run_trial(study, [8.5]) == 0  # below the 90th percentile
    assert run_trial(study, [9.95]) is None


def test_no_termination_never_prunes() -> None:
    policy = NoTerminationPolicy()
    study = study_for(policy, "MAXIMIZE")
    for curve in (GOOD, GOOD, GOOD, [0.0] * 5):
        assert run_trial(study, curve) is None
    assert not policy.terminates and BanditPolicy(slack_factor=1).terminates


@pytest.mark.parametrize(
    "policy",
    [BanditPolicy(evaluation_interval=2, slack_factor=0.15, delay_evaluation=3), BanditPolicy(slack_amount=1),
     MedianStoppingPolicy(evaluation_interval=5, delay_evaluation=1), TruncationSelectionPolicy(25, 2, 4),
     NoTerminationPolicy()],
    ids=repr,
)
def test_a_policy_reads_back_what_to_json_wrote(policy: EarlyTerminationPolicy) -> None:
    again = EarlyTerminationPolicy.from_json(policy.to_json())
    assert type(again) is type(policy) and again == policy and again.to_json() == policy.to_json()


def test_the_goal_may_be_a_name_or_an_enum_member() -> None:
    class Goal:
        value = "MINIMIZE"

    assert study_direction("maximize") == "maximize" and study_direction(Goal()) == "minimize"


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda: BanditPolicy(), "exactly one of slack_factor and slack_amount"),
        (lambda: BanditPolicy(slack_factor=0.1, slack_amount=0.2), "exactly one of slack_factor and slack_amount"),
        (lambda: BanditPolicy(slack_factor=-0.1), "slack_factor must be a number >= 0"),
        (lambda: BanditPolicy(slack_amount="0.1"), "slack_amount must be a number >= 0"),
        (lambda: BanditPolicy(evaluation_interval=0, slack_factor=0.1), "evaluation_interval must be an int >= 1"),
        (lambda: MedianStoppingPolicy(delay_evaluation=-1), "delay_evaluation must be an int >= 0"),
        (lambda: MedianStoppingPolicy(evaluation_interval=1.5), "evaluation_interval must be an int >= 1"),
        (lambda: TruncationSelectionPolicy(0), "truncation_percentage must be a number from 1 to 99"),
        (lambda: TruncationSelectionPolicy(100), "truncation_percentage must be a number from 1 to 99"),
        (lambda: MedianStoppingPolicy().optuna_pruner("UP"), "MAXIMIZE or MINIMIZE"),
        (lambda: EarlyTerminationPolicy.from_json({"policy": "hyperband"}), "'policy' must be one of"),
        (lambda: EarlyTerminationPolicy.from_json({"policy": "median", "slack": 1}), "does not take ['slack']"),
        (lambda: EarlyTerminationPolicy.from_json({"policy": "truncation"}), "needs ['truncation_percentage']"),
    ],
)
def test_bad_policies_are_one_sentence(make, words: str) -> None:
    with pytest.raises(JobConfigError) as caught:
        make()
    message = str(caught.value)
    assert words in message
    assert message.endswith(".") and "\n" not in message


def test_bandit_on_a_sqlite_study_as_a_sweep_keeps_it(tmp_path) -> None:
    policy = BanditPolicy(slack_factor=0.2)
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'optuna.db'}")
    study = optuna.create_study(storage=storage, study_name="sweep", direction=study_direction("MAXIMIZE"),
                                pruner=policy.optuna_pruner("MAXIMIZE"))
    assert run_trial(study, GOOD) is None
    again = optuna.load_study(study_name="sweep", storage=storage, pruner=policy.optuna_pruner("MAXIMIZE"))
    assert run_trial(again, [0.5, 0.3]) == 1  # 0.3 < 0.6 / 1.2, read back from the database
    states = [trial.state for trial in again.get_trials()]
    assert states == [optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED]


def test_the_sweeps_goal_names_the_study_direction() -> None:
    from runhistory.train.hyperdrive import PrimaryMetricGoal

    assert study_direction(PrimaryMetricGoal.MAXIMIZE) == "maximize"
    assert study_direction(PrimaryMetricGoal.MINIMIZE) == "minimize"
