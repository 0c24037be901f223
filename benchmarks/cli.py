"""``runs list`` on a long history: the first page (50 runs) of 20,000, via the store and via the CLI.

    .venv/bin/python benchmarks/cli.py                 # 20,000 runs (about half a minute)
    .venv/bin/python benchmarks/cli.py --runs 2000     # quick check

A fresh embedded workspace in a temporary folder gets ``--runs`` ended top-level runs over
5 experiments (one experiment made by the SDK, then the rows written with one ``executemany``
so that the set-up takes seconds, not minutes). Then, side by side in one run:

1. the store: ``list_runs(RunFilter(top_level_only=True, limit=50))``, the page ``runs list``
   shows, against ``list_runs(RunFilter(top_level_only=True))``, the whole list (median of 5);
2. the CLI in this process (click's test runner, median of 5 / 3): ``runs list -w WS`` (its
   first page of 50) against ``runs list --limit 0 -w WS`` (everything, rendered as a table);
3. the same as fresh processes of ``runhistory`` (median of 3), which adds Python's start-up
   and the imports, shown on their own as the time of ``runhistory --version``.

The ratio column says how much less the page costs than the whole list. The issue measured
0.69 s for the first 50 of 20,000 runs when the CLI read every run and sliced in Python.
Progress goes to stderr; the table to stdout, as text and then as Markdown.
"""

from __future__ import annotations

import os
import sys

# This folder holds a ``logging.py``: keep it importable for ``_common`` but behind the standard library.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
sys.path.append(_HERE)

import argparse  # noqa: E402
import secrets  # noqa: E402
import sqlite3  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import _common as c  # noqa: E402

from runhistory import Workspace  # noqa: E402
from runhistory.core.uris import DB_FILE_NAME  # noqa: E402
from runhistory.store.base import RunFilter, RunStatus  # noqa: E402

PAGE = 50
EXPERIMENTS = 5
RUNHISTORY = Path(sys.executable).with_name("runhistory")


def make_history(root: Path, count: int) -> Path:
    """A workspace under ``root`` with ``count`` Completed top-level runs; returns its folder."""
    folder = root / "ws"
    workspace = Workspace.create(folder)
    experiment_ids = [workspace.store.get_or_create_experiment(f"exp-{index}").id for index in range(EXPERIMENTS)]
    start = time.time() - count * 10
    rows = []
    for index in range(count):
        experiment_id = experiment_ids[index % EXPERIMENTS]
        created = start + index * 10
        run_id = f"exp-{index % EXPERIMENTS}_{int(created)}_{secrets.token_hex(4)}"
        number = index // EXPERIMENTS + 1
        rows.append((run_id, experiment_id, number, run_id, RunStatus.COMPLETED, "interactive", created, created, created + 5))
    database = next(path for path in (folder / DB_FILE_NAME, folder / ".runhistory" / DB_FILE_NAME) if path.exists())
    with sqlite3.connect(database) as connection:
        connection.executemany(
            "INSERT INTO runs (id, experiment_id, number, display_name, status, run_type, created_time, start_time, end_time)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
    return folder


def time_store(folder: Path, repeat: int = 5) -> tuple[float, float]:
    """Median seconds of the first page and of the whole list, read through the store."""
    store = Workspace(str(folder)).store
    page, everything = [], []
    for _ in range(repeat):
        with c.Stopwatch() as watch:
            shown = store.list_runs(RunFilter(top_level_only=True, limit=PAGE))
        page.append(watch.seconds)
        with c.Stopwatch() as watch:
            listed = store.list_runs(RunFilter(top_level_only=True))
        everything.append(watch.seconds)
    assert len(shown) == PAGE and shown == listed[:PAGE], "the page is not the head of the whole list"
    return c.median(page), c.median(everything)


def time_cli_in_process(folder: Path, *options: str, repeat: int = 5) -> float:
    """Median seconds of ``runs list OPTIONS -w FOLDER`` run in this process (no start-up)."""
    from click.testing import CliRunner

    from runhistory.cli.main import cli

    runner = CliRunner(env={"COLUMNS": "120"})
    times = []
    for _ in range(repeat):
        with c.Stopwatch() as watch:
            result = runner.invoke(cli, ["runs", "list", *options, "-w", str(folder)])
        assert result.exit_code == 0, result.output
        times.append(watch.seconds)
    return c.median(times)


def time_start_up(repeat: int = 3) -> float:
    """Median seconds of ``runhistory --version``: Python's start-up and the CLI's imports."""
    times = []
    for _ in range(repeat):
        with c.Stopwatch() as watch:
            subprocess.run([str(RUNHISTORY), "--version"], check=True, stdout=subprocess.DEVNULL)
        times.append(watch.seconds)
    return c.median(times)


def time_cli(folder: Path, *options: str, repeat: int = 3) -> float:
    """Median seconds of ``runhistory runs list OPTIONS -w FOLDER`` in a fresh process."""
    times = []
    for _ in range(repeat):
        with c.Stopwatch() as watch:
            subprocess.run(
                [str(RUNHISTORY), "runs", "list", *options, "-w", str(folder)],
                check=True,
                stdout=subprocess.DEVNULL,
                env={**os.environ, "COLUMNS": "120"},
            )
        times.append(watch.seconds)
    return c.median(times)


def main() -> None:
    """Run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20_000, help="how many runs the history holds")
    args = parser.parse_args()
    with c.temp_dir() as root:
        c.progress(f"writing {args.runs:,} runs")
        folder = make_history(root, args.runs)
        c.progress("timing the store")
        store_page, store_all = time_store(folder)
        c.progress("timing the CLI")
        inside_page = time_cli_in_process(folder)
        inside_all = time_cli_in_process(folder, "--limit", "0", repeat=3)
        cli_page = time_cli(folder)
        cli_all = time_cli(folder, "--limit", "0")
        start_up = time_start_up()
    table = c.Table(
        f"runs list over {args.runs:,} runs: the first {PAGE} vs all of them",
        ["via", f"first {PAGE} (s)", "all (s)", "all / first page"],
    )
    table.add("store.list_runs", c.fmt_seconds(store_page), c.fmt_seconds(store_all), c.fmt_ratio(store_all / store_page))
    table.add("runs list (in process)", c.fmt_seconds(inside_page), c.fmt_seconds(inside_all), c.fmt_ratio(inside_all / inside_page))
    table.add("runhistory runs list (process)", c.fmt_seconds(cli_page), c.fmt_seconds(cli_all), c.fmt_ratio(cli_all / cli_page))
    table.add("  of which start-up (--version)", c.fmt_seconds(start_up), c.fmt_seconds(start_up), "")
    c.print_table(table)


if __name__ == "__main__":
    main()
