"""The data of ``benchmarks/ui.py``, loaded the same into runhistory and into MLflow, cached under ``.bench/ui/``.

Standard library only at import time: the MLflow loader runs as a worker in MLflow's own
virtual environment (``run_worker(..., python=mlflow_python())``).

Three experiments, the same in both systems:

- ``bench-table``: ``runs`` runs x 10 metrics (``m0``..``m9``, one value each) x 5 tags
  (``model``, ``dataset``, ``owner``, ``stage``, ``seed``) x 3 properties / params
  (``alpha``, ``lr``, ``batch``), named ``run-00000``...; created oldest first.
- ``bench-long``: one run ``long`` with the series ``loss`` of ``long_points`` points.
- ``bench-compare``: 10 runs ``cmp-0``..``cmp-9`` x 10 metrics (``c0``..``c9``) x ``compare_points`` points.

runhistory is loaded through its store API (``create_run``, ``set_tags``, ``add_properties``,
``append_metrics`` of many series per call, ``set_status``). MLflow is loaded through its
``SqlAlchemyStore`` for one template run of each shape; the other runs are inserted as copies of
the template's rows (MLflow's own schema, its own values) with ``executemany``, because
``create_run`` + ``log_batch`` per run would take far longer than the ten minutes this benchmark
allows for loading, and the UI reads only what is in the tables.
"""

from __future__ import annotations

import json
import math
import random
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

METRICS = [f"m{k}" for k in range(10)]
TAGS = ["model", "dataset", "owner", "stage", "seed"]
PROPERTIES = ["alpha", "lr", "batch"]
COMPARE_RUNS = 10
COMPARE_METRICS = [f"c{k}" for k in range(10)]
FILTER = "metrics.m0 < 0.5"
TABLE_EXPERIMENT = "bench-table"
LONG_EXPERIMENT = "bench-long"
COMPARE_EXPERIMENT = "bench-compare"
BASE_TIME = 1_700_000_000.0  # the first run's start (seconds); run i starts i seconds later


def run_name(index: int) -> str:
    return f"run-{index:05d}"


def table_row(index: int, runs: int) -> dict[str, Any]:
    """Metrics, tags and properties of run ``index`` of ``bench-table`` (the same in both systems)."""
    rng = random.Random(index)
    metrics = {name: round(rng.random(), 6) for name in METRICS}
    if index == runs - 1:
        metrics["m0"] = 0.9  # the newest run fails the filter, so the filtered first page differs from the first page
    tags = {
        "model": rng.choice(["ridge", "lasso", "mlp", "gbm"]),
        "dataset": rng.choice(["diabetes", "housing", "wine"]),
        "owner": rng.choice(["ana", "bo", "chen"]),
        "stage": rng.choice(["dev", "prod"]),
        "seed": str(index),
    }
    properties = {"alpha": f"{rng.random():.4f}", "lr": rng.choice(["0.1", "0.01", "0.001"]), "batch": rng.choice(["32", "64"])}
    return {"name": run_name(index), "metrics": metrics, "tags": tags, "properties": properties}


def expectations(runs: int) -> dict[str, Any]:
    """What the views must show first: the run sorted first by m0, the newest run passing the filter."""
    rows = [table_row(i, runs) for i in range(runs)]
    sorted_first = min(range(runs), key=lambda i: (rows[i]["metrics"]["m0"], -i))
    filtered = [i for i in range(runs) if rows[i]["metrics"]["m0"] < 0.5]
    return {
        "newest": run_name(runs - 1),
        "sorted_first": run_name(sorted_first),
        "filtered_first": run_name(max(filtered)),
        "filtered_count": len(filtered),
    }


def wanted_ids(by_name: dict[str, str], runs: int) -> dict[str, str]:
    """{run name: run id} of the runs the views are expected to show first."""
    names = [name for key, name in expectations(runs).items() if key != "filtered_count"]
    return {name: by_name[name] for name in names}


def long_value(step: int) -> float:
    return math.sin(step / 5000.0) + 0.001 * (step % 97)


def compare_value(run: int, metric: int, step: int) -> float:
    return math.exp(-step / 30000.0) * (1 + 0.1 * run) + 0.01 * metric + 0.002 * ((step * 7 + run) % 13)


# --- runhistory ---------------------------------------------------------------------------


