"""The samplings: grid, random and Bayesian spaces on real (in-memory) Optuna studies."""

from __future__ import annotations

import itertools
import math

import optuna
import pytest

from runhistory.core.errors import JobConfigError
from runhistory.train.hyperdrive import (
    BayesianParameterSampling,
    GridParameterSampling,
    HyperParameterSampling,
    RandomParameterSampling,
    choice,
    loguniform,
    normal,
    quniform,
    randint,
    uniform,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)


def sweep(sampling: HyperParameterSampling, n: int, seed: int | None = None, objective=None) -> list[dict]:
    """The values of ``n`` trials asked and told one after the other (objective: values -> score)."""
    study = optuna.create_study(sampler=sampling.optuna_sampler(seed), direction="maximize")
    drawn = []
    for _ in range(n):
        trial = study.ask()
        values = sampling.suggest(trial)
        study.tell(trial, objective(values) if objective else 0.0)
        drawn.append(values)
    return drawn


def test_grid_visits_every_point_exactly_once() -> None:
    grid = GridParameterSampling({"lr": choice(0.1, 0.01), "hidden": choice(16, 32, 64), "act": choice("relu")})
    assert grid.grid_size() == 6
    points = [(values["lr"], values["hidden"], values["act"]) for values in sweep(grid, 6)]
    assert sorted(points) == sorted(itertools.product([0.1, 0.01], [16, 32, 64], ["relu"]))


def test_grid_visits_every_point_once_with_trials_in_flight_together() -> None:
    grid = GridParameterSampling({"a": choice(range(4)), "b": choice("x", "y")})
    study = optuna.create_study(sampler=grid.optuna_sampler())
    trials = [study.ask() for _ in range(8)]  # all asked before any is told, as a sweep does
    points = [tuple(grid.suggest(trial).values()) for trial in trials]
    assert sorted(points) == sorted(itertools.product(range(4), "xy"))


def test_a_seeded_grid_visits_in_the_same_order() -> None:
    grid = GridParameterSampling({"a": choice(range(5)), "b": choice(range(5))}, {"seed": 3})
    assert sweep(grid, 25) == sweep(grid, 25)
    assert sweep(grid, 25, seed=4) != sweep(grid, 25)


def test_random_respects_every_distribution() -> None:
    space = {"lr": loguniform(-6, -1), "batch": choice(16, 32), "layers": randint(3),
             "dropout": uniform(0.1, 0.5), "width": quniform(8, 64, 8), "noise": normal(0, 1)}
    drawn = sweep(RandomParameterSampling(space), 300, seed=5)
    assert all(math.exp(-6) <= values["lr"] <= math.exp(-1) for values in drawn)
    assert {values["batch"] for values in drawn} == {16, 32}
    assert {values["layers"] for values in drawn} == {0, 1, 2}
    assert all(0.1 <= values["dropout"] <= 0.5 for values in drawn)
    assert {values["width"] for values in drawn} == {8.0 * k for k in range(1, 9)}
    assert all(isinstance(values["noise"], float) for values in drawn)
    assert all(list(values) == list(space) for values in drawn)


def test_seeded_random_sampling_is_reproducible() -> None:
    sampling = RandomParameterSampling({"lr": loguniform(-6, -1), "noise": normal(0, 1)}, properties={"seed": 11})
    assert sweep(sampling, 20) == sweep(sampling, 20)
    assert sweep(sampling, 20, seed=12) == sweep(sampling, 20, seed=12) != sweep(sampling, 20)
    unseeded = RandomParameterSampling({"lr": loguniform(-6, -1)})
    assert sweep(unseeded, 5) != sweep(unseeded, 5)


def test_suggest_returns_real_values_not_what_optuna_stores() -> None:
    sampling = RandomParameterSampling({"q": quniform(0, 1, 0.25), "n": normal(100, 1)})
    study = optuna.create_study(sampler=sampling.optuna_sampler(0))
    trial = study.ask()
    values = sampling.suggest(trial)
    assert values["q"] in {0.0, 0.25, 0.5, 0.75, 1.0} and 90 < values["n"] < 110
    assert set(trial.params) == {"q__raw", "n__u"}
    assert trial.user_attrs == {"param:q": values["q"], "param:n": values["n"]}
    study.tell(trial, 0.0)
    assert sampling.values_of(study.trials[0]) == values


