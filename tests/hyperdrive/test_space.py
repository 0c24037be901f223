"""The parameter expressions: azureml's semantics, drawn through real (in-memory) Optuna studies."""

from __future__ import annotations

import math
import statistics
import subprocess
import sys

import optuna
import pytest

from runhistory.core.errors import JobConfigError
from runhistory.train.hyperdrive import parameter_expressions as pe
from runhistory.train.hyperdrive.parameter_expressions import (
    Distribution,
    choice,
    lognormal,
    loguniform,
    normal,
    qlognormal,
    qloguniform,
    qnormal,
    quniform,
    randint,
    uniform,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)


def draw(distribution: Distribution, n: int = 1000, seed: int = 7) -> list:
    """``n`` values of ``distribution``, each from its own trial of randomly sampled studies.

    A study of 250 trials at most: an in-memory study's ask and tell slow down as trials pile up.
    """
    values = []
    for chunk in range(0, n, 250):
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed + chunk))
        for _ in range(min(250, n - chunk)):
            trial = study.ask()
            values.append(distribution.suggest(trial, "x"))
            study.tell(trial, 0.0)
    return values


def is_multiple(value: float, q: float) -> bool:
    return math.isclose(value / q, round(value / q), abs_tol=1e-9)


def test_choice_takes_options_a_list_or_a_range_and_draws_each() -> None:
    assert choice(1, 2, 3) == choice([1, 2, 3]) == choice(range(1, 4)) == Distribution("choice", (1, 2, 3))
    assert choice("relu") == Distribution("choice", ("relu",))
    assert set(draw(choice("a", "b", None, True), 200)) == {"a", "b", None, True}


def test_randint_draws_every_int_below_upper_and_nothing_else() -> None:
    values = draw(randint(5), 300)
    assert set(values) == {0, 1, 2, 3, 4}
    assert all(type(value) is int for value in values)


def test_uniform_stays_within_its_bounds_and_fills_them() -> None:
    values = draw(uniform(-2, 3), 1000)
    assert all(-2 <= value <= 3 for value in values)
    assert min(values) < -1.9 and max(values) > 2.9
    assert statistics.fmean(values) == pytest.approx(0.5, abs=0.2)


def test_quniform_rounds_to_multiples_of_q() -> None:
    values = draw(quniform(0, 1, 0.1), 500)
    assert set(values) == {round(k / 10, 1) for k in range(11)}  # 0.3, not 0.30000000000000004
    # round(uniform / q) * q: the ends get half a step each
    assert values.count(0.0) < values.count(0.5)


def test_loguniform_bounds_are_logarithms_and_values_are_log_uniform() -> None:
    values = draw(loguniform(-6, -1), 2000)
    assert all(math.exp(-6) <= value <= math.exp(-1) for value in values)
    # uniform in log space: the median is e^(-3.5), far below the arithmetic middle of the range
    assert math.log(statistics.median(values)) == pytest.approx(-3.5, abs=0.25)
    logs = [math.log(value) for value in values]
    assert sum(-6 <= v < -4.75 for v in logs) == pytest.approx(500, rel=0.2)  # each quarter a quarter


def test_qloguniform_rounds_exp_of_uniform() -> None:
    values = draw(qloguniform(0, math.log(100), 5), 500)
    assert all(is_multiple(value, 5) and 0 <= value <= 100 for value in values)
    assert statistics.median(values) == pytest.approx(10, abs=5)  # e^(ln(100) / 2)


def test_normal_has_its_mean_and_standard_deviation() -> None:
    values = draw(normal(10, 3), 2000)
    assert statistics.fmean(values) == pytest.approx(10, abs=0.3)
    assert statistics.stdev(values) == pytest.approx(3, rel=0.08)


def test_normal_is_drawn_as_a_quantile_and_its_value_is_recorded() -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    trial = study.ask()
    value = normal(0, 1).suggest(trial, "noise")
    quantile = trial.params["noise__u"]
    assert 0 < quantile < 1 and "noise" not in trial.params
    assert value == pytest.approx(statistics.NormalDist().inv_cdf(quantile))
    assert trial.user_attrs["param:noise"] == value


def test_qnormal_lognormal_and_qlognormal() -> None:
    assert all(is_multiple(value, 0.5) for value in draw(qnormal(0, 2, 0.5), 300))
    logs = [math.log(value) for value in draw(lognormal(1, 0.5), 2000)]
    assert statistics.fmean(logs) == pytest.approx(1, abs=0.05)
    assert statistics.stdev(logs) == pytest.approx(0.5, rel=0.08)
    values = draw(qlognormal(2, 0.5, 1), 300)
    assert all(is_multiple(value, 1) and value >= 0 for value in values)