def load_runhistory(folder: str, runs: int, long_points: int, compare_points: int) -> dict[str, Any]:
    """Load the three experiments into a new embedded workspace at ``folder`` (runhistory's venv)."""
    from runhistory import Workspace

    started = time.perf_counter()
    store = Workspace.create(folder).store
    try:
        ids = _rh_table(store, runs)
        long_id = _rh_series(store, LONG_EXPERIMENT, ["long"], ["loss"], long_points, lambda _r, _m, s: long_value(s))[0]
        names = [f"cmp-{i}" for i in range(COMPARE_RUNS)]
        compare_ids = _rh_series(store, COMPARE_EXPERIMENT, names, COMPARE_METRICS, compare_points, compare_value)
    finally:
        store.close()
    return {"ids": ids, "long_run": long_id, "compare_runs": compare_ids, "seconds": time.perf_counter() - started}


def _rh_table(store: Any, runs: int, chunk: int = 500) -> dict[str, str]:
    """The runs of bench-table; returns {run name: run id} of the ones the views expect."""
    from runhistory.store.base import MetricBatch

    from _common import progress

    experiment = store.get_or_create_experiment(TABLE_EXPERIMENT)
    by_name: dict[str, str] = {}
    for first in range(0, runs, chunk):
        made = []
        for index in range(first, min(runs, first + chunk)):
            row = table_row(index, runs)
            run_id = store.create_run(experiment.id, display_name=row["name"]).id
            store.set_tags(run_id, row["tags"])
            store.add_properties(run_id, row["properties"])
            made.append((run_id, row))
            by_name[row["name"]] = run_id
        now = time.time()
        store.append_metrics(
            [MetricBatch(rid, name, "scalar", [value], [0], [now]) for rid, row in made for name, value in row["metrics"].items()]
        )
        for run_id, _row in made:
            store.set_status(run_id, "Completed")
        progress(f"runhistory: {min(runs, first + chunk):,} of {runs:,} runs loaded")
    return wanted_ids(by_name, runs)


def _rh_series(store: Any, experiment_name: str, run_names: list[str], metric_names: list[str], points: int, value) -> list[str]:
    """Runs with long series: ``value(run, metric, step)`` for every step; returns their ids."""
    from runhistory.store.base import MetricBatch

    from _common import progress

    experiment = store.get_or_create_experiment(experiment_name)
    ids = []
    for r, name in enumerate(run_names):
        run_id = store.create_run(experiment.id, display_name=name).id
        for m, metric in enumerate(metric_names):
            for first in range(0, points, 100_000):
                steps = list(range(first, min(points, first + 100_000)))
                times = [BASE_TIME + s * 0.01 for s in steps]
                store.append_metrics([MetricBatch(run_id, metric, "scalar", [value(r, m, s) for s in steps], steps, times)])
        store.set_status(run_id, "Completed")
        ids.append(run_id)
        progress(f"runhistory: {experiment_name} run {name} loaded ({len(metric_names)} x {points:,} points)")
    return ids


# --- MLflow (runs in MLflow's venv) -------------------------------------------------------------


