"""TensorBoard: export speed, start-until-served, and follow latency, side by side in one run.

    .venv/bin/python benchmarks/tensorboard.py            # full run, a few minutes
    .venv/bin/python benchmarks/tensorboard.py --quick    # smaller sizes, seconds

1. Export of 10 tags x 100,000 steps of scalars: runhistory's ``export_to_tensorboard`` from
   the store (read + encode + write) and its ``EventFileWriter.add_scalars`` alone, against
   tensorboardX's ``add_scalar`` and tensorboard's own ``EventFileWriter`` with Summary protos
   (those two are timed on 10 x 10,000 points: they take minutes for a million; rates compare).
2. ``Tensorboard(runs).start()`` for 100 runs x 10 tags x 1,000 points in the store, until
   TensorBoard's API serves every point; and TensorBoard alone (Rust loader) over the same
   data already exported, until the same is served.
3. Follow latency: a new step appended to a running run's ``logs/`` event file until that
   step is visible through TensorBoard's API (20 samples: p50, p95).
"""

from __future__ import annotations

import os
import sys

sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != os.path.dirname(os.path.abspath(__file__))]
sys.path.append(os.path.dirname(os.path.abspath(__file__)))

import argparse  # noqa: E402
import time  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402
from pathlib import Path  # noqa: E402

import _common as c  # noqa: E402
import httpx  # noqa: E402
import numpy as np  # noqa: E402

from runhistory import Experiment, Workspace  # noqa: E402
from runhistory.tensorboard import Tensorboard  # noqa: E402
from runhistory.tensorboard.events import EventFileWriter  # noqa: E402
from runhistory.tensorboard.export import export_to_tensorboard  # noqa: E402
from runhistory.tensorboard.launcher import TensorboardServer  # noqa: E402


def log_runs(ws: Workspace, runs: int, tags: int, points: int) -> list:
    """``runs`` completed runs of ``tags`` series of ``points`` points each."""
    exp = Experiment(ws, f"bench-{runs}x{tags}x{points}")
    logged = []
    values = np.random.default_rng(0).random(points).tolist()
    for _ in range(runs):
        run = exp.start_logging()
        for tag in range(tags):
            for value in values:
                run.log(f"metric_{tag}", value)
        run.complete()
        logged.append(run)
    return logged


def bench_export(root: Path, tags: int, points: int, slow_points: int) -> dict:
    """Points/s of runhistory's export and writer against tensorboardX and tensorboard."""
    ws = Workspace.create(root / "ws-export")
    (run,) = log_runs(ws, 1, tags, points)
    total = tags * points
    c.progress(f"export_to_tensorboard: {total:,} points")
    with c.Stopwatch() as export:
        export_to_tensorboard(run, root / "export")
    steps, walls = np.arange(points), time.time() + np.arange(points) * 0.01
    values = np.random.default_rng(1).random(points)
    c.progress(f"EventFileWriter.add_scalars: {total:,} points")
    with c.Stopwatch() as writer_only, EventFileWriter(root / "writer") as writer:
        for tag in range(tags):
            writer.add_scalars(f"metric_{tag}", steps, values, walls)
    slow_total = tags * slow_points
    c.progress(f"tensorboardX add_scalar: {slow_total:,} points")
    from tensorboardX import SummaryWriter

    with c.Stopwatch() as tbx:
        with SummaryWriter(str(root / "tbx")) as summary_writer:
            for tag in range(tags):
                for step in range(slow_points):
                    summary_writer.add_scalar(f"metric_{tag}", float(values[step]), step, walltime=float(walls[step]))
    c.progress(f"tensorboard EventFileWriter: {slow_total:,} points")
    with c.Stopwatch() as tb_own:
        _tensorboard_own_writer(root / "tb", tags, slow_points, values, walls)
    return {
        "export": total / export.seconds,
        "writer": total / writer_only.seconds,
        "tensorboardx": slow_total / tbx.seconds,
        "tensorboard": slow_total / tb_own.seconds,
        "export_s": export.seconds,
        "total": total,
        "slow_total": slow_total,
    }


def _tensorboard_own_writer(logdir: Path, tags: int, points: int, values: np.ndarray, walls: np.ndarray) -> None:
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter as TbWriter

    writer = TbWriter(str(logdir))
    for tag in range(tags):
        for step in range(points):
            summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=f"metric_{tag}", simple_value=float(values[step]))])
            writer.add_event(event_pb2.Event(wall_time=float(walls[step]), step=step, summary=summary))
    writer.close()


def served_completely(url: str, runs: list[str], tags: int, points: int) -> bool:
    """Whether TensorBoard serves every tag of every run with all its points."""
    with httpx.Client(base_url=url, timeout=30) as client:
        tag_map = client.get("data/plugin/scalars/tags").json()
        if any(len(tag_map.get(run, {})) < tags for run in runs):
            return False

        def complete(run: str) -> bool:
            series = client.get("data/plugin/scalars/scalars", params={"run": run, "tag": f"metric_{tags - 1}"}).json()
            return len(series) == points

        with ThreadPoolExecutor(8) as pool:
            return all(pool.map(complete, runs))