def test_every_value_reads_back_from_the_stored_trial() -> None:
    study = optuna.create_study()
    trial = study.ask()
    space = {"a": choice(1, 2), "b": quniform(0, 10, 2), "c": loguniform(0, 1), "d": lognormal(0, 1)}
    values = {name: distribution.suggest(trial, name) for name, distribution in space.items()}
    study.tell(trial, 1.0)
    stored = study.trials[0]
    assert {name: dist.value_of(stored, name) for name, dist in space.items()} == values
    # only the values Optuna does not hold as the parameter itself cost a user attribute
    assert stored.user_attrs == {"param:b": values["b"], "param:d": values["d"]}
    assert stored.params["b__raw"] != values["b"] and is_multiple(values["b"], 2)
    assert stored.params["a"] == values["a"] and stored.params["c"] == values["c"]


@pytest.mark.parametrize(
    "distribution",
    [choice(1, "a", None, 2.5, False), randint(4), uniform(0, 1), quniform(0, 10, 0.5), loguniform(-3, 0),
     qloguniform(0, 2, 1), normal(0, 1), qnormal(1, 2, 0.1), lognormal(0, 1), qlognormal(0, 1, 1)],
    ids=str,
)
def test_a_distribution_reads_back_what_to_json_wrote(distribution: Distribution) -> None:
    data = distribution.to_json()
    assert data["kind"] == distribution.kind
    assert Distribution.from_json(data) == distribution


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda: choice(), "choice"),
        (lambda: choice([]), "choice"),
        (lambda: choice([1, 2], [3]), "choice's options"),
        (lambda: choice(float("nan")), "choice's options"),
        (lambda: randint(0), "randint's upper"),
        (lambda: randint(2.5), "randint's upper"),
        (lambda: uniform(1, 1), "uniform's min_value"),
        (lambda: uniform("0", 1), "uniform's min_value"),
        (lambda: uniform(0, float("inf")), "uniform's max_value"),
        (lambda: quniform(0, 1, 0), "quniform's q"),
        (lambda: quniform(0, 1, -0.5), "quniform's q"),
        (lambda: loguniform(0, 1000), "loguniform's bounds"),
        (lambda: loguniform(2, -1), "loguniform's min_value"),
        (lambda: qloguniform(0, 1, None), "qloguniform's q"),
        (lambda: normal(0, 0), "normal's sigma"),
        (lambda: normal(True, 1), "normal's mu"),
        (lambda: qnormal(0, 1, 0), "qnormal's q"),
        (lambda: lognormal(0, -1), "lognormal's sigma"),
        (lambda: lognormal(600, 100), "lognormal's mu and sigma"),
        (lambda: qlognormal(0, 1, 0), "qlognormal's q"),
        (lambda: Distribution.from_json({"kind": "gaussian", "args": [0, 1]}), "kind"),
        (lambda: Distribution.from_json({"kind": "uniform", "args": 3}), "args of a uniform"),
        (lambda: Distribution.from_json({"kind": "uniform", "args": [2, 1]}), "uniform's min_value"),
    ],
)
def test_bad_arguments_are_one_sentence_naming_function_and_argument(make, words: str) -> None:
    with pytest.raises(JobConfigError) as caught:
        make()
    message = str(caught.value)
    assert words in message
    assert message.endswith(".") and "\n" not in message


def test_only_choice_has_options() -> None:
    assert choice(range(3)).options() == [0, 1, 2]
    with pytest.raises(JobConfigError, match="only choice"):
        uniform(0, 1).options()


WITHOUT_OPTUNA = """
import sys
sys.modules["optuna"] = None  # as if the hyperdrive extra were not installed
from runhistory.core.errors import MissingExtraError
from runhistory.train.hyperdrive import BanditPolicy, RandomParameterSampling, uniform
sampling, policy = RandomParameterSampling({"x": uniform(0, 1)}), BanditPolicy(slack_factor=0.1)
for make in (sampling.optuna_sampler, lambda: policy.optuna_pruner("MAXIMIZE")):
    try:
        make()
    except MissingExtraError as exc:
        print(exc)
"""


def test_a_space_needs_no_optuna_and_sampling_names_the_extra() -> None:
    done = subprocess.run([sys.executable, "-c", WITHOUT_OPTUNA], capture_output=True, text=True, timeout=60)
    lines = done.stdout.strip().splitlines()
    assert done.returncode == 0 and len(lines) == 2, (done.stdout, done.stderr)
    assert all("pip install 'runhistory[hyperdrive]'" in line for line in lines)
    assert pe.require_optuna() is optuna
