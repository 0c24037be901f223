"""The team server: runhistory server against an MLflow tracking server, side by side in one run.

    .venv/bin/python benchmarks/server.py            # full run, a few minutes (MLflow venv reused)
    .venv/bin/python benchmarks/server.py --quick    # smaller sizes

Both servers run on this machine on SQLite files, each as its own process:
``runhistory server --workspace sqlite:///...`` and ``mlflow server --backend-store-uri sqlite:///...``
(MLflow from ``.bench/mlflow-venv``, created on first use). Measured:

1. One client: runhistory via ``run.log`` x N then ``complete()`` (every point on the server);
   MLflow via ``log_batch`` of 1,000 metrics per call.
2. 20 concurrent client processes, each sending batches of 1,000 points (runhistory: the
   store client's ``append_metrics``, what the background flusher calls; MLflow:
   ``log_batch``): total points/s and p99 batch latency.
3. Reading a series over HTTP: runhistory ``get_metrics`` of the 1M-point series, MLflow
   ``get_metric_history`` of its 100,000 points.
"""

from __future__ import annotations

import os
import sys

sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != os.path.dirname(os.path.abspath(__file__))]
sys.path.append(os.path.dirname(os.path.abspath(__file__)))

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402
from pathlib import Path  # noqa: E402

import _common as c  # noqa: E402

SCRIPT = Path(__file__).resolve()
BATCH = 1_000
CLIENTS = 20


# --- workers: each runs in its own process -----------------------------------------------------


def rh_one_client(url: str, points: int) -> dict:
    """run.log x points then complete(); returns seconds and the run id."""
    from runhistory import Experiment, Workspace

    run = Experiment(Workspace(url), "bench").start_logging()
    values = [i * 0.001 for i in range(points)]
    log = run.log
    started = time.perf_counter()
    for value in values:
        log("loss", value)
    run.complete()
    return {"seconds": time.perf_counter() - started, "run_id": run.id}


def rh_batches(url: str, batches: int, start_at: float) -> dict:
    """``batches`` appends of BATCH points through the store client; per-batch latencies."""
    from runhistory import Experiment, Workspace
    from runhistory.store.base import MetricBatch

    ws = Workspace(url)
    run = Experiment(ws, "bench-concurrent").start_logging()
    values = [float(i) for i in range(BATCH)]
    steps = [None] * BATCH
    _sleep_until(start_at)
    latencies = []
    for _ in range(batches):
        times = [time.time()] * BATCH
        started = time.perf_counter()
        ws.store.append_metrics([MetricBatch(run.id, "loss", "scalar", values, steps, times)])
        latencies.append(time.perf_counter() - started)
    return {"latencies": latencies, "end": time.time()}


def rh_read(url: str, run_id: str) -> dict:
    """Seconds to read the whole series back over HTTP."""
    from runhistory import Workspace

    ws = Workspace(url)
    started = time.perf_counter()
    series = ws.store.get_metrics(run_id, ["loss"])["loss"]
    return {"seconds": time.perf_counter() - started, "points": len(series.values)}


def mlflow_one_client(url: str, points: int) -> dict:
    """log_batch of BATCH metrics per call; returns seconds and the run id."""
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    client = MlflowClient(url)
    run_id = client.create_run(client.create_experiment(f"bench-{time.time_ns()}")).info.run_id
    now = int(time.time() * 1000)
    started = time.perf_counter()
    for first in range(0, points, BATCH):
        metrics = [Metric("loss", i * 0.001, now, i) for i in range(first, min(points, first + BATCH))]
        client.log_batch(run_id, metrics=metrics)
    return {"seconds": time.perf_counter() - started, "run_id": run_id}


def mlflow_batches(url: str, batches: int, start_at: float) -> dict:
    """``batches`` log_batch calls of BATCH metrics; per-batch latencies."""
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    client = MlflowClient(url)
    experiment = client.get_experiment_by_name("bench-concurrent")
    experiment_id = experiment.experiment_id if experiment else _create_experiment(client, "bench-concurrent")
    run_id = client.create_run(experiment_id).info.run_id
    _sleep_until(start_at)
    latencies = []
    for batch in range(batches):
        now = int(time.time() * 1000)
        metrics = [Metric("loss", float(i), now, batch * BATCH + i) for i in range(BATCH)]
        started = time.perf_counter()
        client.log_batch(run_id, metrics=metrics)
        latencies.append(time.perf_counter() - started)
    return {"latencies": latencies, "end": time.time()}


def _create_experiment(client, name: str) -> str:
    try:
        return client.create_experiment(name)
    except Exception:  # noqa: BLE001 - another client created it first
        return client.get_experiment_by_name(name).experiment_id


