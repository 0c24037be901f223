"""Scalar points per second: runhistory's EventFileWriter against tensorboardX's add_scalar.

Run from the project folder: python -m benchmarks.tb_events_speed (running the file directly
puts benchmarks/ first on sys.path, where benchmarks/logging.py shadows the standard logging).
"""

from __future__ import annotations

import tempfile
import time

import numpy as np

from runhistory.tensorboard.events import EventFileWriter, encode_scalar_events

TAGS, POINTS = 10, 100_000


def runhistory_writer(logdir: str) -> float:
    """Seconds to encode and write TAGS x POINTS scalar points (file closed)."""
    steps = np.arange(POINTS)
    walls = time.time() + steps * 0.01
    values = [np.random.default_rng(i).random(POINTS) for i in range(TAGS)]
    started = time.perf_counter()
    with EventFileWriter(logdir) as writer:
        for i in range(TAGS):
            writer.add_scalars(f"metric_{i}", steps, values[i], walls)
    return time.perf_counter() - started


def encode_only() -> float:
    """Seconds to encode TAGS x POINTS scalar points in memory."""
    steps = np.arange(POINTS)
    walls = time.time() + steps * 0.01
    values = np.random.default_rng(0).random(POINTS)
    started = time.perf_counter()
    for i in range(TAGS):
        encode_scalar_events(f"metric_{i}", steps, values, walls)
    return time.perf_counter() - started


def runhistory_one_by_one(logdir: str, points: int) -> float:
    """Seconds for ``points`` add_scalar calls."""
    started = time.perf_counter()
    with EventFileWriter(logdir) as writer:
        for step in range(points):
            writer.add_scalar("metric", step * 0.5, step)
    return time.perf_counter() - started


def tensorboardx(logdir: str, points: int) -> float:
    """Seconds for ``points`` tensorboardX add_scalar calls (file closed)."""
    from tensorboardX import SummaryWriter

    started = time.perf_counter()
    writer = SummaryWriter(logdir, max_queue=10_000, flush_secs=3600)
    for step in range(points):
        writer.add_scalar("metric", step * 0.5, step)
    writer.close()
    return time.perf_counter() - started


def main() -> None:
    """Print points/s for each writer."""
    total = TAGS * POINTS
    with tempfile.TemporaryDirectory() as tmp:
        encode_only()
        print(f"encode_scalar_events      {total / encode_only():>12,.0f} points/s ({total:,} points)")
        print(f"EventFileWriter.add_scalars {total / runhistory_writer(tmp + '/a'):>10,.0f} points/s ({total:,} points)")
        n = 100_000
        print(f"EventFileWriter.add_scalar  {n / runhistory_one_by_one(tmp + '/b', n):>10,.0f} points/s ({n:,} calls)")
        print(f"tensorboardX add_scalar     {n / tensorboardx(tmp + '/c', n):>10,.0f} points/s ({n:,} calls)")


if __name__ == "__main__":
    main()