def load_mlflow(db: str, artifacts: str, runs: int, long_points: int, compare_points: int) -> dict[str, Any]:
    """Load the three experiments into a new MLflow SQLite database ``db`` (MLflow's venv)."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    from _common import quiet_mlflow

    quiet_mlflow()
    started = time.perf_counter()
    store = SqlAlchemyStore(f"sqlite:///{db}", artifacts)
    table_id = store.create_experiment(TABLE_EXPERIMENT)
    long_id = store.create_experiment(LONG_EXPERIMENT)
    compare_exp = store.create_experiment(COMPARE_EXPERIMENT)
    store.engine.dispose()
    with sqlite3.connect(db) as connection:
        connection.execute("PRAGMA journal_mode=WAL")
    ids = _ml_table(store, db, table_id, runs)
    long_run = _ml_series(store, db, long_id, ["long"], ["loss"], long_points, lambda _r, _m, s: long_value(s))[0]
    names = [f"cmp-{i}" for i in range(COMPARE_RUNS)]
    compare_runs = _ml_series(store, db, compare_exp, names, COMPARE_METRICS, compare_points, compare_value)
    return {
        "experiments": {TABLE_EXPERIMENT: table_id, LONG_EXPERIMENT: long_id, COMPARE_EXPERIMENT: compare_exp},
        "ids": ids, "long_run": long_run, "compare_runs": compare_runs, "seconds": time.perf_counter() - started,
    }


def _ml_template(store: Any, experiment_id: str, name: str, metrics: dict[str, float], tags: dict[str, str], params: dict[str, str]) -> str:
    """One run made by MLflow itself (create_run + log_batch + terminated): the rows the copies follow."""
    from mlflow.entities import Metric, Param, RunStatus, RunTag

    ms = int(BASE_TIME * 1000)
    run = store.create_run(experiment_id, user_id="bench", start_time=ms, tags=[RunTag("mlflow.runName", name)], run_name=name)
    run_id = run.info.run_id
    store.log_batch(
        run_id,
        metrics=[Metric(k, v, ms, 0) for k, v in metrics.items()],
        params=[Param(k, v) for k, v in params.items()],
        tags=[RunTag(k, v) for k, v in tags.items()],
    )
    store.update_run_info(run_id, RunStatus.FINISHED, ms + 1000, name)
    store.engine.dispose()
    return run_id


def _rows_of(connection: sqlite3.Connection, table: str, run_id: str) -> tuple[list[str], list[tuple]]:
    cursor = connection.execute(f"SELECT * FROM {table} WHERE run_uuid = ?", (run_id,))
    return [d[0] for d in cursor.description], cursor.fetchall()


def _ml_table(store: Any, db: str, experiment_id: str, runs: int, chunk: int = 1000) -> dict[str, str]:
    """bench-table in MLflow: a template run, then copies of its rows for every other run."""
    from _common import progress

    first = table_row(0, runs)
    template = _ml_template(store, experiment_id, first["name"], first["metrics"], first["tags"], first["properties"])
    by_name = {first["name"]: template}
    with sqlite3.connect(db) as connection:
        shapes = {table: _rows_of(connection, table, template) for table in ("runs", "tags", "params", "metrics", "latest_metrics")}
        for start in range(1, runs, chunk):
            batch = {table: [] for table in shapes}
            for index in range(start, min(runs, start + chunk)):
                row = table_row(index, runs)
                run_id = uuid.uuid4().hex
                by_name[row["name"]] = run_id
                for table, (columns, rows) in shapes.items():
                    batch[table] += [_copy_row(columns, r, template, run_id, row, index) for r in rows]
            for table, rows in batch.items():
                columns = shapes[table][0]
                marks = ",".join("?" * len(columns))
                connection.executemany(f"INSERT INTO {table} ({','.join(columns)}) VALUES ({marks})", rows)
            connection.commit()
            progress(f"MLflow: {min(runs, start + chunk):,} of {runs:,} runs loaded")
    return wanted_ids(by_name, runs)


def _copy_row(columns: list[str], values: tuple, template: str, run_id: str, row: dict[str, Any], index: int) -> tuple:
    """A template row for another run: its id, name, times and its own metric/tag/param values."""
    record = dict(zip(columns, values))
    for column, value in record.items():
        if isinstance(value, str) and template in value:
            record[column] = value.replace(template, run_id)
    shift = index * 1000  # run i starts i seconds after the first, as in runhistory
    for column in ("start_time", "end_time", "timestamp"):
        if record.get(column) is not None:
            record[column] += shift
    if "name" in record and "lifecycle_stage" in record:  # the runs table
        record["name"] = row["name"]
    key = record.get("key")
    if key in row["metrics"] and "step" in record:
        record["value"] = row["metrics"][key]
    elif key == "mlflow.runName":
        record["value"] = row["name"]
    elif key in row["tags"] and "step" not in record:
        record["value"] = row["tags"][key]
    elif key in row["properties"]:
        record["value"] = row["properties"][key]
    return tuple(record[c] for c in columns)


def _ml_series(store: Any, db: str, experiment_id: str, run_names: list[str], metric_names: list[str], points: int, value) -> list[str]:
    """Runs with long series in MLflow: a template run per name (its first point by log_batch), then
    the other points inserted into ``metrics`` and ``latest_metrics`` set to the last one."""
    from _common import progress

    ids = []
    with sqlite3.connect(db) as connection:
        for r, name in enumerate(run_names):
            first = {metric: value(r, m, 0) for m, metric in enumerate(metric_names)}
            run_id = _ml_template(store, experiment_id, name, first, {}, {})
            for m, metric in enumerate(metric_names):
                for chunk in _chunks(range(1, points), 100_000):
                    rows = [(metric, value(r, m, s), int((BASE_TIME + s * 0.01) * 1000), run_id, s, 0) for s in chunk]
                    connection.executemany(
                        "INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) VALUES (?, ?, ?, ?, ?, ?)", rows
                    )
                last = points - 1
                connection.execute(
                    "UPDATE latest_metrics SET value = ?, timestamp = ?, step = ? WHERE run_uuid = ? AND key = ?",
                    (value(r, m, last), int((BASE_TIME + last * 0.01) * 1000), last, run_id, metric),
                )
                connection.commit()
            ids.append(run_id)
            progress(f"MLflow: {name} loaded ({len(metric_names)} x {points:,} points)")
    return ids


def _chunks(items: range, size: int) -> Iterator[range]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def dump(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=1) + "\n")
