"""TensorBoard event files as run history: import speed against tbparse, and the live delay of a job's curves.

    .venv/bin/python benchmarks/tb_import.py            # full run: 1,000,000 events, 3 repeats; a few minutes
    .venv/bin/python benchmarks/tb_import.py --quick    # 100,000 events, 1 repeat, 20 live points
    .venv/bin/python benchmarks/tb_import.py --skip-server --skip-tbparse

1. Import: 10 tags x 100,000 steps of scalars written once by tensorboardX's ``SummaryWriter``
   into one run folder (a large queue and flush interval, so writing is not what is slow), then,
   each repeat, ``runhistory.tensorboard.import_logdir`` of that folder into a fresh embedded
   workspace, side by side with ``tbparse.SummaryReader(logdir).scalars`` (TensorBoard's
   ``EventAccumulator``) on the same files; the median of ``--repeats``. Also the decode alone
   (``scan_records`` + ``decode_records`` over the files, no store) to show where the time goes,
   and a second import of the same folder (which must add nothing). Both readers must return
   every point, with the same steps and values (all of them are compared).
2. Live delay: a job on ``LocalCompute`` writes ``--live-points`` scalars with tensorboardX
   (``writer.flush()`` after each, 0.2 s apart, wall time = when written); the benchmark polls
   the run's series every 20 ms and takes, per point, the seconds from its wall time to the
   first read that holds it (p50, p95, max). Against an embedded workspace and against a
   ``runhistory server`` workspace. After the job, the series must hold exactly the points
   written, each once.

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
import textwrap  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import _common as c  # noqa: E402
import numpy as np  # noqa: E402

from runhistory import Experiment, ScriptRunConfig, Workspace  # noqa: E402
from runhistory.compute import ComputeTarget, LocalCompute  # noqa: E402
from runhistory.eventlogs.decode import TagPlugins, decode_records  # noqa: E402
from runhistory.eventlogs.follow import READ_BYTES, event_files  # noqa: E402
from runhistory.eventlogs.records import scan_records  # noqa: E402
from runhistory.tensorboard import import_logdir  # noqa: E402

TARGET_IMPORT_RATE = 300_000  # events/s
TARGET_TBPARSE_RATIO = 3.0
TARGET_LIVE_P95_S = 2.0
WALL_START = 1_700_000_000.0
LIVE_TAG = "tick"
LIVE_INTERVAL_S = 0.2
POLL_S = 0.02

LIVE_JOB = """
import sys, time
from tensorboardX import SummaryWriter
writer = SummaryWriter("logs", flush_secs=1)
for step in range(int(sys.argv[1])):
    writer.add_scalar("tick", float(step), step, walltime=time.time())
    writer.flush()
    time.sleep(float(sys.argv[2]))
writer.close()
"""


# --- 1. import ---------------------------------------------------------------------------


def written_values(tags: int, steps: int) -> np.ndarray:
    """The value of every (tag, step), as float32 (what ``simple_value`` keeps)."""
    return np.random.default_rng(13).standard_normal((tags, steps)).astype(np.float32)


def write_logs(logdir: Path, values: np.ndarray) -> float:
    """Write ``values`` with tensorboardX into one run folder; the seconds it took."""
    from tensorboardX import SummaryWriter

    tags, steps = values.shape
    c.progress(f"tensorboardX: writing {tags} tags x {steps:,} steps into {logdir}")
    rows = values.tolist()
    with c.Stopwatch() as sw, SummaryWriter(str(logdir), max_queue=100_000, flush_secs=3600) as writer:
        for step in range(steps):
            wall = WALL_START + step * 0.01
            for tag in range(tags):
                writer.add_scalar(f"metric_{tag}", rows[tag][step], step, walltime=wall)
    return sw.seconds


def import_once(logdir: Path, root: Path) -> tuple[float, int, Any]:
    """``import_logdir`` into a fresh embedded workspace: seconds, points stored, the run."""
    exp = Experiment(Workspace.create(root), "imported")
    with c.Stopwatch() as sw:
        (imported,) = import_logdir(logdir, exp, report=lambda message: c.progress(f"import reported: {message}"))
    if imported.error:
        raise RuntimeError(f"import of {logdir} failed: {imported.error}")
    return sw.seconds, imported.points, imported.run


def decode_once(logdir: Path) -> dict[str, float]:
    """Read, scan and decode every event file as the follower does (pieces of ``READ_BYTES``), no store."""
    times = {"read": 0.0, "scan": 0.0, "decode": 0.0, "points": 0}
    for path in event_files(logdir, recursive=False):
        plugins, offset, records = TagPlugins(), 0, 0
        with open(path, "rb") as file:
            while True:
                with c.Stopwatch() as read:
                    file.seek(offset)
                    data = file.read(READ_BYTES)
                with c.Stopwatch() as scanning:
                    scan = scan_records(data, offset)
                with c.Stopwatch() as decoding:
                    decoded = decode_records(data, scan, plugins=plugins, base=offset, first_index=records)
                times["read"] += read.seconds
                times["scan"] += scanning.seconds
                times["decode"] += decoding.seconds
                times["points"] += sum(len(points) for points in decoded.scalars.values())
                moved = scan.end > offset
                offset, records = scan.end, records + decoded.records
                if len(data) < READ_BYTES or not moved:
                    break
    return times


def tbparse_once(logdir: Path) -> tuple[float, Any]:
    """``tbparse.SummaryReader(logdir).scalars``: seconds and the DataFrame (step, tag, value)."""
    from tbparse import SummaryReader

    with c.Stopwatch() as sw:
        frame = SummaryReader(str(logdir)).scalars
    return sw.seconds, frame


def series_of_run(run: Any) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The run's series by tag: steps, values (float64), wall times."""
    return {
        name: (np.asarray(s.steps), np.asarray(s.values, dtype=np.float64), np.asarray(s.times))
        for name, s in run.get_metric_series().items()
    }


