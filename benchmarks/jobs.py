"""Jobs on the local compute target: how fast they start, how fast their logs show, how fast a crash shows.

    .venv/bin/python benchmarks/jobs.py                      # everything (about a minute)
    .venv/bin/python benchmarks/jobs.py --skip-tensorboard   # without starting TensorBoard

Each measurement runs real jobs in a fresh workspace in a temporary folder:

1. submit -> running: ``exp.submit(config)`` of a script whose first line writes
   ``time.time()`` to a file, against the time just before ``submit``; median of 10. Also
   how long ``submit`` itself takes and when the run reads Running.
2. log byte -> run files: a job appends a line holding ``time.time()`` to ``./logs/tick.txt``
   every 0.1 s; the benchmark polls the run's file ``logs/tick.txt`` with ranged reads every
   10 ms and takes, per line, the time from writing to reading.
3. log byte -> TensorBoard: a job writes a scalar event (wall time = now) to ``./logs`` every
   0.25 s and flushes it; ``Tensorboard([run])`` follows the run; the benchmark polls
   TensorBoard's HTTP API every 50 ms and takes, per point, the time from its wall time to
   the API serving it.
4. kill -9 -> Failed: ``kill -9`` of a running job's supervisor, then the time until a reader
   sees the run Failed; 3 times.

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
import signal  # noqa: E402
import textwrap  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import _common as c  # noqa: E402

from runhistory import Experiment, Run, ScriptRunConfig, Workspace  # noqa: E402
from runhistory.compute import ComputeTarget, LocalCompute  # noqa: E402

TARGET_SUBMIT_TO_RUNNING_S = 0.5
TARGET_LOG_TO_TENSORBOARD_P95_S = 2.0
TARGET_KILL_TO_FAILED_S = 10.0

FIRST_LINE = "import sys, time; open(sys.argv[1], 'w').write(repr(time.time()))\n"

TICKS = """
import os, sys, time
os.makedirs("logs", exist_ok=True)
with open("logs/tick.txt", "a") as out:
    for i in range(int(sys.argv[1])):
        out.write(f"{i} {time.time()!r}\\n")
        out.flush()
        time.sleep(0.1)
"""

EVENTS = """
import os, sys, time
from runhistory.tensorboard.events import EventFileWriter
while not os.path.exists(sys.argv[2]):  # start once TensorBoard is up
    time.sleep(0.01)
with EventFileWriter("logs") as writer:
    for step in range(int(sys.argv[1])):
        writer.add_scalar("tick", float(step), step, wall_time=time.time())
        writer.flush()
        time.sleep(0.25)
"""

SLEEPER = "import os, sys, time\nopen(sys.argv[1], 'w').write(str(os.getppid()))\ntime.sleep(120)\n"


def _script(folder: Path, name: str, code: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(textwrap.dedent(code))


def submit_to_running(exp: Experiment, source: Path, scratch: Path, count: int) -> dict[str, list[float]]:
    """Seconds from submit to the script's first line, to submit's return and to Running being visible."""
    _script(source, "first.py", FIRST_LINE)
    result: dict[str, list[float]] = {"first_line": [], "submit_call": [], "running_visible": []}
    for i in range(count):
        marker = scratch / f"first-{i}"
        before = time.time()
        run = exp.submit(ScriptRunConfig(source, "first.py", [str(marker)], compute_target="bench"))
        result["submit_call"].append(time.time() - before)
        first = float(c.wait_for(lambda: marker.is_file() and marker.read_text()))
        result["first_line"].append(first - before)
        c.wait_for(lambda: run.get_status() in ("Running", "Completed"), interval=0.005)
        result["running_visible"].append(time.time() - before)
        run.wait_for_completion(timeout=60)
        c.progress(f"submit {i + 1}/{count}: first line after {result['first_line'][-1] * 1000:.0f} ms")
    return result


def log_to_run_files(exp: Experiment, source: Path, lines: int) -> list[float]:
    """Per line of ``logs/tick.txt``: seconds from the job writing it to the run's file holding it."""
    _script(source, "ticks.py", TICKS)
    run = exp.submit(ScriptRunConfig(source, "ticks.py", [str(lines)], compute_target="bench"))
    artifacts = run.workspace.artifacts
    latencies: list[float] = []
    offset, pending = 0, b""
    deadline = time.monotonic() + 60
    while len(latencies) < lines and time.monotonic() < deadline:
        try:
            data = artifacts.read(run.id, "logs/tick.txt", offset)
        except FileNotFoundError:
            data = b""
        now = time.time()
        offset += len(data)
        pending += data
        *complete, pending = pending.split(b"\n")
        latencies += [now - float(line.split()[1]) for line in complete]
        time.sleep(0.01)
    run.wait_for_completion(timeout=60)
    c.progress(f"log -> run files: {len(latencies)} lines")
    return latencies


