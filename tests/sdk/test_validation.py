"""One validation at the store's edge: the SDK and a direct caller of the store get the same refusal.

Each rule is tried through the SDK (refused when logged, one sentence) and directly on the
store (refused there too, nothing stored), on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from runhistory import Experiment, Run, Workspace
from runhistory.core.errors import InvalidNameError, MetricValueError, NotFoundError, RunFinishedError, RunHistoryError
from runhistory.store.base import MetricBatch, MetricKind, RunFilter, RunStatus
from runhistory.core.validation import MAX_STRING_VALUE_BYTES, MAX_TEXT_LENGTH
from runhistory.store.batch_check import check_metric_batch
from tests.postgres import BACKENDS

pytestmark = BACKENDS  # every test on SQLite and on PostgreSQL


@pytest.fixture
def run(exp: Experiment) -> Run:
    return exp.start_logging()


def one_sentence(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message and message.endswith(".") and len(message) < 400, message
    return message


def batch(run_id: str, name: str = "m", values=(1.0,), steps=None, times=None, kind: str = MetricKind.SCALAR) -> MetricBatch:
    values = list(values)
    return MetricBatch(
        run_id,
        name,
        kind,
        values,
        list(steps) if steps is not None else [None] * len(values),
        list(times) if times is not None else [time.time()] * len(values),
    )


BAD_NAMES = [
    ("", "empty"),
    ("a\x00b", "control characters"),
    ("tab\there", "control characters"),
    ("x" * 10_000, "10000 characters"),
    ("\ud800", "lone surrogate"),
]


# --- metric names and values: through the SDK (at once) and on the store ---


@pytest.mark.parametrize("name, reason", BAD_NAMES)
def test_bad_metric_names_are_refused_when_logged_and_by_the_store(run: Run, ws: Workspace, name: str, reason: str) -> None:
    with pytest.raises(InvalidNameError) as error:
        run.log(name, 1.0)
    assert reason in one_sentence(error)
    with pytest.raises(InvalidNameError, match=reason):
        ws.store.append_metrics([batch(run.id, name)])
    assert ws.store.get_metrics(run.id) == {}


def test_ints_outside_int64_are_refused_with_a_hint_to_log_a_float(run: Run, ws: Workspace) -> None:
    for value in (2**63, -(2**63) - 1, 2**70, np.uint64(2**64 - 1)):
        with pytest.raises(MetricValueError, match=r"64-bit range.*log it as a float") as error:
            run.log("big", value)
        one_sentence(error)
    run.log("big", 2**63 - 1)
    run.log("big", -(2**63))
    assert run.get_metrics("big")["big"] == [2**63 - 1, -(2**63)]
    for values in ([2**63], [1, 2**63], [0.5, 2**70]):  # numpy would make the last two floats silently
        with pytest.raises(MetricValueError, match="64-bit range"):
            ws.store.append_metrics([batch(run.id, "direct", values)])
    assert "direct" not in ws.store.get_metrics(run.id)


def test_steps_outside_int64_and_float_steps_are_refused(run: Run, ws: Workspace) -> None:
    with pytest.raises(MetricValueError, match="outside the 64-bit integer range") as error:
        run.log("x", 1, step=2**63)
    one_sentence(error)
    with pytest.raises(MetricValueError, match="step must be an integer"):
        run.log("x", 1, step=1e23)
    for steps in ([2**63], [1e23], [1.5], [None, 2**64], ["3"]):
        with pytest.raises(MetricValueError, match="step"):
            ws.store.append_metrics([batch(run.id, "x", [1] * len(steps), steps=steps)])
    run.log("x", 1, step=2**63 - 1)
    assert run.get_metric_series(["x"])["x"].steps.tolist() == [2**63 - 1]


def test_nan_and_infinities_stay_values_but_not_wall_times(run: Run, ws: Workspace) -> None:
    ws.store.append_metrics([batch(run.id, "v", [math.nan, math.inf, -math.inf, 1e308])])
    assert str(ws.store.get_metrics(run.id)["v"].values) == "[nan, inf, -inf, 1e+308]"
    for bad in (math.nan, math.inf, -1.0, -1e300, 1e300, 253402300800.0):
        with pytest.raises(MetricValueError, match="wall time") as error:
            ws.store.append_metrics([batch(run.id, "t", [1.0], times=[bad])])
        one_sentence(error)
    assert "t" not in ws.store.get_metrics(run.id)


def test_strings_must_be_valid_unicode_and_at_most_one_mib(run: Run, ws: Workspace) -> None:
    with pytest.raises(MetricValueError, match="lone surrogate") as error:
        run.log("s", "bad \udc80 text")
    one_sentence(error)
    with pytest.raises(MetricValueError, match="1 MiB") as error:
        run.log("s", "x" * (MAX_STRING_VALUE_BYTES + 1))
    one_sentence(error)
    with pytest.raises(MetricValueError, match="1 MiB"):  # counted in UTF-8 bytes, not characters
        run.log("s", "é" * (MAX_STRING_VALUE_BYTES // 2 + 1))
    run.log("s", "x" * MAX_STRING_VALUE_BYTES)
    for value in ("\ud800", "y" * (MAX_STRING_VALUE_BYTES + 1)):
        with pytest.raises(MetricValueError):
            ws.store.append_metrics([batch(run.id, "direct", [value])])
    assert len(run.get_metrics("s")["s"]) == MAX_STRING_VALUE_BYTES
    assert "direct" not in ws.store.get_metrics(run.id)


def test_kinds_and_value_types_are_checked_by_the_store(run: Run, ws: Workspace) -> None:
    with pytest.raises(MetricValueError, match="unknown kind 'bogus'") as error:
        ws.store.append_metrics([batch(run.id, "k", kind="bogus")])
    one_sentence(error)
    for values, kind in (([None], "scalar"), ([[1, 2]], "scalar"), ([{"a": 1}], "list"), ([5], "table"), ([{"": 1}], "table"), ([3], "image")):
        with pytest.raises((MetricValueError, InvalidNameError)):
            ws.store.append_metrics([batch(run.id, "k", values, kind=kind)])
    with pytest.raises(MetricValueError, match="3 values, 2 steps"):
        ws.store.append_metrics([MetricBatch(run.id, "k", "scalar", [1, 2, 3], [None, None], [1.0, 2.0, 3.0])])
    assert ws.store.get_metrics(run.id) == {}


def test_a_series_keeps_its_kind_across_handles(run: Run, ws: Workspace) -> None:
    run.log_list("l", [1, 2])
    run.flush()
    with pytest.raises(MetricValueError, match="is a list metric; it cannot also take table points"):
        ws.store.append_metrics([batch(run.id, "l", [{"a": 1}], kind=MetricKind.TABLE)])
    assert run.get_metrics("l")["l"] == [1, 2]


def test_one_refused_batch_refuses_the_whole_call(run: Run, ws: Workspace) -> None:
    with pytest.raises(InvalidNameError):
        ws.store.append_metrics([batch(run.id, "good", [1.0]), batch(run.id, "", [2.0])])
    assert ws.store.get_metrics(run.id) == {}


def test_log_table_with_a_scalar_column_is_one_sentence(run: Run) -> None:
    with pytest.raises(MetricValueError, match="column 'a' of a table must be a list") as error:
        run.log_table("t", {"a": 5})
    one_sentence(error)
    with pytest.raises(MetricValueError, match="must be a list"):
        run.log_table("t", {"a": "abc"})
    run.log_table("t", {"a": [1, 2]})
    assert run.get_metrics("t")["t"] == {"a": [1, 2]}


# --- azureml's order: run.log(name, value, description, step) ---


def test_run_log_takes_azuremls_argument_order(run: Run) -> None:
    run.log("acc", 0.9, "accuracy")
    run.log("acc", 0.95, "accuracy", 7)
    series = run.get_metric_series(["acc"])["acc"]
    assert series.description == "accuracy" and series.values == [0.9, 0.95] and series.steps.tolist() == [0, 7]
    with pytest.raises(MetricValueError, match="description must be a string.*step=") as error:
        run.log("loss", 0.1, 3)  # a step where azureml has the description
    one_sentence(error)
    with pytest.raises(MetricValueError, match="description must be a string"):
        run.log("acc", 0.97, 8)  # also once the series exists: the step is never silently dropped


# --- finished runs, missing runs ---


def test_a_finished_run_takes_no_metrics_through_any_handle(exp: Experiment, ws: Workspace) -> None:
    run = exp.start_logging()
    run.log("x", 1)
    run.complete()
    for handle in (ws.get_run(run.id), Run(exp, run.id)):
        with pytest.raises(RunFinishedError):
            handle.log("x", 2)
    with pytest.raises(RunFinishedError, match=rf"Run {run.id} has ended \(Completed\); it takes no metrics logged after that") as error:
        ws.store.append_metrics([batch(run.id, "x", [3])])
    one_sentence(error)
    with pytest.raises(NotFoundError, match="No run with id 'nope'"):
        ws.store.append_metrics([batch("nope", "x", [3])])
    assert run.get_metrics() == {"x": 1}


def test_a_retried_batch_of_a_run_that_ended_since_is_skipped_not_refused(exp: Experiment, ws: Workspace) -> None:
    run = exp.start_logging()
    ws.store.append_metrics([batch(run.id, "x", [1])], batch_id="applied-before-the-end")
    run.complete()
    ws.store.append_metrics([batch(run.id, "x", [1])], batch_id="applied-before-the-end")  # a lost reply, retried
    assert run.get_metrics() == {"x": 1}


# --- runs: statuses, times, error details, names ---


def test_statuses_times_and_error_details_are_checked(run: Run, ws: Workspace) -> None:
    store = ws.store
    with pytest.raises(RunHistoryError, match="Unknown run status 'Bogus'") as error:
        store.set_status(run.id, "Bogus")
    one_sentence(error)
    for at in (-1.0, -1e300, math.nan, math.inf, 1e300, 10**400):
        with pytest.raises(MetricValueError, match="not a valid time"):
            store.set_status(run.id, RunStatus.COMPLETED, at=at)
    for error_details in ("boom", {"code": "x"}, {"message": 5}, {"message": "x", "obj": object()}):
        with pytest.raises(MetricValueError, match="error details"):
            store.set_status(run.id, RunStatus.FAILED, error=error_details)
    with pytest.raises(MetricValueError, match="limit"):
        store.set_status(run.id, RunStatus.FAILED, error={"message": "x" * (2 << 20)})
    assert store.get_run(run.id).status == RunStatus.RUNNING and store.get_run(run.id).error is None
    with pytest.raises(RunHistoryError, match="Unknown run status"):
        store.create_run(run.experiment.id, status="Bogus")
    with pytest.raises(NotFoundError, match="No experiment with id 999999"):
        store.create_run(999999)
    with pytest.raises(NotFoundError):
        store.create_run(run.experiment.id, parent_id="no-such-parent")
    with pytest.raises(InvalidNameError, match="Run type"):
        store.create_run(run.experiment.id, run_type="bad type!")
    assert [r.id for r in store.list_runs(RunFilter())] == [run.id]


@pytest.mark.parametrize("name, reason", BAD_NAMES)
def test_bad_display_tag_and_property_names_are_one_sentence(exp: Experiment, ws: Workspace, name: str, reason: str) -> None:
    with pytest.raises(InvalidNameError, match=reason) as error:
        exp.start_logging(display_name=name)
    one_sentence(error)
    with pytest.raises(InvalidNameError, match=reason):
        ws.store.create_run(exp.id, display_name=name)
    run = exp.start_logging()
    with pytest.raises(InvalidNameError, match=reason):
        run.tag(name, "v")
    with pytest.raises(InvalidNameError, match=reason):
        run.add_properties({name: "v"})
    with pytest.raises(InvalidNameError, match=reason):
        ws.store.set_tags(run.id, {name: "v"})
    assert len(list(exp.get_runs())) == 1 and run.get_tags() == {} and run.get_properties() == {}


def test_tag_and_property_values_are_text_without_nul_surrogates_or_excess(run: Run, ws: Workspace) -> None:
    for value, reason in (("\ud800", "lone surrogate"), ("a\x00", "NUL"), ("x" * (MAX_TEXT_LENGTH + 1), "limit")):
        with pytest.raises(MetricValueError, match=reason) as error:
            run.tag("t", value)
        one_sentence(error)
        with pytest.raises(MetricValueError, match=reason):
            run.add_properties({"p": value})
        with pytest.raises(MetricValueError, match=reason):
            ws.store.add_properties(run.id, {"p": value})
    with pytest.raises(MetricValueError, match="must be a string"):
        ws.store.set_tags(run.id, {"t": 5})
    run.tag("t", "x" * MAX_TEXT_LENGTH)
    assert len(run.get_tags()["t"]) == MAX_TEXT_LENGTH and run.get_properties() == {}


def test_experiment_and_compute_target_names_and_configs_are_checked_by_the_store(ws: Workspace) -> None:
    for name in ("", "a b", "\ud800", "x" * 256, "-lead"):
        with pytest.raises(InvalidNameError):
            ws.store.get_or_create_experiment(name)
        with pytest.raises(InvalidNameError):
            ws.store.save_compute_target(name, "local", {})
    with pytest.raises(InvalidNameError, match="kind"):
        ws.store.save_compute_target("t", "", {})
    with pytest.raises(InvalidNameError, match="cannot run jobs on"):  # it would break ws.compute_targets
        ws.store.save_compute_target("t", "bogus", {})
    for config in ({"x": object()}, {"x": math.nan}, {"x": "y" * (70 << 10)}, ["not", "a", "dict"]):
        with pytest.raises(RunHistoryError, match="configuration"):
            ws.store.save_compute_target("t", "local", config)
    assert ws.store.list_experiments() == [] and ws.store.list_compute_targets() == []


def test_run_numbers_beyond_int64_find_no_run(run: Run, ws: Workspace) -> None:
    assert ws.store.get_run_by_number(run.experiment.id, 99999999999999999999999) is None
    assert ws.store.get_run_by_number(2**64, 1) is None
    assert ws.store.get_run_by_number(run.experiment.id, run.number).id == run.id


# --- the check itself: numbers vectorised, cheap ---


def test_a_million_numeric_points_are_checked_vectorised(run: Run) -> None:
    points = 1_000_000
    floats = MetricBatch(run.id, "f", "scalar", [i * 0.5 for i in range(points)], [None] * points, [time.time()] * points)
    ints = MetricBatch(run.id, "i", "scalar", list(range(points)), list(range(points)), [time.time()] * points)
    for one in (floats, ints):
        best = min(_cpu_seconds(lambda: check_metric_batch(one)) for _ in range(3))
        # mostly the list-to-array conversions the store's encoding needed anyway (it reuses the
        # arrays): ~0.1 s on a quiet machine; a loop in Python over the points would take seconds
        assert best < 0.6, best
    checked = check_metric_batch(ints)
    assert checked.values.dtype == np.int64 and checked.steps.dtype == np.int64 and checked.times.dtype == np.float64


def _cpu_seconds(work) -> float:
    start = time.process_time()
    work()
    return time.process_time() - start


def test_points_logged_before_the_end_are_kept_when_they_arrive_after_it(exp: Experiment, ws: Workspace) -> None:
    run = exp.start_logging()
    logged_at = time.time()
    run.complete()  # e.g. ended by a reader who found its process gone, while its spool waited for the server
    ws.store.append_metrics([batch(run.id, "x", [1.0], times=[logged_at])], batch_id="replayed-from-a-spool")
    with pytest.raises(RunFinishedError, match="logged after that"):
        ws.store.append_metrics([batch(run.id, "x", [2.0], times=[time.time() + 1])])
    assert run.get_metrics() == {"x": 1.0}
