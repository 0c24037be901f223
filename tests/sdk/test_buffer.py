"""The client-side buffer keeps points compactly and hands them back exactly as they were logged."""

from __future__ import annotations

import threading
from pathlib import Path

from runhistory import Experiment
from tests.helpers import run_python

POINTS = 200_000


def test_a_buffered_numeric_point_costs_at_most_24_bytes(tmp_path: Path) -> None:
    result = run_python(
        f"""
        import tracemalloc
        from runhistory import Experiment, Workspace
        ws = Workspace.create({str(tmp_path / 'ws')!r})
        run = Experiment(ws, "compact").start_logging()
        run.log("loss", 0.5)
        run.log("acc", 0.5, step=0)
        tracemalloc.start()
        start = tracemalloc.get_traced_memory()[0]
        for i in range(1, {POINTS} + 1):
            run.log("loss", i * 0.5)
        plain = tracemalloc.get_traced_memory()[0]
        for i in range(1, {POINTS} + 1):
            run.log("acc", i * 0.5, step=i)
        stepped = tracemalloc.get_traced_memory()[0]
        print((plain - start) / {POINTS}, (stepped - plain) / {POINTS}, ws.backends.buffer.memory_bytes() / (2 * {POINTS} + 2))
        """,
        RUNHISTORY_FLUSH_INTERVAL="600",  # every point stays buffered while measured
    )
    without_step, with_step, packed = map(float, result.stdout.split())
    # allocated, growth included: 16 bytes a point without a step, 20 with one
    assert without_step <= 24 and with_step <= 24, (without_step, with_step)
    assert packed == 18.0


def test_points_read_back_as_a_flat_list_of_them_would_have(exp: Experiment) -> None:
    run = exp.start_logging()
    for value in (1, 2.5, 3):  # ints and floats in one flush: stored as floats, as before
        run.log("mixed", value)
    run.log("int_then_float", 1)
    run.flush()
    run.log("int_then_float", 2.5)
    run.log("steps", 1.0, step=0)
    run.log("steps", 2.0, step=2**40)  # past int32
    run.log("steps", 3.0)  # no step: its index
    run.log("steps", 4.0, step=-(2**63))
    run.log("text", "a")
    run.log("text", 7)
    run.log("text", float("nan"))
    run.log_list("list", [1, 2, 3])
    run.log_row("table", a=1, b="x")
    run.log("big", 2**62)
    metrics = run.get_metrics()
    assert metrics["mixed"] == [1.0, 2.5, 3.0] and [type(v) for v in metrics["mixed"]] == [float] * 3
    assert metrics["int_then_float"] == [1, 2.5] and type(metrics["int_then_float"][0]) is int
    assert metrics["steps"] == [1.0, 2.0, 3.0, 4.0]
    assert run.get_metric_series(["steps"])["steps"].steps.tolist() == [0, 2**40, 2, -(2**63)]
    assert metrics["text"][:2] == ["a", 7] and metrics["text"][2] != metrics["text"][2]
    assert metrics["list"] == [1, 2, 3] and metrics["table"] == {"a": 1, "b": "x"}
    assert metrics["big"] == 2**62 and type(metrics["big"]) is int


def test_threads_logging_one_series_keep_each_step_with_its_value(exp: Experiment) -> None:
    run = exp.start_logging()
    per_thread = 20_000

    def log(offset: int) -> None:
        for i in range(offset, offset + per_thread):
            run.log("shared", float(i), step=i)

    threads = [threading.Thread(target=log, args=(n * per_thread,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    series = run.get_metric_series(["shared"])["shared"]
    assert sorted(series.steps.tolist()) == list(range(4 * per_thread))
    assert series.values == [float(step) for step in series.steps.tolist()]
    run.complete()