def check_run(series: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]], values: np.ndarray) -> str:
    """'' when the imported series hold exactly what was written (every step once, equal values and
    wall times), else what differs."""
    tags, steps = values.shape
    expected_steps = np.arange(steps)
    expected_walls = WALL_START + expected_steps * 0.01
    if sorted(series) != sorted(f"metric_{tag}" for tag in range(tags)):
        return f"runhistory has series {sorted(series)[:12]}"
    for tag in range(tags):
        got_steps, got_values, got_walls = series[f"metric_{tag}"]
        if got_steps.size != steps or not np.array_equal(got_steps, expected_steps):
            return f"runhistory metric_{tag}: {got_steps.size:,} points, steps not 0..{steps - 1}"
        if not np.array_equal(got_values, values[tag].astype(np.float64)):
            return f"runhistory metric_{tag}: values differ from those written"
        if not np.allclose(got_walls, expected_walls, rtol=0, atol=1e-6):
            return f"runhistory metric_{tag}: wall times differ from those written"
    return ""


def check_tbparse(frame: Any, values: np.ndarray) -> str:
    """'' when tbparse's DataFrame holds exactly what was written, else what differs."""
    tags, steps = values.shape
    if len(frame) != tags * steps:
        return f"tbparse read {len(frame):,} points, not {tags * steps:,}"
    for tag in range(tags):
        rows = frame[frame["tag"] == f"metric_{tag}"].sort_values("step", kind="stable")
        if not np.array_equal(rows["step"].to_numpy(), np.arange(steps)):
            return f"tbparse metric_{tag}: steps not 0..{steps - 1}"
        if not np.array_equal(rows["value"].to_numpy(dtype=np.float64), values[tag].astype(np.float64)):
            return f"tbparse metric_{tag}: values differ from those written"
    return ""


@dataclass
class ImportResult:
    events: int
    write_s: float
    bytes: int
    import_s: list[float] = field(default_factory=list)
    decode: list[dict[str, float]] = field(default_factory=list)
    tbparse_s: list[float] = field(default_factory=list)
    reimport_s: float = float("nan")
    reimport_points: int = -1
    problems: list[str] = field(default_factory=list)


def bench_import(root: Path, tags: int, steps: int, repeats: int, with_tbparse: bool) -> ImportResult:
    """Write the logs once, then ``repeats`` times: import, decode alone, tbparse (checked every time)."""
    values = written_values(tags, steps)
    logdir = root / "logs" / "run"
    result = ImportResult(tags * steps, write_logs(logdir, values), sum(p.stat().st_size for p in event_files(logdir, recursive=False)))
    for repeat in range(repeats):
        seconds, points, run = import_once(logdir, root / f"ws-{repeat}")
        result.import_s.append(seconds)
        _problem(result, "" if points == result.events else f"import stored {points:,} points, not {result.events:,}")
        _problem(result, check_run(series_of_run(run), values))
        c.progress(f"import {repeat + 1}/{repeats}: {seconds:.2f} s ({result.events / seconds:,.0f} events/s)")
        if repeat == repeats - 1:
            with c.Stopwatch() as again:
                (imported,) = import_logdir(logdir, run.experiment)
            result.reimport_s, result.reimport_points = again.seconds, imported.points
            _problem(result, check_run(series_of_run(run), values))
        result.decode.append(decode_once(logdir))
        c.progress(f"decode alone {repeat + 1}/{repeats}: {sum(result.decode[-1][k] for k in ('read', 'scan', 'decode')):.2f} s")
        if with_tbparse:
            seconds, frame = tbparse_once(logdir)
            result.tbparse_s.append(seconds)
            _problem(result, check_tbparse(frame, values))
            del frame  # a DataFrame of every point: freed before the next repeat
            c.progress(f"tbparse {repeat + 1}/{repeats}: {seconds:.2f} s ({result.events / seconds:,.0f} events/s)")
    _problem(result, "" if result.reimport_points == 0 else f"re-import added {result.reimport_points:,} points, not 0")
    return result


