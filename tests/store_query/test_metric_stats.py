"""Each series' last number, minimum and maximum, kept by every append path; stats, keys and summaries."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from runhistory import Experiment, Workspace
from runhistory.core.errors import RunHistoryError
from runhistory.store.base import MetricBatch, MetricKind, MetricStats, RunFilter, RunKeys
from runhistory.store.series_stats import numeric_stats

from tests.helpers import start_python
from tests.postgres import BACKENDS

pytestmark = BACKENDS


def _stats(ws: Workspace, run_id: str) -> dict[str, MetricStats]:
    return ws.store.get_metric_stats([run_id])[run_id]


def test_min_and_max_move_on_through_flushes_bursts_and_direct_appends(exp: Experiment) -> None:
    run = exp.start_logging()
    for value in (3.0, 1.5, float("nan"), 4.0):  # one flush each
        run.log("loss", value)
        run.flush()
    run.log("loss", 2.0)
    run.log("loss", 2.5)
    run.flush()
    exp.workspace.store.append_metrics(  # a burst: a chunk of its own
        [MetricBatch(run.id, "loss", MetricKind.SCALAR, np.linspace(10.0, -1.0, 1000), [None] * 1000, np.full(1000, time.time()))]
    )
    run.log("acc", 7)
    run.log("acc", -3)
    run.log("inf", float("inf"))
    run.log("inf", 1.0)
    run.log("word", "hello")
    run.log_list("list", [4, 8, 2])
    run.log_row("table", a=1, b=2)
    run.flush()
    stats = _stats(exp.workspace, run.id)
    assert stats["loss"] == MetricStats("scalar", 1006, -1.0, -1.0, 10.0)
    assert stats["acc"] == MetricStats("scalar", 2, -3, -3.0, 7.0)
    assert stats["inf"] == MetricStats("scalar", 2, 1.0, 1.0, math.inf)
    assert stats["word"] == MetricStats("scalar", 1, "hello", None, None)
    assert stats["list"] == MetricStats("list", 3, 2, 2.0, 8.0)
    assert (stats["table"].kind, stats["table"].min, stats["table"].max) == ("table", None, None)
    run.complete()  # compaction leaves the stats as they are
    assert _stats(exp.workspace, run.id)["loss"] == stats["loss"]
    assert [r.id for r in exp.workspace.store.list_runs(RunFilter(query="metrics.inf.max > 1e308"))] == [run.id]


def test_a_nan_last_value_has_no_last_number_and_is_never_an_extreme(exp: Experiment) -> None:
    run = exp.start_logging()
    run.log("loss", 2.0)
    run.log("loss", float("nan"))
    run.flush()
    stats = _stats(exp.workspace, run.id)["loss"]
    assert (math.isnan(stats.last), stats.min, stats.max) == (True, 2.0, 2.0)
    assert list(exp.get_runs(filter="metrics.loss is null")) != []
    assert list(exp.get_runs(filter="metrics.loss.min = 2")) != []
    only_nan = exp.start_logging()
    only_nan.log("loss", float("nan"))
    only_nan.flush()
    assert (_stats(exp.workspace, only_nan.id)["loss"].min, _stats(exp.workspace, only_nan.id)["loss"].max) == (None, None)


def test_stats_of_points_appended_by_several_processes(ws: Workspace, exp: Experiment) -> None:
    run = exp.start_logging()
    run.log("shared", 0.0)
    run.flush()
    code = f"""
        from runhistory import Workspace
        from runhistory.store.base import MetricBatch
        import time
        ws = Workspace({ws.tracking_uri!r}, {str(ws.artifact_uri)!r})
        worker = {{worker}}
        for at in range(20):
            value = worker * 100 + at - 50.0
            ws.store.append_metrics([MetricBatch({run.id!r}, "shared", "scalar", [value], [None], [time.time()])])
    """
    processes = [start_python(code.replace("{worker}", str(worker))) for worker in range(3)]
    for process in processes:
        _out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
    stats = _stats(ws, run.id)["shared"]
    assert (stats.count, stats.min, stats.max) == (61, -50.0, 169.0)


def test_metric_stats_are_read_for_a_page_of_runs_and_checked(exp: Experiment) -> None:
    first, second = exp.start_logging(), exp.start_logging()
    first.log("a", 1.0)
    second.log("b", "x")
    first.flush()
    second.flush()
    store = exp.workspace.store
    found = store.get_metric_stats([first.id, second.id, "no-such-run", first.id])
    assert found == {
        first.id: {"a": MetricStats("scalar", 1, 1.0, 1.0, 1.0)},
        second.id: {"b": MetricStats("scalar", 1, "x", None, None)},
    }
    assert store.get_metric_stats([]) == {}
    assert store.get_metric_stats(["\udcff-not-unicode"]) == {}
    with pytest.raises(RunHistoryError, match="at most 1000 runs at a time, not 1001"):
        store.get_metric_stats([f"run{number}" for number in range(1001)])
    with pytest.raises(RunHistoryError, match="a list of run ids, not str"):
        store.get_metric_stats("just-one")  # type: ignore[arg-type]
    with pytest.raises(RunHistoryError, match="string of 1 to 512 characters"):
        store.get_metric_stats([""])


def test_run_keys_and_experiment_summaries(ws: Workspace) -> None:
    exp = Experiment(ws, "keys")
    run = exp.start_logging()
    run.log("b_metric", 1.0)
    run.log("a_metric", 2.0)
    run.set_tags({"model": "ridge"})
    run.add_properties({"alpha": "0.1"})
    run.flush()
    done = exp.start_logging()
    done.set_tags({"extra": "1"})
    done.complete()
    Experiment(ws, "empty")
    assert ws.store.run_keys(exp.id) == RunKeys(("a_metric", "b_metric"), ("extra", "model"), ("alpha",))
    with pytest.raises(RunHistoryError, match="whole number"):
        ws.store.run_keys("keys")  # type: ignore[arg-type]
    summaries = {summary.name: summary for summary in ws.store.experiment_summaries()}
    assert (summaries["keys"].runs, summaries["keys"].running) == (2, 1)
    assert summaries["keys"].last_activity >= ws.store.get_run(done.id).end_time
    assert (summaries["empty"].runs, summaries["empty"].running, summaries["empty"].last_activity) == (0, 0, None)
    run.complete()


def test_numeric_stats_of_every_kind_of_values() -> None:
    assert numeric_stats("scalar", np.array([3, 1, 2], dtype=np.int64)) == (2.0, 1.0, 3.0)
    assert numeric_stats("scalar", [1, "x", 5.0]) == (5.0, 1.0, 5.0)
    assert numeric_stats("scalar", [1, "x"]) == (None, 1.0, 1.0)
    assert numeric_stats("scalar", [True, False]) == (None, None, None)
    assert numeric_stats("image", [1.0]) == (None, None, None)
    assert numeric_stats("scalar", np.array([np.nan, -np.inf])) == (-math.inf, -math.inf, -math.inf)