def mlflow_read(url: str, run_id: str) -> dict:
    """Seconds for get_metric_history of the run's series."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(url)
    started = time.perf_counter()
    history = client.get_metric_history(run_id, "loss")
    return {"seconds": time.perf_counter() - started, "points": len(history)}


def _sleep_until(moment: float) -> None:
    time.sleep(max(0.0, moment - time.time()))


# --- the benchmark -------------------------------------------------------------------------------


def concurrent(worker: str, url: str, batches: int, python: str | None) -> dict:
    """CLIENTS processes at once; total points/s (from a common start) and p99 latency."""
    start_at = time.time() + 8.0  # every process has imported and connected by then
    with ThreadPoolExecutor(CLIENTS) as pool:
        results = list(
            pool.map(
                lambda _: c.run_worker(SCRIPT, worker, {"url": url, "batches": batches, "start_at": start_at}, python=python),
                range(CLIENTS),
            )
        )
    latencies = [latency for result in results for latency in result["latencies"]]
    elapsed = max(result["end"] for result in results) - start_at
    return {"rate": CLIENTS * batches * BATCH / elapsed, "p99": c.percentile(latencies, 99), "points": CLIENTS * batches * BATCH}


def measure(root: Path, sizes: argparse.Namespace) -> dict:
    """Run both servers and every measurement."""
    python = str(c.mlflow_python())
    mlflow_port = c.free_port()
    mlflow_url = f"http://127.0.0.1:{mlflow_port}"
    c.progress("starting runhistory server and mlflow server")
    rh_server, rh_url = c.start_runhistory_server(root / "rh.db", root / "rh-artifacts", root / "rh-server.log")
    mlflow_server = c.start_server(
        [python, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
         "--default-artifact-root", str(root / "mlflow-artifacts"), "--host", "127.0.0.1", "--port", str(mlflow_port)],
        f"{mlflow_url}/health", root / "mlflow-server.log",
    )
    try:
        results = {}
        c.progress(f"runhistory: one client, {sizes.points:,} x run.log + complete()")
        results["rh_one"] = c.run_worker(SCRIPT, "rh_one_client", {"url": rh_url, "points": sizes.points})
        c.progress(f"mlflow: one client, log_batch of {sizes.mlflow_points:,} points")
        results["mlflow_one"] = c.run_worker(SCRIPT, "mlflow_one_client", {"url": mlflow_url, "points": sizes.mlflow_points}, python=python)
        c.progress(f"runhistory: {CLIENTS} concurrent clients")
        results["rh_many"] = concurrent("rh_batches", rh_url, sizes.batches, None)
        c.progress(f"mlflow: {CLIENTS} concurrent clients")
        results["mlflow_many"] = concurrent("mlflow_batches", mlflow_url, sizes.mlflow_batches, python)
        c.progress("reads over HTTP")
        results["rh_read"] = c.run_worker(SCRIPT, "rh_read", {"url": rh_url, "run_id": results["rh_one"]["run_id"]})
        results["mlflow_read"] = c.run_worker(
            SCRIPT, "mlflow_read", {"url": mlflow_url, "run_id": results["mlflow_one"]["run_id"]}, python=python
        )
        return results
    finally:
        c.stop_server(rh_server)
        c.stop_server(mlflow_server)


def report(results: dict, sizes: argparse.Namespace) -> None:
    """Print the table as text and as Markdown."""
    rh_one = sizes.points / results["rh_one"]["seconds"]
    mlflow_one = sizes.mlflow_points / results["mlflow_one"]["seconds"]
    rh_read = results["rh_read"]["points"] / results["rh_read"]["seconds"]
    mlflow_read = results["mlflow_read"]["points"] / results["mlflow_read"]["seconds"]
    table = c.Table("runhistory server vs MLflow server (both on SQLite, one machine)", ["Measurement", "runhistory", "MLflow", "ratio"])
    table.add(
        f"one client, points/s (rh: {sizes.points:,} run.log + complete; MLflow: {sizes.mlflow_points:,} via log_batch)",
        c.fmt_rate(rh_one), c.fmt_rate(mlflow_one), c.fmt_ratio(rh_one / mlflow_one),
    )
    many_rh, many_mlflow = results["rh_many"], results["mlflow_many"]
    table.add(
        f"{CLIENTS} concurrent clients, total points/s (batches of {BATCH:,})",
        c.fmt_rate(many_rh["rate"]), c.fmt_rate(many_mlflow["rate"]), c.fmt_ratio(many_rh["rate"] / many_mlflow["rate"]),
    )
    table.add(
        f"{CLIENTS} concurrent clients, p99 batch latency (s)",
        c.fmt_seconds(many_rh["p99"]), c.fmt_seconds(many_mlflow["p99"]), c.fmt_ratio(many_mlflow["p99"] / many_rh["p99"]),
    )
    table.add(
        f"read a series over HTTP (rh: {results['rh_read']['points']:,} points; MLflow: {results['mlflow_read']['points']:,})",
        c.fmt_seconds(results["rh_read"]["seconds"]) + " s", c.fmt_seconds(results["mlflow_read"]["seconds"]) + " s",
        c.fmt_ratio(rh_read / mlflow_read) + " (per point)",
    )
    c.print_table(table)
    print(json.dumps({key: {k: v for k, v in value.items() if k != "latencies"} for key, value in results.items()}))


def main() -> None:
    """Run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller sizes")
    args = parser.parse_args()
    sizes = argparse.Namespace(
        points=100_000 if args.quick else 1_000_000,
        mlflow_points=10_000 if args.quick else 100_000,
        batches=5 if args.quick else 50,
        mlflow_batches=2 if args.quick else 5,
    )
    with c.temp_dir() as root:
        report(measure(root, sizes), sizes)


if __name__ == "__main__":
    if not c.worker_main(globals()):
        main()