def _problem(result: ImportResult, problem: str) -> None:
    if problem and problem not in result.problems:
        c.progress(f"PROBLEM: {problem}")
        result.problems.append(problem)


# --- 2. live delay -----------------------------------------------------------------------


@dataclass
class LiveResult:
    where: str
    points: int
    delays: list[float] = field(default_factory=list)
    final_points: int = 0
    problems: list[str] = field(default_factory=list)


def bench_live(ws: Workspace, where: str, jobs: Path, source: Path, points: int) -> LiveResult:
    """Submit the tensorboardX job and time each of its points from written to readable."""
    ComputeTarget.create(ws, "bench", LocalCompute.provisioning_configuration(working_directory=str(jobs)))
    source.mkdir(parents=True, exist_ok=True)
    (source / "live.py").write_text(textwrap.dedent(LIVE_JOB))
    config = ScriptRunConfig(source, "live.py", [str(points), str(LIVE_INTERVAL_S)], compute_target="bench")
    run = Experiment(ws, "live").submit(config)
    c.progress(f"live ({where}): job submitted, polling its series")
    result = LiveResult(where, points)
    seen: set[int] = set()
    deadline = time.monotonic() + 60 + points * LIVE_INTERVAL_S
    while len(seen) < points and time.monotonic() < deadline:
        series = run.get_metric_series([LIVE_TAG]).get(LIVE_TAG)
        now = time.time()
        if series is not None:
            for step, wall in zip(np.asarray(series.steps).tolist(), np.asarray(series.times).tolist()):
                if step not in seen:
                    seen.add(step)
                    result.delays.append(now - wall)
        if run.get_status() in ("Failed", "Canceled"):
            break
        time.sleep(POLL_S)
    details = run.wait_for_completion(timeout=60)
    result.problems += check_live(run, details, points)
    result.final_points = len(live_series(run)[0])
    c.progress(f"live ({where}): {len(result.delays)} points seen, p95 {c.percentile(result.delays, 95):.2f} s")
    return result


def live_series(run: Any) -> tuple[list[int], list[float]]:
    """Steps and values of the job's series (empty before its first point)."""
    series = run.get_metric_series([LIVE_TAG]).get(LIVE_TAG)
    if series is None:
        return [], []
    return np.asarray(series.steps).tolist(), [float(value) for value in series.values]


def check_live(run: Any, details: dict, points: int) -> list[str]:
    """What is wrong with the job's run after it ended: its status, points lost or doubled."""
    problems = [] if details.get("status") == "Completed" else [f"the job ended {details.get('status')}: {details.get('error')}"]
    steps, values = live_series(run)
    if steps != list(range(points)) or values != [float(step) for step in range(points)]:
        doubled = len(steps) - len(set(steps))
        lost = points - len(set(steps) & set(range(points)))
        problems.append(f"the series holds {len(steps)} points ({lost} lost, {doubled} doubled), not steps 0..{points - 1} once each")
    return problems


def live_embedded(root: Path, points: int) -> LiveResult:
    """The live delay against an embedded workspace."""
    return bench_live(Workspace.create(root / "ws-live"), "embedded", root / "jobs-embedded", root / "project", points)


def live_server(root: Path, points: int) -> LiveResult:
    """The live delay against a ``runhistory server`` workspace (the job talks to it over HTTP)."""
    folder = root / "server"
    folder.mkdir()
    c.progress("starting runhistory server")
    server, url = c.start_runhistory_server(folder / "runhistory.db", folder / "artifacts", folder / "server.log")
    try:
        return bench_live(Workspace(url), "runhistory server", root / "jobs-server", root / "project", points)
    finally:
        c.stop_server(server)


# --- report ------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    """The "met" column."""
    return "yes" if ok else "NO"


