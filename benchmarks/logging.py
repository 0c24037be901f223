"""Metric logging and reading: runhistory vs MLflow (on SQLite) vs raw sqlite3, side by side.

    .venv/bin/python benchmarks/logging.py                 # full run (1M points, MLflow included)
    .venv/bin/python benchmarks/logging.py --points 100000 --skip-mlflow   # quick

Each measurement runs in its own process, in a temporary folder:

1. runhistory: N x ``run.log("loss", value)`` then ``run.complete()`` (the final flush is
   durable when it returns). Per-call latency: batches of 1,000 calls timed with
   ``perf_counter_ns``, divided, median over batches.
2. raw ``sqlite3``: ``executemany`` of the same N ``(run_id, name, step, value, time)``
   rows into a fresh table, one transaction, WAL: the floor for a row-per-point design.
3. MLflow on SQLite, in its own virtual environment (``.bench/mlflow-venv``, created on
   first use): ``MlflowClient().log_metric`` for 10,000 points, ``log_batch`` of 1,000
   ``Metric`` objects per call for 100,000 points.
4. Reading, in a fresh process: ``run.get_metrics("loss")`` of runhistory's N points vs
   ``MlflowClient().get_metric_history`` of MLflow's 100,000.

Progress goes to stderr; the tables to stdout, as text and then as Markdown.
"""

from __future__ import annotations

import os
import sys

# Run as a script, this file's folder comes first on sys.path, and this file is named like
# the standard library's ``logging`` (which SQLAlchemy, alembic and MLflow import). Keep the
# folder importable for ``_common`` but behind the standard library.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
sys.path.append(_HERE)

import argparse  # noqa: E402
import math  # noqa: E402
import random  # noqa: E402
import sqlite3  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import _common as c  # noqa: E402

DEFAULT_POINTS = 1_000_000
MLFLOW_LOG_METRIC_POINTS = 10_000
MLFLOW_LOG_BATCH_POINTS = 100_000
MLFLOW_BATCH_SIZE = 1_000  # MLflow's own limit of metrics per log_batch call
LATENCY_BATCH = 1_000

# What the project committed to (for 1,000,000 points; time targets scale with --points).
TARGET_LOG_US = 1.0
TARGET_WRITE_S_PER_M = 1.5
TARGET_VS_LOG_BATCH = 100.0
TARGET_READ_S_PER_M = 0.3


def loss_values(n: int, seed: int = 0) -> list[float]:
    """A loss-like curve: one float per step, decaying, with noise (the same for every system)."""
    rng = random.Random(seed)
    return [2.0 * math.exp(-5.0 * i / max(n, 1)) + 0.05 * rng.random() for i in range(n)]


# --- workers (each runs in its own process; runhistory / mlflow are imported only here) -----


def rh_write(folder: str, points: int) -> dict:
    from runhistory import Experiment, Workspace

    values = loss_values(points)
    workspace = Workspace.create(folder)
    run = Experiment(workspace, "bench").start_logging()
    log = run.log
    name = "loss"

    c.progress(f"runhistory: {points:,} run.log calls")
    per_call_ns: list[float] = []
    clock = time.perf_counter_ns
    start = time.perf_counter()
    for first in range(0, points, LATENCY_BATCH):
        chunk = values[first : first + LATENCY_BATCH]
        t0 = clock()
        for value in chunk:
            log(name, value)
        per_call_ns.append((clock() - t0) / len(chunk))
    logged = time.perf_counter()
    c.progress("runhistory: run.complete()")
    run.complete()
    done = time.perf_counter()
    return {
        "run_id": run.id,
        "log_s": logged - start,
        "complete_s": done - logged,
        "total_s": done - start,
        "median_us": c.median(per_call_ns) / 1000,
        "p99_us": c.percentile(per_call_ns, 99) / 1000,
    }


