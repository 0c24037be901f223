"""Long runs: series logged one step at a time, against the same points logged in one burst.

    .venv/bin/python benchmarks/long_runs.py            # full run: 1,000 metrics x 1,000 steps, 10M points in memory
    .venv/bin/python benchmarks/long_runs.py --quick    # 100 x 100, 1M points, a 5 s stall: a minute or two
    .venv/bin/python benchmarks/long_runs.py --only paced,live --metrics 100 --steps 100

Each part runs in its own worker processes and temporary folder; a part that fails prints its
error and the others still run. ``M`` metric names x ``S`` steps (``--metrics``, ``--steps``);
point ``s`` of metric ``i`` is ``i * 10**8 + s``, so every read checks each point is there once,
in order.

1. ``burst`` and ``paced`` on SQLite: burst is ``run.log`` of every name at every step, then
   ``run.complete()``; paced is ``run.log`` of every name, then ``run.flush()``, at every step
   (one flush per step, the real pattern), in the same process. For each: write seconds
   (log + flushes + complete), chunk rows after the run ends (``metric_chunks``, plus
   ``metric_frames`` where that table exists), database size (file + ``-wal``), then, each in a
   fresh process, ``run.get_metrics()`` and ``export_to_tensorboard``; for paced also the
   median cost of one ``run.flush()`` of M series x 1 point.
2. ``live``: the paced writer in one process while a second process calls ``run.get_metrics()``
   every 0.5 s; each read must see a prefix of every series (each point once, in order).
3. ``memory``: ``--memory-points`` points (M names, step by step, as fast as ``run.log`` goes)
   while another process holds the database in ``BEGIN EXCLUSIVE`` for ``--hold`` seconds: peak
   RSS of the logging process, bytes per buffered point (RSS growth over the first 2M points,
   and over all), and, in a fresh process, whether every point arrived once.
4. ``postgres`` and ``server``: the paced workload on a throw-away PostgreSQL (as the tests
   start one) and through ``runhistory server`` (on SQLite): write seconds, ``get_metrics()``.
5. ``mlflow``: MLflow on SQLite, 10 metrics x S steps with one ``log_batch`` per step, and
   runhistory's paced writer on the same 10 x S, for scale (``--skip-mlflow``).

Progress goes to stderr; the tables to stdout, as text and then as Markdown, with the targets
of issue 11 beside the figures. Time targets hold for 1,000 x 1,000 and are only judged there.
"""

from __future__ import annotations

import os
import sys

# This folder first on sys.path would let benchmarks/logging.py shadow the standard library's.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != os.path.dirname(os.path.abspath(__file__))]
sys.path.append(os.path.dirname(os.path.abspath(__file__)))

import argparse  # noqa: E402
import json  # noqa: E402
import sqlite3  # noqa: E402
import subprocess  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Callable  # noqa: E402

import _common as c  # noqa: E402

SCRIPT = Path(__file__).resolve()
PARTS = ("burst", "paced", "live", "memory", "postgres", "server", "mlflow")
STEP_STRIDE = 10**8  # point s of metric i is i * STEP_STRIDE + s: exact in a float64 for any size here
READ_INTERVAL_S = 0.5
MEMORY_PROBE_POINTS = 2_000_000  # bytes per point measured below any sensible cap, too
AUDIT_NAMES_PER_READ = 100
WORKER_TIMEOUT_S = 3600.0
MLFLOW_METRICS = 10
MB = 1 << 20

# Issue 11's targets.
TARGET_READ_RATIO = 1.5  # paced/burst, get_metrics() and export after the run ends
TARGET_LIVE_RATIO = 3.0  # a read while the run is still being written, against the burst read
TARGET_PACED_WRITE_S = 5.0  # 1,000 x 1,000 paced, in all
TARGET_FLUSH_MS = 3.0  # one flush of 1,000 series x 1 point, in the store
TARGET_SIZE_RATIO = 1.3  # database size, paced/burst
TARGET_BYTES_PER_POINT = 24.0
TARGET_RSS_OVER_CAP_MB = 200.0
FULL_METRICS, FULL_STEPS = 1_000, 1_000


def names_of(metrics: int) -> list[str]:
    """The metric names of a workload."""
    return [f"metric_{i:04d}" for i in range(metrics)]


def first_values(metrics: int) -> list[float]:
    """Point 0 of each metric; point s is this plus s."""
    return [float(i * STEP_STRIDE) for i in range(metrics)]