def test_bayesian_is_tpe_and_finds_the_better_region() -> None:
    sampling = BayesianParameterSampling({"x": uniform(0, 1), "kind": choice("good", "bad")},
                                         properties={"seed": 2, "startup_trials": 8})
    assert isinstance(sampling.optuna_sampler(), optuna.samplers.TPESampler)
    drawn = sweep(sampling, 40, objective=lambda v: -abs(v["x"] - 0.8) + (v["kind"] == "good"))
    guided = drawn[8:]
    assert sum(v["kind"] == "good" for v in guided) > 0.7 * len(guided)
    assert sum(abs(v["x"] - 0.8) < 0.2 for v in guided) > 0.5 * len(guided)


def test_bayesian_gives_different_values_to_trials_in_flight() -> None:
    sampling = BayesianParameterSampling({"x": quniform(0, 100, 1)}, {"seed": 0, "startup_trials": 2})
    study = optuna.create_study(sampler=sampling.optuna_sampler())
    for _ in range(4):
        trial = study.ask()
        study.tell(trial, sampling.suggest(trial)["x"])
    running = [sampling.suggest(study.ask())["x"] for _ in range(3)]
    assert len(set(running)) == 3  # the constant liar keeps concurrent trials apart


@pytest.mark.parametrize(
    "sampling",
    [RandomParameterSampling({"lr": loguniform(-6, -1), "--batch-size": choice(16, 32)}, {"seed": 1}),
     GridParameterSampling({"a": choice(1, 2), "b": choice("x", None)}),
     BayesianParameterSampling({"x": uniform(0, 1), "y": quniform(0, 8, 2)}, {"startup_trials": 3})],
    ids=lambda sampling: type(sampling).__name__,
)
def test_a_sampling_reads_back_what_to_json_wrote(sampling: HyperParameterSampling) -> None:
    again = HyperParameterSampling.from_json(sampling.to_json())
    assert type(again) is type(sampling) and again == sampling
    assert again.to_json() == sampling.to_json()


def test_parameters_become_script_arguments() -> None:
    values = {"lr": 0.001, "--batch-size": 32, "act": "relu"}
    assert HyperParameterSampling.arguments(values) == ["--lr", "0.001", "--batch-size", "32", "--act", "relu"]


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda: RandomParameterSampling({}), "parameter_space is empty"),
        (lambda: RandomParameterSampling([("lr", uniform(0, 1))]), "must be a dict"),
        (lambda: RandomParameterSampling({"learning rate": uniform(0, 1)}), "parameter name 'learning rate'"),
        (lambda: RandomParameterSampling({"1lr": uniform(0, 1)}), "parameter name '1lr'"),
        (lambda: RandomParameterSampling({"x__u": uniform(0, 1)}), "parameter name 'x__u'"),
        (lambda: RandomParameterSampling({"lr": 0.1}), "must be a distribution"),
        (lambda: RandomParameterSampling({"lr": uniform(0, 1), "--lr": uniform(0, 2)}), "same argument --lr"),
        (lambda: RandomParameterSampling({"lr": uniform(0, 1)}, {"rng": 1}), "does not know the properties"),
        (lambda: RandomParameterSampling({"lr": uniform(0, 1)}, {"seed": "one"}), "property 'seed'"),
        (lambda: GridParameterSampling({"lr": uniform(0, 1)}), "GridParameterSampling supports only choice"),
        (lambda: GridParameterSampling({"a": choice(1, 1, 2)}), "repeats an option"),
        (lambda: BayesianParameterSampling({"lr": loguniform(-6, -1)}), "supports only choice, quniform, uniform"),
        (lambda: BayesianParameterSampling({"r": randint(3)}), "parameter 'r' is randint(3)"),
        (lambda: HyperParameterSampling.from_json({"sampling": "sobol", "parameter_space": {}}), "'sampling'"),
        (lambda: HyperParameterSampling.from_json({"sampling": "grid"}), "'parameter_space'"),
    ],
)
def test_bad_samplings_are_one_sentence(make, words: str) -> None:
    with pytest.raises(JobConfigError) as caught:
        make()
    message = str(caught.value)
    assert words in message
    assert message.endswith(".") and "\n" not in message


def test_a_grid_on_a_sqlite_study_is_told_to_its_last_point(tmp_path) -> None:
    grid = GridParameterSampling({"a": choice(1, 2), "b": choice(True, False)})
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'optuna.db'}")
    study = optuna.create_study(storage=storage, sampler=grid.optuna_sampler())
    for _ in range(grid.grid_size()):
        trial = study.ask()
        values = grid.suggest(trial)
        study.tell(trial, float(values["a"]))  # Optuna's own GridSampler raises on the last one here
    trials = optuna.load_study(study_name=study.study_name, storage=storage).get_trials()
    assert all(trial.state == optuna.trial.TrialState.COMPLETE for trial in trials)
    assert sorted(tuple(grid.values_of(trial).values()) for trial in trials) == sorted(
        itertools.product([1, 2], [True, False])
    )