def wait_served(url: str, runs: list[str], tags: int, points: int, timeout: float = 300) -> float:
    """Seconds until :func:`served_completely` (polled every 0.1 s)."""
    started = time.perf_counter()
    while not served_completely(url, runs, tags, points):
        if time.perf_counter() - started > timeout:
            raise TimeoutError("TensorBoard did not serve everything in time")
        time.sleep(0.1)
    return time.perf_counter() - started


def bench_start(root: Path, runs: int, tags: int, points: int) -> dict:
    """start() until everything is served, ours (from the store) and TensorBoard's alone."""
    ws = Workspace.create(root / "ws-start")
    c.progress(f"logging {runs} runs x {tags} tags x {points} points")
    logged = log_runs(ws, runs, tags, points)
    names = [f"bench-{runs}x{tags}x{points}-{run.number}" for run in logged]
    c.progress("Tensorboard(runs).start() until all served")
    started = time.perf_counter()
    with Tensorboard(logged, local_root=root / "ours", port=0) as board:
        start_returned = time.perf_counter() - started
        served = start_returned + wait_served(board.url, names, tags, points)
    c.progress("TensorBoard alone over the same folder until all served")
    started = time.perf_counter()
    with TensorboardServer(root / "ours", port=0, load_fast=True) as server:
        alone = time.perf_counter() - started + wait_served(server.url, names, tags, points)
    return {"start_returned": start_returned, "served": served, "alone": alone}


def bench_follow(root: Path, samples: int) -> dict:
    """Seconds from a step appended to a running run's logs/ to it being served."""
    ws = Workspace.create(root / "ws-follow")
    run = Experiment(ws, "follow").start_logging(display_name="live")
    local = root / "job-logs"
    writer = EventFileWriter(local)
    name = "logs/" + writer.path.name
    sent = 0

    def push(step: int) -> None:
        nonlocal sent
        writer.add_scalar("loss", 1.0 / (step + 1), step)
        writer.flush()
        data = writer.path.read_bytes()
        ws.artifacts.append(run.id, name, data[sent:], offset=sent)
        sent = len(data)

    push(0)
    latencies = []
    with Tensorboard([run], port=0) as board, httpx.Client(base_url=board.url, timeout=10) as client:
        for step in range(1, samples + 1):
            time.sleep(0.3)
            pushed = time.perf_counter()
            push(step)
            while True:
                reply = client.get("data/plugin/scalars/scalars", params={"run": "live-1", "tag": "loss"})
                if reply.status_code == 200 and reply.json() and reply.json()[-1][1] == step:
                    break
                time.sleep(0.02)
            latencies.append(time.perf_counter() - pushed)
            c.progress(f"follow sample {step}/{samples}: {latencies[-1]:.2f} s")
    run.complete()
    writer.close()
    return {"p50": c.percentile(latencies, 50), "p95": c.percentile(latencies, 95), "samples": samples}


def report(export: dict, start: dict, follow: dict, sizes: argparse.Namespace) -> None:
    """Print the tables, as text and as Markdown."""
    table = c.Table("TensorBoard", ["Measurement", "Figure", "runhistory is"])
    table.add(f"export_to_tensorboard, {export['total']:,} points (store read + write)", c.fmt_rate(export["export"]) + "/s", "")
    table.add("EventFileWriter.add_scalars alone", c.fmt_rate(export["writer"]) + "/s", "")
    table.add(f"tensorboardX add_scalar ({export['slow_total']:,} points)", c.fmt_rate(export["tensorboardx"]) + "/s",
              c.fmt_ratio(export["export"] / export["tensorboardx"]) + " faster")
    table.add(f"tensorboard EventFileWriter ({export['slow_total']:,} points)", c.fmt_rate(export["tensorboard"]) + "/s",
              c.fmt_ratio(export["export"] / export["tensorboard"]) + " faster")
    size = f"{sizes.runs} runs x {sizes.tags} tags x {sizes.points} points"
    table.add(f"Tensorboard(runs).start() returns ({size})", c.fmt_seconds(start["start_returned"]) + " s", "")
    table.add("Tensorboard(runs).start() until all served", c.fmt_seconds(start["served"]) + " s", "")
    table.add("TensorBoard alone (Rust loader) over the exported folder", c.fmt_seconds(start["alone"]) + " s", "")
    table.add(f"follow latency p50 ({follow['samples']} samples)", c.fmt_seconds(follow["p50"]) + " s", "")
    table.add("follow latency p95", c.fmt_seconds(follow["p95"]) + " s", "")
    c.print_table(table)


def main() -> None:
    """Run the three benchmarks and print their figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller sizes for a check in seconds")
    args = parser.parse_args()
    sizes = argparse.Namespace(
        tags=10, points=10_000 if args.quick else 100_000, slow_points=1_000 if args.quick else 10_000,
        runs=10 if args.quick else 100, run_points=1_000, samples=5 if args.quick else 20,
    )
    with c.temp_dir() as root:
        export = bench_export(root, sizes.tags, sizes.points, sizes.slow_points)
        start = bench_start(root, sizes.runs, sizes.tags, sizes.run_points)
        follow = bench_follow(root, sizes.samples)
    report(export, start, {**follow}, argparse.Namespace(runs=sizes.runs, tags=sizes.tags, points=sizes.run_points))


if __name__ == "__main__":
    main()