def audit(values_by_name: dict[str, Any], metrics: int, steps: int | None = None) -> dict:
    """Points read; series that are not points 0..n-1, each once, in order; with ``steps``, points lost and doubled."""
    import numpy as np  # this file also runs under the MLflow venv, whose workers never audit

    points = lost = doubled = not_prefix = 0
    for name, first in zip(names_of(metrics), first_values(metrics)):
        raw = values_by_name.get(name, [])
        got = np.asarray(raw if isinstance(raw, list) else [raw], dtype=np.float64) - first
        points += got.size
        not_prefix += not np.array_equal(got, np.arange(got.size))
        distinct = np.unique(got)
        doubled += got.size - distinct.size
        if steps is not None:
            lost += steps - int(np.count_nonzero(np.isin(distinct, np.arange(steps))))
    return {"points": points, "lost": lost, "doubled": doubled, "not_prefix": not_prefix}


# --- workers: each runs in its own process; runhistory / mlflow are imported only here -------------


def _open_run(tracking: str, artifacts: str | None, run_id: str):
    from runhistory import Workspace

    run = Workspace(tracking, artifacts).get_run(run_id)
    run.get_status()  # connects and checks the schema before anything is timed
    return run


def write_run(
    tracking: str, artifacts: str | None, metrics: int, steps: int, paced: bool, signal_dir: str | None = None
) -> dict:
    """Log ``metrics`` x ``steps`` points step by step, flushing after each step when ``paced``; then complete()."""
    from runhistory import Experiment, Workspace

    run = Experiment(Workspace(tracking, artifacts), "long-runs").start_logging()
    if signal_dir:  # a live reader: tell it the run, and start once it reads
        _signal(Path(signal_dir) / "run_id", run.id)
        _wait_for_signal(Path(signal_dir) / "reader_ready", Path(signal_dir) / "stop")
    pairs = list(zip(names_of(metrics), first_values(metrics)))
    log, flush, clock = run.log, run.flush, time.perf_counter
    flush_s: list[float] = []
    c.progress(f"{'paced' if paced else 'burst'} writer on {_where(tracking)}: {metrics:,} metrics x {steps:,} steps")
    start = clock()
    for step in range(steps):
        for name, first in pairs:
            log(name, first + step)
        if paced:
            flushing = clock()
            flush()
            flush_s.append(clock() - flushing)
    logged = clock()
    run.complete()
    done = clock()
    if signal_dir:
        _signal(Path(signal_dir) / "done", "")
    return {
        "run_id": run.id,
        "write_s": done - start,
        "log_s": logged - start - sum(flush_s),
        "flushes_s": sum(flush_s) if paced else None,
        "complete_s": done - logged,
        "flush_median_ms": c.median(flush_s) * 1000 if flush_s else None,
        "flush_p90_ms": c.percentile(flush_s, 90) * 1000 if flush_s else None,
        "flush_max_ms": max(flush_s) * 1000 if flush_s else None,
    }


def read_run(tracking: str, artifacts: str | None, run_id: str, metrics: int, steps: int) -> dict:
    """Seconds of ``run.get_metrics()`` in this fresh process, and an audit of what it returned."""
    run = _open_run(tracking, artifacts, run_id)
    c.progress(f"get_metrics() on {_where(tracking)}")
    start = time.perf_counter()
    values = run.get_metrics()
    seconds = time.perf_counter() - start
    return {"read_s": seconds, "read_audit": audit(values, metrics, steps)}


def export_run(tracking: str, artifacts: str | None, run_id: str, logdir: str) -> dict:
    """Seconds of ``export_to_tensorboard`` of the run in this fresh process."""
    from runhistory.tensorboard.export import export_to_tensorboard

    run = _open_run(tracking, artifacts, run_id)
    c.progress(f"export_to_tensorboard on {_where(tracking)}")
    start = time.perf_counter()
    export_to_tensorboard(run, logdir, workspace=run.workspace)
    return {"export_s": time.perf_counter() - start}


def live_reader(tracking: str, artifacts: str | None, signal_dir: str, metrics: int, steps: int, interval: float) -> dict:
    """``run.get_metrics()`` every ``interval`` seconds while the writer runs, then once after it is done."""
    signals = Path(signal_dir)
    run = _open_run(tracking, artifacts, _wait_for_signal(signals / "run_id", signals / "stop"))
    _signal(signals / "reader_ready", "")
    reads: list[dict] = []
    next_read = time.monotonic()
    while True:
        writer_done = (signals / "done").exists() or (signals / "stop").exists()
        start = time.perf_counter()
        values = run.get_metrics()
        seconds = time.perf_counter() - start
        reads.append({"s": seconds, "live": not writer_done, **audit(values, metrics, steps if writer_done else None)})
        if writer_done:
            break
        next_read += interval
        time.sleep(max(0.0, next_read - time.monotonic()))
    live = [read for read in reads if read["live"]]
    return {
        "live_reads": len(live),
        "live_median_s": c.median([read["s"] for read in live]) if live else None,
        "live_max_s": max(read["s"] for read in live) if live else None,
        "live_points_last": live[-1]["points"] if live else None,
        "live_bad_reads": sum(1 for read in reads if read["not_prefix"] or read["doubled"]),
        "final_read_s": reads[-1]["s"],
        "final_audit": {key: reads[-1][key] for key in ("points", "lost", "doubled", "not_prefix")},
    }