def rh_read(folder: str, run_id: str, points: int) -> dict:
    from runhistory import Workspace

    workspace = Workspace(folder)
    run = workspace.get_run(run_id)  # opens the database (connection, schema check) before timing
    status = run.get_status()
    c.progress(f"runhistory: run.get_metrics('loss') in a fresh process (run is {status})")
    start = time.perf_counter()
    series = run.get_metrics("loss")["loss"]
    seconds = time.perf_counter() - start
    expected = loss_values(points)
    if status != "Completed" or len(series) != points or series[:: max(1, points // 997)] != expected[:: max(1, points // 997)]:
        raise SystemExit(f"runhistory read back {len(series)} points (status {status}); expected {points} as logged")
    return {"read_s": seconds, "points": len(series)}


def sqlite_executemany(folder: str, points: int) -> dict:
    values = loss_values(points)
    now = time.time()
    rows = [("bench-run", "loss", step, value, now + step * 1e-6) for step, value in enumerate(values)]
    connection = sqlite3.connect(Path(folder) / "raw.db", isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")  # what runhistory's SQLite store uses
    connection.execute("CREATE TABLE metrics (run_id TEXT, name TEXT, step INTEGER, value REAL, time REAL)")
    c.progress(f"sqlite3: executemany of {points:,} rows, one transaction")
    start = time.perf_counter()
    connection.execute("BEGIN")
    connection.executemany("INSERT INTO metrics VALUES (?, ?, ?, ?, ?)", rows)
    connection.execute("COMMIT")
    seconds = time.perf_counter() - start
    count = connection.execute("SELECT count(*) FROM metrics").fetchone()[0]
    connection.close()
    if count != points:
        raise SystemExit(f"sqlite3 stored {count} rows, expected {points}")
    return {"total_s": seconds}


def mlflow_write(folder: str, log_metric_points: int, log_batch_points: int) -> dict:
    import mlflow
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    c.quiet_mlflow()
    c.progress(f"MLflow {mlflow.__version__}: creating the SQLite tracking database")
    mlflow.set_tracking_uri(f"sqlite:///{Path(folder) / 'mlflow.db'}")
    c.quiet_mlflow()
    client = MlflowClient()
    experiment_id = client.create_experiment("bench")

    values = loss_values(log_metric_points)
    run_id = client.create_run(experiment_id).info.run_id
    c.progress(f"MLflow: {log_metric_points:,} log_metric calls")
    log_metric = client.log_metric
    start = time.perf_counter()
    for step, value in enumerate(values):
        log_metric(run_id, "loss", value, step=step)
    log_metric_s = time.perf_counter() - start
    client.set_terminated(run_id)

    values = loss_values(log_batch_points)
    batch_run_id = client.create_run(experiment_id).info.run_id
    c.progress(f"MLflow: log_batch of {log_batch_points:,} points, {MLFLOW_BATCH_SIZE:,} per call")
    start = time.perf_counter()
    for first in range(0, log_batch_points, MLFLOW_BATCH_SIZE):
        now_ms = int(time.time() * 1000)
        batch = [
            Metric("loss", value, now_ms, step)
            for step, value in enumerate(values[first : first + MLFLOW_BATCH_SIZE], start=first)
        ]
        client.log_batch(batch_run_id, metrics=batch)
    log_batch_s = time.perf_counter() - start
    client.set_terminated(batch_run_id)
    return {
        "version": mlflow.__version__,
        "log_metric_s": log_metric_s,
        "log_batch_s": log_batch_s,
        "log_batch_run_id": batch_run_id,
    }


def mlflow_read(folder: str, run_id: str, points: int) -> dict:
    import mlflow
    from mlflow import MlflowClient

    c.quiet_mlflow()
    mlflow.set_tracking_uri(f"sqlite:///{Path(folder) / 'mlflow.db'}")
    client = MlflowClient()
    status = client.get_run(run_id).info.status  # opens the database before timing
    c.progress("MLflow: get_metric_history in a fresh process")
    start = time.perf_counter()
    history = client.get_metric_history(run_id, "loss")
    seconds = time.perf_counter() - start
    if len(history) != points:
        raise SystemExit(f"MLflow read back {len(history)} points (run {status}); expected {points}")
    return {"read_s": seconds, "points": len(history)}


# --- orchestration and report --------------------------------------------------------------


def measure(points: int, skip_mlflow: bool) -> dict:
    script = Path(__file__).resolve()
    results: dict = {"points": points}
    with c.temp_dir("rh-bench-logging-") as tmp:
        rh_folder = tmp / "runhistory"
        (tmp / "raw").mkdir()
        c.progress("step 1/4: runhistory write")
        results["rh_write"] = c.run_worker(script, "rh_write", {"folder": str(rh_folder), "points": points}, cwd=tmp)
        c.progress("step 2/4: runhistory read")
        results["rh_read"] = c.run_worker(
            script,
            "rh_read",
            {"folder": str(rh_folder), "run_id": results["rh_write"]["run_id"], "points": points},
            cwd=tmp,
        )
        c.progress("step 3/4: raw sqlite3 executemany")
        results["sqlite"] = c.run_worker(
            script, "sqlite_executemany", {"folder": str(tmp / "raw"), "points": points}, cwd=tmp
        )
        if skip_mlflow:
            c.progress("step 4/4: MLflow skipped (--skip-mlflow)")
            return results
        c.progress("step 4/4: MLflow (own virtual environment)")
        python = c.mlflow_python()
        (tmp / "mlflow").mkdir()
        mlflow_folder = str(tmp / "mlflow")
        results["mlflow"] = c.run_worker(
            script,
            "mlflow_write",
            {
                "folder": mlflow_folder,
                "log_metric_points": MLFLOW_LOG_METRIC_POINTS,
                "log_batch_points": MLFLOW_LOG_BATCH_POINTS,
            },
            python=python,
            cwd=tmp / "mlflow",
        )
        results["mlflow_read"] = c.run_worker(
            script,
            "mlflow_read",
            {
                "folder": mlflow_folder,
                "run_id": results["mlflow"]["log_batch_run_id"],
                "points": MLFLOW_LOG_BATCH_POINTS,
            },
            python=python,
            cwd=tmp / "mlflow",
        )
    return results


def _yes(ok: bool | None) -> str:
    return "" if ok is None else ("yes" if ok else "NO")


def report(results: dict, command: str) -> tuple[list[c.Table], str]:
    n = results["points"]
    rh, rh_read = results["rh_write"], results["rh_read"]
    sq = results["sqlite"]
    ml, ml_read = results.get("mlflow"), results.get("mlflow_read")
    rate = lambda points, seconds: points / seconds  # noqa: E731

    rh_rate = rate(n, rh["total_s"])
    rh_read_rate = rate(n, rh_read["read_s"])
    sq_rate = rate(n, sq["total_s"])
    lm_rate = rate(MLFLOW_LOG_METRIC_POINTS, ml["log_metric_s"]) if ml else None
    lb_rate = rate(MLFLOW_LOG_BATCH_POINTS, ml["log_batch_s"]) if ml else None
    ml_read_rate = rate(MLFLOW_LOG_BATCH_POINTS, ml_read["read_s"]) if ml_read else None
    skipped = "skipped"

    results_table = c.Table(
        "Results",
        ["Measurement", "Points", "Seconds", "Points/s", "us/point", "runhistory is"],
    )
    results_table.add(
        "write: runhistory, run.log x N + run.complete() (durable)",
        c.fmt_int(n), c.fmt_seconds(rh["total_s"]), c.fmt_rate(rh_rate), c.fmt_us(1e6 / rh_rate), "",
    )
    results_table.add(
        "write: runhistory, run.log calls only (us: median per call)",
        c.fmt_int(n), c.fmt_seconds(rh["log_s"]), c.fmt_rate(rate(n, rh["log_s"])), c.fmt_us(rh["median_us"]), "",
    )
    results_table.add("write: runhistory, run.complete() only", "", c.fmt_seconds(rh["complete_s"]), "", "", "")
    results_table.add(
        "write: raw sqlite3 executemany, 1 transaction (WAL)",
        c.fmt_int(n), c.fmt_seconds(sq["total_s"]), c.fmt_rate(sq_rate), c.fmt_us(1e6 / sq_rate),
        c.fmt_ratio(rh_rate / sq_rate) + " faster",
    )
    for label, points, seconds, r in (
        (f"write: MLflow log_batch ({MLFLOW_BATCH_SIZE:,}/call)", MLFLOW_LOG_BATCH_POINTS, ml and ml["log_batch_s"], lb_rate),
        ("write: MLflow log_metric", MLFLOW_LOG_METRIC_POINTS, ml and ml["log_metric_s"], lm_rate),
    ):
        if ml:
            results_table.add(
                label, c.fmt_int(points), c.fmt_seconds(seconds), c.fmt_rate(r), c.fmt_us(1e6 / r),
                c.fmt_ratio(rh_rate / r) + " faster",
            )
        else:
            results_table.add(label, skipped, "", "", "", "")
    results_table.add(
        'read: runhistory run.get_metrics("loss")',
        c.fmt_int(n), c.fmt_seconds(rh_read["read_s"]), c.fmt_rate(rh_read_rate), c.fmt_us(1e6 / rh_read_rate), "",
    )
    if ml_read:
        results_table.add(
            "read: MLflow get_metric_history",
            c.fmt_int(MLFLOW_LOG_BATCH_POINTS), c.fmt_seconds(ml_read["read_s"]), c.fmt_rate(ml_read_rate),
            c.fmt_us(1e6 / ml_read_rate), c.fmt_ratio(rh_read_rate / ml_read_rate) + " faster",
        )
    else:
        results_table.add("read: MLflow get_metric_history", skipped, "", "", "", "")

    scale = n / 1_000_000
    write_limit = TARGET_WRITE_S_PER_M * scale
    read_limit = TARGET_READ_S_PER_M * scale
    scaled = "" if n == 1_000_000 else f" (scaled from 1M to {n:,})"
    targets = c.Table("Ratios and targets", ["Comparison", "Measured", "Target", "Met"])
    targets.add("run.log, median per call", f"{c.fmt_us(rh['median_us'])} us", f"<= {TARGET_LOG_US:g} us",
                _yes(rh["median_us"] <= TARGET_LOG_US))
    targets.add(f"{n:,} points written, durable", f"{c.fmt_seconds(rh['total_s'])} s",
                f"<= {write_limit:g} s{scaled}", _yes(rh["total_s"] <= write_limit))
    targets.add(f"read {n:,} points", f"{c.fmt_seconds(rh_read['read_s'])} s",
                f"<= {read_limit:g} s{scaled}", _yes(rh_read["read_s"] <= read_limit))
    targets.add("write points/s vs MLflow log_batch", c.fmt_ratio(rh_rate / lb_rate) if ml else skipped,
                f">= {TARGET_VS_LOG_BATCH:g}x", _yes(rh_rate / lb_rate >= TARGET_VS_LOG_BATCH) if ml else "")
    targets.add("write points/s vs MLflow log_metric", c.fmt_ratio(rh_rate / lm_rate) if ml else skipped, "", "")
    targets.add("write points/s vs raw sqlite3 executemany", c.fmt_ratio(rh_rate / sq_rate), "", "")
    targets.add("read points/s vs MLflow get_metric_history",
                c.fmt_ratio(rh_read_rate / ml_read_rate) if ml_read else skipped, "", "")

    about = (
        f"Machine: {c.machine_info()}; MLflow {ml['version'] if ml else '(skipped)'}; "
        f"run.log p99 over batches of {LATENCY_BATCH:,}: {c.fmt_us(rh['p99_us'])} us. "
        f"Command: `{command}`"
    )
    return [results_table, targets], about


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=DEFAULT_POINTS, help="points runhistory and sqlite3 write and read (default 1,000,000)")
    parser.add_argument("--skip-mlflow", action="store_true", help="leave MLflow out (no virtual environment, much quicker)")
    args = parser.parse_args()
    if args.points < 1:
        parser.error("--points must be at least 1")

    results = measure(args.points, args.skip_mlflow)
    tables, about = report(results, c.command_line(__file__))
    c.print_report(tables, [about])


if __name__ == "__main__":
    if not c.worker_main(globals()):
        main()
