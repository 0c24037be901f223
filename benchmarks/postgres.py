"""Metric writes on PostgreSQL vs SQLite: the same SqlRunStore, the same ``run.log`` + ``complete()``.

    .venv/bin/python benchmarks/postgres.py [--points 1000000] [--repeat 3]

PostgreSQL: ``$RUNHISTORY_BENCH_POSTGRES_URI`` (a database the user may create databases
beside), else a throw-away local server started with ``scripts/postgres.sh`` (as the tests
do; it runs with fsync off, so the PostgreSQL numbers leave out disk flushes). Each measurement
runs in a fresh process on a fresh database / folder:

1. one series: N x ``run.log("loss", value)`` then ``run.complete()`` (durable when it returns);
2. many series: 200 steps x 1,000 names (200k points), then ``run.complete()``;
3. reading the N-point series back with ``run.get_metrics("loss")``.

Prints the median of ``--repeat`` runs, in points per second, as a Markdown table.
"""

from __future__ import annotations

import os
import sys

# Run as a script, this folder comes first on sys.path, and benchmarks/logging.py would shadow
# the standard library's ``logging`` (which psycopg imports): keep the folder out of the way.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
sys.path.append(_HERE)

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

import _common as c  # noqa: E402

REPO_ROOT = c.REPO_ROOT

WORKER = r"""
import json, sys, time
from runhistory import Experiment, Workspace
tracking, artifacts, kind, points = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
ws = Workspace(tracking, artifacts)
run = Experiment(ws, "bench").start_logging()
start = time.perf_counter()
if kind == "one":
    for i in range(points):
        run.log("loss", i * 0.5)
else:
    points = 200 * 1000
    for step in range(200):
        for name in range(1000):
            run.log(f"m{name}", step)
logged = time.perf_counter()
run.complete()
done = time.perf_counter()
result = {"log_s": logged - start, "complete_s": done - logged, "points": points}
if kind == "one":
    start = time.perf_counter()
    assert len(run.get_metrics("loss")["loss"]) == points
    result["read_s"] = time.perf_counter() - start
print(json.dumps(result))
"""


def measure(tracking: str, artifacts: str, kind: str, points: int) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", WORKER, tracking, artifacts, kind, str(points)],
        check=True, capture_output=True, text=True, cwd=REPO_ROOT,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    counter = iter(range(1_000_000))
    rows = []
    with c.postgres_server() as base, tempfile.TemporaryDirectory() as tmp:
        for kind in ("one", "many"):
            for backend in ("sqlite", "postgresql"):
                results = []
                for i in range(args.repeat):
                    where = Path(tmp) / f"{kind}-{backend}-{i}"
                    if backend == "sqlite":
                        tracking = str(where)
                    else:
                        tracking = c.fresh_postgres_database(base, f"rh_bench_{os.getpid()}_{next(counter)}")
                    results.append(measure(tracking, str(where / "artifacts"), kind, args.points))
                    print(f"{kind} {backend} {i}: {results[-1]}", file=sys.stderr)
                rows.append((kind, backend, results))

    print("| workload | store | run.log s | complete() s | points/s (log + complete) | read s |")
    print("|---|---|---|---|---|---|")
    for kind, backend, results in rows:
        points = results[0]["points"]
        log_s = statistics.median(r["log_s"] for r in results)
        complete_s = statistics.median(r["complete_s"] for r in results)
        rate = statistics.median(r["points"] / (r["log_s"] + r["complete_s"]) for r in results)
        read = f"{statistics.median(r['read_s'] for r in results):.2f}" if "read_s" in results[0] else "-"
        label = f"{points:,} points, 1 series" if kind == "one" else "200k points, 1,000 series"
        print(f"| {label} | {backend} | {log_s:.2f} | {complete_s:.2f} | {rate:,.0f} | {read} |")


if __name__ == "__main__":
    main()
