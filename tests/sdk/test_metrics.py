"""Every metric kind, its read-back shape, and bad values."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from runhistory import Experiment, Run
from runhistory.core.errors import InvalidNameError, MetricValueError
from tests.postgres import BACKENDS

pytestmark = BACKENDS  # every test on SQLite and on PostgreSQL


@pytest.fixture
def run(exp: Experiment) -> Run:
    return exp.start_logging()


def test_single_value_and_series(run: Run) -> None:
    run.log("alpha", 0.5)
    for value in [3, 2, 1]:
        run.log("loss", value)
    assert run.get_metrics() == {"alpha": 0.5, "loss": [3, 2, 1]}
    assert run.get_metrics("loss") == {"loss": [3, 2, 1]}
    assert run.get_metrics("missing") == {}


def test_reads_see_the_runs_own_writes_at_once(run: Run) -> None:
    for step in range(1000):
        run.log("x", step)
        if step in (0, 499):
            assert len(run.get_metric_series(["x"])["x"].values) == step + 1
    assert run.get_metrics("x")["x"] == list(range(1000))


def test_steps_default_to_the_index_and_can_be_given(run: Run) -> None:
    run.log("loss", 1.0)
    run.log("loss", 0.5)
    run.flush()
    run.log("loss", 0.25)
    run.log("val", 0.9, step=100)
    run.log("val", 0.8, step=np.int64(200))
    series = run.get_metric_series()
    assert series["loss"].steps.tolist() == [0, 1, 2]
    assert series["val"].steps.tolist() == [100, 200]
    assert all(series["loss"].times[i] <= series["loss"].times[i + 1] for i in range(2))


def test_numbers_numpy_scalars_bools_and_strings(run: Run) -> None:
    run.log("i", 3)
    run.log("f", np.float32(0.5))
    run.log("n", np.int64(7))
    run.log("b", True)
    run.log("nb", np.bool_(False))
    run.log("s", "converged")
    run.log("big", 2**63 - 1)  # the largest int a store keeps exactly (beyond: see test_validation.py)
    run.log("mixed", 1)
    run.log("mixed", 2.5)
    run.log("mixed", "three")
    metrics = run.get_metrics()
    assert metrics == {
        "i": 3, "f": 0.5, "n": 7, "b": 1, "nb": 0, "s": "converged", "big": 2**63 - 1, "mixed": [1, 2.5, "three"]
    }
    assert type(metrics["i"]) is int and type(metrics["f"]) is float


def test_nan_and_infinities_round_trip_exactly(run: Run) -> None:
    for value in [float("nan"), float("inf"), float("-inf"), -0.0, 1e-308, 1.7976931348623157e308]:
        run.log("edge", value)
    run.log("only_nan", float("nan"))
    metrics = run.get_metrics()
    values = metrics["edge"]
    assert math.isnan(values[0]) and values[1:3] == [math.inf, -math.inf]
    assert math.copysign(1, values[3]) == -1 and values[4:] == [1e-308, 1.7976931348623157e308]
    assert math.isnan(metrics["only_nan"])


def test_log_list(run: Run) -> None:
    run.log_list("accuracies", [0.5, 0.7, np.float64(0.9)])
    run.log_list("one", [1])
    assert run.get_metrics() == {"accuracies": [0.5, 0.7, 0.9], "one": [1]}


def test_log_row_and_log_table(run: Run) -> None:
    run.log_row("roc", fpr=0.0, tpr=0.0)
    run.log_row("roc", fpr=0.5, tpr=0.9)
    run.log_row("single", a=1, b="x")
    run.log_table("table", {"epoch": [1, 2, 3], "loss": [0.9, 0.5, 0.3]})
    assert run.get_metrics() == {
        "roc": {"fpr": [0.0, 0.5], "tpr": [0.0, 0.9]},
        "single": {"a": 1, "b": "x"},
        "table": {"epoch": [1, 2, 3], "loss": [0.9, 0.5, 0.3]},
    }


def test_log_image_from_a_file_and_from_a_figure(run: Run, tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots()
    axes.plot([1, 2, 3], [3, 1, 2])
    run.log_image("curve", plot=figure)
    png = tmp_path / "picture.png"
    figure.savefig(png)
    run.log_image("picture", path=png)
    plt.close(figure)
    metrics = run.get_metrics()
    for name in ("curve", "picture"):
        assert metrics[name] in run.get_file_names()
        out = run.download_file(metrics[name], tmp_path / f"{name}-back.png")
        assert out.read_bytes().startswith(b"\x89PNG")


def test_get_metrics_recursive(run: Run) -> None:
    run.log("root", 1)
    with run.child_run("child") as child:
        child.log("mse", 2.0)
        with child.child_run("grandchild") as grandchild:
            grandchild.log("mse", 3.0)
    assert run.get_metrics(recursive=True) == {
        run.id: {"root": 1},
        child.id: {"mse": 2.0},
        grandchild.id: {"mse": 3.0},
    }


@pytest.mark.parametrize(
    ("value", "hint"),
    [([1, 2], "use run.log_list"), ((1, 2), "use run.log_list"), (np.zeros(3), "use run.log_list"),
     ({"a": 1}, "log_row"), (None, "NoneType"), (object(), "object"), (b"bytes", "bytes")],
)
def test_values_that_are_neither_number_nor_string(run: Run, value: object, hint: str) -> None:
    run.log("good", 1.0)
    with pytest.raises(MetricValueError, match=f"Metric 'bad' of run {run.id}: .*{hint}"):
        run.log("bad", value)
    assert run.get_metrics() == {"good": 1.0}


@pytest.mark.parametrize(
    ("name", "message"),
    [("", "is empty"), ("x" * 256, "256 characters; the limit is 255"), ("tab\there", "control characters"),
     ("nul\x00", "control characters"), (3, "must be a string")],
)
def test_bad_metric_names(run: Run, name: object, message: str) -> None:
    with pytest.raises(InvalidNameError, match=message):
        run.log(name, 1.0)  # type: ignore[arg-type]
    run.log("x" * 255, 1.0)
    assert list(run.get_metrics()) == ["x" * 255]


def test_bad_steps_lists_tables_and_kinds(run: Run) -> None:
    with pytest.raises(MetricValueError, match="step must be an integer"):
        run.log("loss", 1.0, step=1.5)
    with pytest.raises(MetricValueError, match="log_list takes a list"):
        run.log_list("l", "abc")
    with pytest.raises(MetricValueError, match="columns differ in length"):
        run.log_table("t", {"a": [1, 2], "b": [1]})
    with pytest.raises(MetricValueError, match="log_table takes a dict"):
        run.log_table("t", [1, 2])  # type: ignore[arg-type]
    with pytest.raises(MetricValueError, match="must be a number or a string"):
        run.log_row("r", a=[1])
    run.log("kind", 1.0)
    with pytest.raises(MetricValueError, match="logged as a scalar metric"):
        run.log_list("kind", [1, 2])
    with pytest.raises(MetricValueError, match="exactly one of path= or plot="):
        run.log_image("img")
    assert run.get_metrics() == {"kind": 1.0}


def test_description_is_kept(run: Run) -> None:
    run.log("lr", 0.1, description="learning rate")
    assert run.get_metric_series()["lr"].description == "learning rate"