def report(imports: ImportResult, lives: list[LiveResult], repeats: int) -> c.Table:
    """The table: figures, targets and whether they are met."""
    table = c.Table(
        f"TensorBoard event files as run history (median of {repeats})",
        ["measurement", "figure", "events/s", "target", "met"],
        [False, True, True, False, False],
    )
    events = imports.events
    import_s = c.median(imports.import_s)
    rate = events / import_s
    table.add(f"tensorboardX writes {events:,} scalars ({imports.bytes / 1e6:.0f} MB), once", f"{c.fmt_seconds(imports.write_s)} s",
              c.fmt_rate(events / imports.write_s), "", "")
    table.add("import_logdir into a fresh workspace", f"{c.fmt_seconds(import_s)} s", c.fmt_rate(rate),
              f">= {c.fmt_rate(TARGET_IMPORT_RATE)}/s", verdict(rate >= TARGET_IMPORT_RATE))
    parts = {key: c.median([d[key] for d in imports.decode]) for key in ("read", "scan", "decode")}
    decode_s = sum(parts.values())
    # Paired by repeat: on a busy machine the median of the differences is steadier than the difference of medians.
    rest_s = c.median([whole - sum(d[k] for k in parts) for whole, d in zip(imports.import_s, imports.decode)])
    table.add("  decode alone (read + scan + decode, no store)", f"{c.fmt_seconds(decode_s)} s ({decode_s / import_s:.0%})",
              c.fmt_rate(events / decode_s), "", "")
    table.add("    read / scan_records / decode_records",
              " / ".join(c.fmt_seconds(parts[key]) for key in ("read", "scan", "decode")) + " s", "", "", "")
    table.add("  the rest of the import (run, store, copy of the files)", f"{c.fmt_seconds(rest_s)} s", "", "", "")
    if imports.tbparse_s:
        tbparse_s = c.median(imports.tbparse_s)
        ratio = tbparse_s / import_s
        table.add("tbparse SummaryReader(logdir).scalars", f"{c.fmt_seconds(tbparse_s)} s", c.fmt_rate(events / tbparse_s), "", "")
        table.add("import_logdir vs tbparse", f"{c.fmt_ratio(ratio)} faster", "",
                  f">= {TARGET_TBPARSE_RATIO:g}x", verdict(ratio >= TARGET_TBPARSE_RATIO))
    table.add("import the same folder again", f"{c.fmt_seconds(imports.reimport_s)} s, {imports.reimport_points} new points",
              "", "0 new", verdict(imports.reimport_points == 0))
    readers = "runhistory and tbparse" if imports.tbparse_s else "runhistory"
    table.add(f"{readers}: every point, equal steps, values", "equal" if not imports.problems else "; ".join(imports.problems),
              "", "all equal", verdict(not imports.problems))
    for live in lives:
        name = f"live delay, {live.where} ({len(live.delays)} of {live.points} points)"
        p95 = c.percentile(live.delays, 95)
        figure = " / ".join(c.fmt_seconds(v) for v in (c.median(live.delays), p95, max(live.delays, default=float("nan"))))
        table.add(f"{name}: p50 / p95 / max", f"{figure} s", "", f"p95 <= {TARGET_LIVE_P95_S:g} s", verdict(p95 <= TARGET_LIVE_P95_S))
        table.add(f"  after the job ({live.where}): points lost or doubled",
                  f"{live.final_points} points" if not live.problems else "; ".join(live.problems),
                  "", "0 lost, 0 doubled", verdict(not live.problems and live.final_points == live.points))
    return table


def main() -> None:
    """Run the measurements and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="100,000 events, 1 repeat, 20 live points")
    parser.add_argument("--tags", type=int, default=10)
    parser.add_argument("--steps", type=int, help="steps per tag (default 100,000; --quick 10,000)")
    parser.add_argument("--repeats", type=int, help="import repeats (default 3; --quick 1)")
    parser.add_argument("--live-points", type=int, help="points the live job writes (default 60; --quick 20)")
    parser.add_argument("--skip-tbparse", action="store_true")
    parser.add_argument("--skip-server", action="store_true", help="live delay against an embedded workspace only")
    args = parser.parse_args()
    steps = args.steps or (10_000 if args.quick else 100_000)
    repeats = args.repeats or (1 if args.quick else 3)
    live_points = args.live_points or (20 if args.quick else 60)
    c.progress(c.machine_info())
    with c.temp_dir("rh-bench-tb-import-") as root:
        imports = bench_import(root, args.tags, steps, repeats, not args.skip_tbparse)
        lives = [live_embedded(root, live_points)]
        if not args.skip_server:
            lives.append(live_server(root, live_points))
    table = report(imports, lives, repeats)
    c.print_table(table)


if __name__ == "__main__":
    main()
