"""Reading the series of many runs at once: the same points as one read per run, live or ended."""

from __future__ import annotations

import numpy as np

from runhistory import Experiment, Workspace
from runhistory.store.base import MetricBatch
from tests.postgres import BACKENDS

pytestmark = BACKENDS


def _series_as_lists(series) -> dict:
    return {name: (s.kind, list(s.values), s.steps.tolist(), s.times.tolist()) for name, s in series.items()}


def test_many_runs_read_at_once_match_one_read_per_run(ws: Workspace) -> None:
    experiment = Experiment(ws, "many")
    runs = [experiment.start_logging() for _ in range(12)]
    for step in range(40):  # one flush per step: frames, folds and tier merges all happen
        for number, run in enumerate(runs):
            run.log("loss", 1.0 / (step + 1) + number)
            run.log("epoch", step)
            if number % 3 == 0:
                run.log("note", f"step {step} ✓")
            run.flush()
    for run in runs[::2]:
        run.complete()  # half of them ended (fully compacted), half live (frames and small chunks)
    ids = [run.id for run in runs]
    together = ws.store.get_metrics_of_runs([*ids, "no-such-run", ids[0]])
    assert list(together) == ids, "every existing run once, in the order asked, unknown ones left out"
    for run_id in ids:
        assert _series_as_lists(together[run_id]) == _series_as_lists(ws.store.get_metrics(run_id))
    assert together[ids[0]]["epoch"].values == list(range(40))
    assert together[ids[0]]["note"].values[-1] == "step 39 ✓"

    as_arrays = ws.store.get_metrics_of_runs(ids, numeric_arrays=True)  # what the UI's charts read
    for run_id in ids:
        for name, series in as_arrays[run_id].items():
            listed = together[run_id][name].values
            if name == "note":
                assert series.values == listed  # text stays a list
            else:
                assert isinstance(series.values, np.ndarray) and series.values.tolist() == listed
    assert as_arrays[ids[0]]["epoch"].values.dtype == np.int64 and as_arrays[ids[1]]["loss"].values.dtype == np.float64

    only_loss = ws.store.get_metrics_of_runs(ids, names=["loss"])
    assert all(list(series) == ["loss"] for series in only_loss.values())
    assert only_loss[ids[5]]["loss"].values == [1.0 / (step + 1) + 5 for step in range(40)]


def test_a_run_without_metrics_reads_as_empty_and_nothing_asked_reads_nothing(ws: Workspace) -> None:
    run = Experiment(ws, "empty").start_logging()
    assert ws.store.get_metrics_of_runs([run.id]) == {run.id: {}}
    assert ws.store.get_metrics_of_runs([]) == {}


def test_a_flush_of_many_series_with_numpy_parts_reads_back_exactly(ws: Workspace) -> None:
    run = Experiment(ws, "packed").start_logging()
    times = np.array([1.7e9, 1.7e9 + 1])
    batches = [
        MetricBatch(run.id, "floats", "scalar", np.array([0.5, np.nan]), [None, None], times),
        MetricBatch(run.id, "ints", "scalar", np.array([2**62, -1]), np.array([10, 20]), times),
        MetricBatch(run.id, "strings", "scalar", ["a", "b"], [None, 3], times),
    ]
    for _ in range(2):  # the second time the store knows the series and takes the fast path
        ws.store.append_metrics(batches)
    series = ws.store.get_metrics(run.id)
    assert series["floats"].values[0::2] == [0.5, 0.5] and all(np.isnan(series["floats"].values[1::2]))
    assert series["floats"].steps.tolist() == [0, 1, 2, 3]
    assert series["ints"].values == [2**62, -1, 2**62, -1] and series["ints"].steps.tolist() == [10, 20, 10, 20]
    assert series["strings"].values == ["a", "b", "a", "b"] and series["strings"].steps.tolist() == [0, 3, 2, 3]
    summaries = {s.name: (s.count, s.last_value) for s in ws.store.get_metric_summaries(run.id)}
    assert summaries["ints"] == (4, -1) and summaries["strings"] == (4, "b") and summaries["floats"][0] == 4