def log_to_tensorboard(exp: Experiment, source: Path, scratch: Path, points: int) -> list[float]:
    """Per scalar point: seconds from its wall time to TensorBoard's HTTP API serving it."""
    from runhistory.tensorboard import Tensorboard

    _script(source, "events.py", EVENTS)
    go = scratch / "go"
    run = exp.submit(ScriptRunConfig(source, "events.py", [str(points), str(go)], compute_target="bench"))
    with Tensorboard([run], port=0) as tb:
        c.progress(f"TensorBoard up at {tb.url}; the job starts writing")
        go.touch()
        latencies = c.scalar_latencies(tb.url, f"{exp.name}-{run.number}", "tick", points, 60 + points * 0.25)
        run.wait_for_completion(timeout=60)
    c.progress(f"log -> TensorBoard: {len(latencies)} points")
    return latencies


def kill_to_failed(exp: Experiment, source: Path, scratch: Path, repeats: int) -> list[float]:
    """Seconds from ``kill -9`` of a job's supervisor to a reader seeing the run Failed."""
    _script(source, "sleeper.py", SLEEPER)
    seconds = []
    for i in range(repeats):
        marker = scratch / f"supervisor-{i}"
        run = exp.submit(ScriptRunConfig(source, "sleeper.py", [str(marker)], compute_target="bench"))
        supervisor = int(c.wait_for(lambda: marker.is_file() and marker.read_text()))
        c.wait_for(lambda: run.get_status() == "Running", interval=0.01)
        time.sleep(1.0)  # a running job, between two heartbeats
        os.kill(supervisor, signal.SIGKILL)
        killed = time.time()
        reader = Run(exp, run.id)
        c.wait_for(lambda: reader.get_status() == "Failed", timeout=30, interval=0.1)
        seconds.append(time.time() - killed)
        c.progress(f"kill -9 {i + 1}/{repeats}: Failed after {seconds[-1]:.1f} s")
    return seconds


def report(results: dict[str, list[float]]) -> c.Table:
    table = c.Table(
        "Jobs on the local compute target (seconds)",
        ["measurement", "n", "p50", "p95", "max", "target", "for comparison"],
        [False, True, True, True, True, False, False],
    )

    def row(name: str, key: str, target: str, comparison: str) -> None:
        values = results.get(key)
        if values:
            table.add(name, len(values), c.fmt_seconds(c.median(values)), c.fmt_seconds(c.percentile(values, 95)),
                      c.fmt_seconds(max(values)), target, comparison)

    row("submit -> script's first line", "first_line", f"median <= {TARGET_SUBMIT_TO_RUNNING_S}",
        "Ray Jobs alone: ~0.8 s (ray_jobs.py)")
    row("submit() call returns", "submit_call", "", "")
    row("submit -> run reads Running", "running_visible", "", "")
    row("log byte -> run's files", "to_files", "within 1 s", "")
    row("log byte -> TensorBoard API", "to_tensorboard", f"p95 <= {TARGET_LOG_TO_TENSORBOARD_P95_S}",
        "Azure ML: logs followed every 5 to 90 s")
    row("kill -9 supervisor -> Failed seen", "kill_to_failed", f"<= {TARGET_KILL_TO_FAILED_S:g}", "")
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--submits", type=int, default=10)
    parser.add_argument("--lines", type=int, default=50, help="log lines for log -> run files")
    parser.add_argument("--points", type=int, default=30, help="scalar points for log -> TensorBoard")
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--skip-tensorboard", action="store_true")
    args = parser.parse_args()
    c.progress(c.machine_info())
    results: dict[str, list[float]] = {}
    with c.temp_dir("rh-bench-jobs-") as scratch:
        ws = Workspace.create(scratch / "ws")
        config = LocalCompute.provisioning_configuration(working_directory=str(scratch / "jobs"))
        ComputeTarget.create(ws, "bench", config)
        exp = Experiment(ws, "bench")
        source = scratch / "project"
        results.update(submit_to_running(exp, source, scratch, args.submits))
        results["to_files"] = log_to_run_files(exp, source, args.lines)
        if not args.skip_tensorboard:
            results["to_tensorboard"] = log_to_tensorboard(exp, source, scratch, args.points)
        results["kill_to_failed"] = kill_to_failed(exp, source, scratch, args.kills)
    table = report(results)
    print(table.text())
    print()
    print(table.markdown())


if __name__ == "__main__":
    main()