class RssSampler:
    """The highest RSS of this process in each phase, sampled every 10 ms (``ru_maxrss`` has only the overall peak)."""

    def __init__(self, phase: str) -> None:
        import psutil

        self.phase = phase
        self.peaks: dict[str, int] = {}
        self._process = psutil.Process()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            rss = self._process.memory_info().rss
            self.peaks[self.phase] = max(rss, self.peaks.get(self.phase, 0))

    def stop(self) -> dict[str, int]:
        self._stop.set()
        self._thread.join()
        return self.peaks


def memory_under_stall(tracking: str, artifacts: str, db: str, points: int, metrics: int, hold_s: float) -> dict:
    """Log ``points`` points while another process holds ``db`` locked; RSS before, after, at peak."""
    import resource

    import psutil

    from runhistory import Experiment, Workspace
    from runhistory.core import settings

    run = Experiment(Workspace(tracking, artifacts), "long-runs").start_logging()
    run.log("warm-up", 0.0)
    run.flush()
    metrics = min(metrics, points)
    steps = points // metrics
    probe_step = max(1, min(steps, MEMORY_PROBE_POINTS // metrics))
    pairs = list(zip(names_of(metrics), first_values(metrics)))
    me = psutil.Process()
    rss_before = me.memory_info().rss
    locker = _hold_database(db, hold_s)
    sampler = RssSampler("logging")
    c.progress(f"memory: {steps * metrics:,} run.log calls while another process holds the database for {hold_s:g} s")
    log, clock = run.log, time.perf_counter
    start = clock()
    rss_probe = rss_before
    for step in range(steps):
        for name, first in pairs:
            log(name, first + step)
        if step + 1 == probe_step:
            rss_probe = me.memory_info().rss
    log_s = clock() - start
    rss_logged = me.memory_info().rss
    locked_when_logged = locker.poll() is None
    c.progress("memory: run.complete() (waits for the lock to go)")
    sampler.phase = "complete"
    run.complete()
    complete_s = clock() - start - log_s
    peaks = sampler.stop()
    locker.wait()
    return {
        "run_id": run.id,
        "points": steps * metrics,
        "metrics": metrics,
        "steps": steps,
        "hold_s": hold_s,
        "log_s": log_s,
        "complete_s": complete_s,
        "locked_when_logged": locked_when_logged,
        "rss_before": rss_before,
        "rss_logged": rss_logged,
        "rss_peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "rss_peak_logging": peaks.get("logging"),
        "rss_peak_complete": peaks.get("complete"),
        "probe_points": probe_step * metrics,
        "bytes_per_point_probe": (rss_probe - rss_before) / (probe_step * metrics),
        "bytes_per_point_all": (rss_logged - rss_before) / (steps * metrics),
        "cap_mb": settings.BUFFER_LIMIT_MB.positive_number(),
    }


def hold_database(db: str, hold_s: float, ready_file: str) -> dict:
    """Hold the SQLite database ``db`` in ``BEGIN EXCLUSIVE`` for ``hold_s`` seconds (no writer gets in)."""
    connection = sqlite3.connect(db, isolation_level=None, timeout=60)
    connection.execute("BEGIN EXCLUSIVE")
    _signal(Path(ready_file), "")
    time.sleep(hold_s)
    connection.execute("ROLLBACK")
    connection.close()
    return {}


def audit_run(tracking: str, artifacts: str | None, run_id: str, metrics: int, steps: int) -> dict:
    """Every point of the run read back in this fresh process, a hundred series at a time."""
    from runhistory import Workspace

    store = Workspace(tracking, artifacts).store
    names = names_of(metrics)
    values: dict[str, Any] = {}
    c.progress(f"reading back {metrics * steps:,} points")
    for first in range(0, metrics, AUDIT_NAMES_PER_READ):
        for name, series in store.get_metrics(run_id, names[first : first + AUDIT_NAMES_PER_READ]).items():
            values[name] = list(series.values)
    return {"audit": audit(values, metrics, steps)}


def postgres_facts(uri: str) -> dict:
    """Chunk and frame rows and the database size of a PostgreSQL database."""
    import psycopg

    with psycopg.connect(uri) as connection:
        chunks = connection.execute("SELECT count(*) FROM metric_chunks").fetchone()[0]
        has_frames = connection.execute("SELECT to_regclass('metric_frames') IS NOT NULL").fetchone()[0]
        frames = connection.execute("SELECT count(*) FROM metric_frames").fetchone()[0] if has_frames else None
        size = connection.execute("SELECT pg_database_size(current_database())").fetchone()[0]
    return {"chunk_rows": chunks, "frame_rows": frames, "db_bytes": size}


def mlflow_paced(folder: str, metrics: int, steps: int) -> dict:
    """MLflow on SQLite: one ``log_batch`` of ``metrics`` points per step."""
    import mlflow
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    c.quiet_mlflow()
    mlflow.set_tracking_uri(f"sqlite:///{Path(folder) / 'mlflow.db'}")
    c.quiet_mlflow()
    client = MlflowClient()
    run_id = client.create_run(client.create_experiment("long-runs")).info.run_id
    pairs = list(zip(names_of(metrics), first_values(metrics)))
    c.progress(f"MLflow {mlflow.__version__}: {steps:,} log_batch calls of {metrics} metrics")
    start = time.perf_counter()
    for step in range(steps):
        now_ms = int(time.time() * 1000)
        client.log_batch(run_id, metrics=[Metric(name, first + step, now_ms, step) for name, first in pairs])
    client.set_terminated(run_id)
    return {"run_id": run_id, "write_s": time.perf_counter() - start, "version": mlflow.__version__}


def mlflow_read(folder: str, run_id: str, metrics: int, steps: int) -> dict:
    """MLflow: ``get_metric_history`` of every metric of the run, in this fresh process."""
    import mlflow
    from mlflow import MlflowClient

    c.quiet_mlflow()
    mlflow.set_tracking_uri(f"sqlite:///{Path(folder) / 'mlflow.db'}")
    client = MlflowClient()
    client.get_run(run_id)  # opens the database before timing
    start = time.perf_counter()
    points = sum(len(client.get_metric_history(run_id, name)) for name in names_of(metrics))
    seconds = time.perf_counter() - start
    if points != metrics * steps:
        raise RuntimeError(f"MLflow read back {points:,} points; {metrics * steps:,} were logged")
    return {"read_s": seconds}


def _hold_database(db: str, hold_s: float) -> subprocess.Popen:
    """Start a process running :func:`hold_database` and return once it holds the lock."""
    ready = Path(db).with_name("locked")
    command = [sys.executable, str(SCRIPT), c.WORKER_FLAG, "hold_database",
               json.dumps({"db": db, "hold_s": hold_s, "ready_file": str(ready)}), str(Path(db).with_name("locker.json"))]
    locker = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    _wait_for_signal(ready, timeout=60)
    return locker


def _signal(path: Path, text: str) -> None:
    """Write a small file another process waits for, all at once (write, then rename)."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text)
    os.replace(partial, path)


def _wait_for_signal(path: Path, give_up: Path | None = None, timeout: float = 300) -> str:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if (give_up is not None and give_up.exists()) or time.monotonic() > deadline:
            raise RuntimeError(f"{path.name} never appeared (the other process failed or took over {timeout:.0f} s)")
        time.sleep(0.01)
    return path.read_text()


def _where(tracking: str) -> str:
    return tracking.split("://", 1)[0] if "://" in tracking else "SQLite"


# --- the parts (each fills its own dict; an exception leaves what it had and an error) -------------------


class Bench:
    """Sizes, the temporary root and the worker environment of one benchmark run."""

    def __init__(self, root: Path, args: argparse.Namespace) -> None:
        self.root = root
        self.metrics, self.steps = args.metrics, args.steps
        self.memory_points, self.hold = args.memory_points, args.hold
        self.env = {"RUNHISTORY_CONFIG_DIR": str(root / "config")}  # spool and credentials stay in here

    def worker(self, name: str, **args: Any) -> dict:
        return c.run_worker(SCRIPT, name, args, env=self.env, timeout=WORKER_TIMEOUT_S)

    def folder(self, name: str) -> Path:
        path = self.root / name
        path.mkdir(parents=True, exist_ok=True)
        return path


def sqlite_facts(db: Path) -> dict:
    """Size (file + -wal) and chunk / frame rows of a SQLite database nobody writes now."""
    size = sum(path.stat().st_size for path in (db, db.with_name(db.name + "-wal")) if path.exists())
    connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        chunks = connection.execute("SELECT count(*) FROM metric_chunks").fetchone()[0]
        frames = None
        if "metric_frames" in tables:
            frames = connection.execute("SELECT count(*) FROM metric_frames").fetchone()[0]
    finally:
        connection.close()
    return {"chunk_rows": chunks, "frame_rows": frames, "db_bytes": size}


def part_sqlite(bench: Bench, out: dict, paced: bool) -> None:
    folder = bench.folder("paced" if paced else "burst")
    db = folder / "runhistory.db"
    tracking, artifacts = f"sqlite:///{db}", str(folder / "artifacts")
    sizes = {"metrics": bench.metrics, "steps": bench.steps}
    out.update(bench.worker("write_run", tracking=tracking, artifacts=artifacts, paced=paced, **sizes))
    out.update(sqlite_facts(db))
    run_id = out["run_id"]
    out.update(bench.worker("read_run", tracking=tracking, artifacts=artifacts, run_id=run_id, **sizes))
    out.update(bench.worker("export_run", tracking=tracking, artifacts=artifacts, run_id=run_id, logdir=str(folder / "tb")))


def part_live(bench: Bench, out: dict) -> None:
    folder = bench.folder("live")
    signals = bench.folder("live/signals")
    tracking, artifacts = f"sqlite:///{folder / 'runhistory.db'}", str(folder / "artifacts")
    sizes = {"metrics": bench.metrics, "steps": bench.steps}
    with ThreadPoolExecutor(2) as pool:
        writer = pool.submit(
            bench.worker, "write_run", tracking=tracking, artifacts=artifacts, paced=True, signal_dir=str(signals), **sizes
        )
        reader = pool.submit(
            bench.worker, "live_reader", tracking=tracking, artifacts=artifacts, signal_dir=str(signals),
            interval=READ_INTERVAL_S, **sizes,
        )
        finished, _ = wait([writer, reader], return_when=FIRST_EXCEPTION)
        if any(future.exception() for future in finished):
            _signal(signals / "stop", "")  # the other one stops waiting for it
        out["writer"] = writer.result()
        out["reader"] = reader.result()


def part_memory(bench: Bench, out: dict) -> None:
    folder = bench.folder("memory")
    db = folder / "runhistory.db"
    tracking, artifacts = f"sqlite:///{db}", str(folder / "artifacts")
    out.update(
        bench.worker(
            "memory_under_stall", tracking=tracking, artifacts=artifacts, db=str(db),
            points=bench.memory_points, metrics=bench.metrics, hold_s=bench.hold,
        )
    )
    out.update(
        bench.worker(
            "audit_run", tracking=tracking, artifacts=artifacts, run_id=out["run_id"],
            metrics=out["metrics"], steps=out["steps"],
        )
    )


def part_postgres(bench: Bench, out: dict) -> None:
    sizes = {"metrics": bench.metrics, "steps": bench.steps}
    artifacts = str(bench.folder("postgres/artifacts"))
    c.progress("starting a throw-away PostgreSQL")
    with c.postgres_server() as base:
        uri = c.fresh_postgres_database(base, f"rh_bench_long_runs_{os.getpid()}")
        out.update(bench.worker("write_run", tracking=uri, artifacts=artifacts, paced=True, **sizes))
        out.update(bench.worker("postgres_facts", uri=uri))
        out.update(bench.worker("read_run", tracking=uri, artifacts=artifacts, run_id=out["run_id"], **sizes))


def part_server(bench: Bench, out: dict) -> None:
    folder = bench.folder("server")
    db = folder / "runhistory.db"
    sizes = {"metrics": bench.metrics, "steps": bench.steps}
    c.progress("starting runhistory server")
    server, url = c.start_runhistory_server(db, folder / "artifacts", folder / "server.log")
    try:
        out.update(bench.worker("write_run", tracking=url, artifacts=None, paced=True, **sizes))
        out.update(bench.worker("read_run", tracking=url, artifacts=None, run_id=out["run_id"], **sizes))
    finally:
        c.stop_server(server)
    out.update(sqlite_facts(db))


def part_mlflow(bench: Bench, out: dict) -> None:
    sizes = {"metrics": MLFLOW_METRICS, "steps": bench.steps}
    folder = bench.folder("mlflow-scale")
    tracking, artifacts = f"sqlite:///{folder / 'runhistory.db'}", str(folder / "artifacts")
    out["rh"] = rh = bench.worker("write_run", tracking=tracking, artifacts=artifacts, paced=True, **sizes)
    rh.update(bench.worker("read_run", tracking=tracking, artifacts=artifacts, run_id=rh["run_id"], **sizes))
    python = c.mlflow_python()
    mlflow_folder = str(bench.folder("mlflow-scale/mlflow"))
    ml = c.run_worker(SCRIPT, "mlflow_paced", {"folder": mlflow_folder, **sizes}, python=python, timeout=WORKER_TIMEOUT_S)
    out["mlflow"] = ml
    read = {"folder": mlflow_folder, "run_id": ml["run_id"], **sizes}
    ml.update(c.run_worker(SCRIPT, "mlflow_read", read, python=python, timeout=WORKER_TIMEOUT_S))


def run_parts(bench: Bench, parts: list[str]) -> dict[str, dict]:
    """Every part asked for, one after another; a failed one keeps its error and what it measured."""
    steps: dict[str, Callable[[Bench, dict], None]] = {
        "burst": lambda b, out: part_sqlite(b, out, paced=False),
        "paced": lambda b, out: part_sqlite(b, out, paced=True),
        "live": part_live,
        "memory": part_memory,
        "postgres": part_postgres,
        "server": part_server,
        "mlflow": part_mlflow,
    }
    results: dict[str, dict] = {}
    for number, part in enumerate(parts, start=1):
        c.progress(f"part {number}/{len(parts)}: {part}")
        results[part] = out = {}
        try:
            steps[part](bench, out)
        except Exception as exc:  # noqa: BLE001 - one part failing must not stop the others
            out["error"] = f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:500]  # one line for the notes
            c.progress(f"part {part} FAILED:\n{traceback.format_exc()}")
    return results


# --- the report ----------------------------------------------------------------------------------


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def _met(value: float | None, limit: float | None, judged: bool = True) -> str:
    """"yes" / "NO" for ``value <= limit``; "" when either is unknown."""
    if value is None or limit is None:
        return ""
    if not judged:
        return "(full size only)"
    return "yes" if value <= limit else "NO"


def _mb(size: float | None) -> str:
    return "" if size is None else f"{size / MB:,.1f}"


def _ms(ms: float | None) -> str:
    return "" if ms is None else f"{ms:.2f}" if ms < 100 else f"{ms:,.0f}"


def _bytes(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def _rows(out: dict) -> str:
    """Chunk rows, and frame rows where the store has that table."""
    if out.get("chunk_rows") is None:
        return ""
    frames = out.get("frame_rows")
    return c.fmt_int(out["chunk_rows"]) + ("" if frames is None else f" + {c.fmt_int(frames)} frames")


def _lost_doubled(audit: dict | None) -> str:
    if not audit:
        return ""
    text = f"{audit['lost']:,} / {audit['doubled']:,}"
    return text + (f" ({audit['not_prefix']:,} series out of order)" if audit["not_prefix"] else "")


def _zero_lost(*audits: dict | None) -> str:
    """"yes" when every audit given found each point once, in order; "" when there is none."""
    found = [audit for audit in audits if audit]
    if not found:
        return ""
    return "yes" if all(audit["lost"] == audit["doubled"] == audit["not_prefix"] == 0 for audit in found) else "NO"


def table_burst_paced(results: dict, metrics: int, steps: int) -> c.Table:
    burst, paced = results.get("burst", {}), results.get("paced", {})
    table = c.Table(
        f"SQLite: {metrics:,} metrics x {steps:,} steps, burst vs one flush per step",
        ["Measurement", "burst", "paced", "paced/burst", "Target", "Met"],
        [False, True, True, True, False, False],
    )

    def row(label: str, key: str, fmt: Callable[[Any], str], target: str = "", limit: float | None = None) -> None:
        ratio = _ratio(paced.get(key), burst.get(key))
        table.add(label, fmt(burst.get(key)), fmt(paced.get(key)), c.fmt_ratio(ratio), target, _met(ratio, limit))

    full = metrics == FULL_METRICS and steps == FULL_STEPS
    table.add(
        "write s (log + flushes + complete)", c.fmt_seconds(burst.get("write_s")), c.fmt_seconds(paced.get("write_s")),
        c.fmt_ratio(_ratio(paced.get("write_s"), burst.get("write_s"))),
        f"paced <= {TARGET_PACED_WRITE_S:g} s at 1,000 x 1,000", _met(paced.get("write_s"), TARGET_PACED_WRITE_S, full),
    )
    row("  of which run.log calls, s", "log_s", c.fmt_seconds)
    row("  of which run.flush() per step, s", "flushes_s", c.fmt_seconds)
    row("  of which complete(), s", "complete_s", c.fmt_seconds)
    flush = [_ms(paced.get(key)) for key in ("flush_median_ms", "flush_p90_ms", "flush_max_ms")]
    table.add(
        f"one run.flush() of {metrics:,} series x 1 point, median ms (p90, max)", "",
        f"{flush[0]} ({flush[1]}, {flush[2]})" if flush[0] else "", "",
        f"<= {TARGET_FLUSH_MS:g} ms at 1,000 series",
        _met(paced.get("flush_median_ms"), TARGET_FLUSH_MS, metrics == FULL_METRICS),
    )
    table.add("chunk rows after the run ends", _rows(burst), _rows(paced),
              c.fmt_ratio(_ratio(paced.get("chunk_rows"), burst.get("chunk_rows"))), "", "")
    row("database size MB (file + -wal)", "db_bytes", _mb, f"<= {TARGET_SIZE_RATIO:g}x", TARGET_SIZE_RATIO)
    row("run.get_metrics() s, fresh process", "read_s", c.fmt_seconds, f"<= {TARGET_READ_RATIO:g}x", TARGET_READ_RATIO)
    row("export_to_tensorboard s, fresh process", "export_s", c.fmt_seconds, f"<= {TARGET_READ_RATIO:g}x", TARGET_READ_RATIO)
    table.add("points lost / doubled in the read", _lost_doubled(burst.get("read_audit")),
              _lost_doubled(paced.get("read_audit")), "", "0 / 0",
              _zero_lost(burst.get("read_audit"), paced.get("read_audit")))
    return table


def table_live(results: dict, metrics: int, steps: int) -> c.Table:
    live = results.get("live", {})
    writer, reader = live.get("writer", {}), live.get("reader", {})
    burst_read = results.get("burst", {}).get("read_s")
    table = c.Table(
        f"A live run: the paced writer ({metrics:,} x {steps:,}) and run.get_metrics() every "
        f"{READ_INTERVAL_S:g} s in another process",
        ["Measurement", "Value", "vs burst read", "Target", "Met"],
        [False, True, True, False, False],
    )
    table.add("paced write s, with the reader running", c.fmt_seconds(writer.get("write_s")), "", "", "")
    table.add("reads while the run was written", c.fmt_int(reader.get("live_reads")), "", "", "")
    median_ratio = _ratio(reader.get("live_median_s"), burst_read)
    table.add("read while written, median s", c.fmt_seconds(reader.get("live_median_s")), c.fmt_ratio(median_ratio),
              f"<= {TARGET_LIVE_RATIO:g}x", _met(median_ratio, TARGET_LIVE_RATIO))
    table.add("read while written, max s", c.fmt_seconds(reader.get("live_max_s")),
              c.fmt_ratio(_ratio(reader.get("live_max_s"), burst_read)), "", "")
    table.add("points in the last read while written", c.fmt_int(reader.get("live_points_last")), "", "", "")
    bad = reader.get("live_bad_reads")
    table.add("reads where a series is not a prefix (a point missing, doubled or out of order)",
              c.fmt_int(bad), "", "0", _met(bad, 0))
    final = reader.get("final_audit")
    table.add("read once the writer is done, s; points lost / doubled",
              f"{c.fmt_seconds(reader.get('final_read_s'))}; {_lost_doubled(final)}" if final else "", "", "0 / 0",
              _zero_lost(final))
    return table


def table_memory(results: dict) -> c.Table:
    memory = results.get("memory", {})
    title = "Memory: points logged while another process holds the database"
    if memory.get("points"):
        title += f" ({memory['points']:,} points, {memory['metrics']:,} series, held {memory['hold_s']:g} s)"
    table = c.Table(title, ["Measurement", "Value", "Target", "Met"], [False, True, False, False])
    held = "" if "locked_when_logged" not in memory else " (still held)" if memory["locked_when_logged"] else " (released)"
    table.add("run.log calls, s (the database at the end of them)", c.fmt_seconds(memory.get("log_s")) + held, "", "")
    table.add("complete() s (waits for the lock, then writes everything)", c.fmt_seconds(memory.get("complete_s")), "", "")
    table.add("RSS before logging, MB", _mb(memory.get("rss_before")), "", "")
    table.add("RSS once every point is logged, MB", _mb(memory.get("rss_logged")), "", "")
    table.add("  peak while logging / during complete(), MB (sampled every 10 ms)",
              f"{_mb(memory.get('rss_peak_logging'))} / {_mb(memory.get('rss_peak_complete'))}"
              if "rss_peak_logging" in memory else "", "", "")
    cap = memory.get("cap_mb")
    table.add("peak RSS, MB (ru_maxrss)", _mb(memory.get("rss_peak")),
              "" if cap is None else f"<= cap {cap:g} + {TARGET_RSS_OVER_CAP_MB:g} MB",
              _met(memory.get("rss_peak"), None if cap is None else (cap + TARGET_RSS_OVER_CAP_MB) * MB))
    table.add(f"bytes per buffered point (RSS growth over the first {c.fmt_int(memory.get('probe_points'))} points)",
              _bytes(memory.get("bytes_per_point_probe")), f"<= {TARGET_BYTES_PER_POINT:g}",
              _met(memory.get("bytes_per_point_probe"), TARGET_BYTES_PER_POINT))
    table.add("bytes per point (RSS growth over all points)", _bytes(memory.get("bytes_per_point_all")), "", "")
    audit = memory.get("audit")
    table.add("points read back; lost / doubled", f"{audit['points']:,}; {_lost_doubled(audit)}" if audit else "",
              "0 / 0", _zero_lost(audit))
    return table


def table_stores(results: dict, metrics: int, steps: int) -> c.Table:
    table = c.Table(
        f"The paced workload ({metrics:,} x {steps:,}, one flush per step) on each store",
        ["Store", "write s", "vs SQLite", "one flush, median ms", "get_metrics() s", "vs SQLite", "chunk rows",
         "database MB", "lost / doubled"],
    )
    sqlite = results.get("paced", {})
    stores = (("SQLite (embedded)", "paced"), ("PostgreSQL (throw-away, fsync off)", "postgres"),
              ("runhistory server on SQLite", "server"))
    for label, key in stores:
        if key not in results:
            continue
        out = results[key]
        versus = (lambda name: "") if key == "paced" else (lambda name: c.fmt_ratio(_ratio(out.get(name), sqlite.get(name))))
        table.add(
            label, c.fmt_seconds(out.get("write_s")), versus("write_s"), _ms(out.get("flush_median_ms")),
            c.fmt_seconds(out.get("read_s")), versus("read_s"), _rows(out), _mb(out.get("db_bytes")),
            _lost_doubled(out.get("read_audit")),
        )
    return table


def table_mlflow(results: dict, steps: int) -> c.Table:
    part = results.get("mlflow", {})
    rh, ml = part.get("rh", {}), part.get("mlflow", {})
    table = c.Table(
        f"For scale: {MLFLOW_METRICS} metrics x {steps:,} steps on SQLite, one run.flush() (runhistory) or "
        "log_batch (MLflow) per step",
        ["Measurement", "runhistory", f"MLflow {ml.get('version', '')}".strip(), "runhistory is"],
    )
    for label, key in (("write s", "write_s"), ("read every series s, fresh process", "read_s")):
        faster = _ratio(ml.get(key), rh.get(key))
        verdict = f"{c.fmt_ratio(faster)} faster" if faster else ""
        table.add(label, c.fmt_seconds(rh.get(key)), c.fmt_seconds(ml.get(key)), verdict)
    return table


def report(results: dict, args: argparse.Namespace) -> tuple[list[c.Table], list[str]]:
    """The tables of the parts that ran, and notes (failures, machine)."""
    tables = []
    if "burst" in results or "paced" in results:
        tables.append(table_burst_paced(results, args.metrics, args.steps))
    if "live" in results:
        tables.append(table_live(results, args.metrics, args.steps))
    if "memory" in results:
        tables.append(table_memory(results))
    if "postgres" in results or "server" in results:
        tables.append(table_stores(results, args.metrics, args.steps))
    if "mlflow" in results:
        tables.append(table_mlflow(results, args.steps))
    notes = [f"Part {part} failed: {out['error']}" for part, out in results.items() if "error" in out]
    notes.append(f"Machine: {c.machine_info()}.")
    return tables, notes


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: 100 x 100, 1M points held 5 s (flags given win)")
    parser.add_argument("--metrics", type=int, help="metric names (default 1,000; --quick 100)")
    parser.add_argument("--steps", type=int, help="steps (default 1,000; --quick 100)")
    parser.add_argument("--memory-points", type=int, help="points logged under the stall (default 10,000,000; --quick 1M)")
    parser.add_argument("--hold", type=float, help="seconds the memory part holds the database (default 20; --quick 5)")
    parser.add_argument("--only", help=f"comma-separated parts to run, of {','.join(PARTS)} (default all)")
    parser.add_argument("--skip-mlflow", action="store_true", help="leave the MLflow part out")
    parser.add_argument("--json", type=Path, help="also write every raw figure to this JSON file")
    args = parser.parse_args()
    defaults = (100, 100, 1_000_000, 5.0) if args.quick else (FULL_METRICS, FULL_STEPS, 10_000_000, 20.0)
    for name, default in zip(("metrics", "steps", "memory_points", "hold"), defaults):
        if getattr(args, name) is None:
            setattr(args, name, default)
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    if args.metrics * STEP_STRIDE >= 2**53 or max(args.steps, args.memory_points) >= STEP_STRIDE:
        parser.error(f"too large: --metrics must be below {2**53 // STEP_STRIDE:,}, the others below {STEP_STRIDE:,}")
    parts = PARTS if not args.only else [part.strip() for part in args.only.split(",") if part.strip()]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        parser.error(f"unknown part(s) {', '.join(unknown)}; the parts are {', '.join(PARTS)}")
    args.parts = [part for part in PARTS if part in parts and not (part == "mlflow" and args.skip_mlflow)]
    return args


def main() -> None:
    args = parse_args()
    with c.temp_dir("rh-bench-long-runs-") as root:
        results = run_parts(Bench(root, args), args.parts)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    tables, notes = report(results, args)
    c.print_report(tables, [*notes, f"Command: `{c.command_line(__file__)}`"])


if __name__ == "__main__":
    if not c.worker_main(globals()):
        main()
