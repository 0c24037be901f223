"""Compaction of metric series racing with writers, readers, followers and kill -9, on SQLite and PostgreSQL.

Every test reads the points back exactly (values with their types, steps, wall times): a point
read twice, missed, reordered or changed by a merge fails it. After a run ends the store is
looked at directly: a finished run's series lie in a few large chunks and no flush frame is left.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import signal
import subprocess
import time
from pathlib import Path

import sqlalchemy as sa

from runhistory import Workspace
from runhistory.core.status import RunStatus
from runhistory.store.base import MetricBatch, RunStore
from runhistory.store.sql.engine import postgres_url
from tests.postgres import BACKENDS
from tests.sdk.compaction_processes import finish, start_role
from tests.series_check import (
    SHARED,
    ExpectedSeries,
    own_series,
    point_time,
    read_problems,
    series_problems,
    shared_value,
)

pytestmark = BACKENDS

# A full compaction leaves each series (at most a few thousand points here) in this many chunks at most.
FEW_CHUNKS_PER_SERIES = 3

WRITERS = 3
READERS = 2
FLUSHES_PER_WRITER = 200


def _new_run(store: RunStore, experiment: str = "compaction") -> str:
    return store.create_run(store.get_or_create_experiment(experiment).id).id


def _where(ws: Workspace) -> dict[str, str]:
    return {"uri": ws.tracking_uri, "artifacts": ws.artifact_uri}


def _database(ws: Workspace) -> sa.Engine:
    uri = ws.tracking_uri
    url = postgres_url(uri) if uri.startswith("postgresql") else uri
    return sa.create_engine(url, poolclass=sa.pool.NullPool)


def stored_pieces(ws: Workspace, run_id: str) -> tuple[dict[str, int], int]:
    """The chunk rows of each series of a run, and the run's flush frames still uncompacted
    (``metric_frames``; 0 where the store has no such table)."""
    engine = _database(ws)
    try:
        with engine.connect() as connection:
            chunks = dict(
                connection.execute(
                    sa.text(
                        "SELECT m.name, count(c.id) FROM metrics m LEFT JOIN metric_chunks c ON c.metric_id = m.id"
                        " WHERE m.run_id = :run GROUP BY m.name"
                    ),
                    {"run": run_id},
                ).all()
            )
            frames = 0
            if sa.inspect(connection).has_table("metric_frames"):
                query = sa.text("SELECT count(*) FROM metric_frames WHERE run_id = :run")
                frames = connection.execute(query, {"run": run_id}).scalar()
    finally:
        engine.dispose()
    return chunks, frames


def assert_compacted(ws: Workspace, run_id: str) -> None:
    """The run's every series lies in a few chunks, and no frame of it is left."""
    chunks, frames = stored_pieces(ws, run_id)
    spread = {name: count for name, count in chunks.items() if count > FEW_CHUNKS_PER_SERIES}
    assert not spread, (
        f"{len(spread)} of {len(chunks)} series of the ended run lie in more than {FEW_CHUNKS_PER_SERIES} chunks, "
        f"e.g. {dict(list(spread.items())[:3])}"
    )
    assert frames == 0, f"{frames} flush frames of the ended run are left uncompacted"


def assert_run_reads(store: RunStore, run_id: str, expected: dict[str, ExpectedSeries]) -> None:
    """Every series of the run reads back exactly as appended, and its summary agrees."""
    read = store.get_metrics(run_id)
    assert sorted(read) == sorted(expected)
    problems = [problem for name in expected for problem in series_problems(name, read[name], expected[name])]
    assert not problems, "\n".join(problems[:20])
    summaries = {summary.name: summary for summary in store.get_metric_summaries(run_id)}
    wrong = [
        name
        for name, series in expected.items()
        if summaries[name].count != len(series.values) or repr(summaries[name].last_value) != repr(series.values[-1])
    ]
    assert not wrong, f"summaries disagree with the points of {wrong[:5]}"


# --- 1. writers, readers and a compactor at once ---


def test_compaction_racing_with_writers_and_readers_shows_every_point_once_and_in_order(
    ws: Workspace, tmp_path: Path
) -> None:
    """Writer processes append one point per call to their own series and to one shared series
    while reader processes check every read and a compactor compacts in a loop."""
    store = ws.store
    run_id = _new_run(store)
    for writer in range(WRITERS):  # every series exists before the readers start
        store.append_metrics(
            [
                MetricBatch(run_id, own_series(writer), "scalar", [0], [None], [point_time(writer, 0)]),
                MetricBatch(run_id, SHARED, "scalar", [shared_value(writer, 0)], [None], [point_time(writer, 0)]),
            ]
        )
    stop_file = str(tmp_path / "stop")
    loops = dict(_where(ws), run_id=run_id, stop_file=stop_file)
    readers = [start_role("reader", writers=WRITERS, **loops) for _ in range(READERS)]
    compactor = start_role("compactor", **loops)
    writers = [
        start_role("writer", **_where(ws), run_id=run_id, writer=w, first_seq=1, flushes=FLUSHES_PER_WRITER)
        for w in range(WRITERS)
    ]
    try:
        for process in writers:
            finish(process)
    finally:
        Path(stop_file).touch()
    reports = [json.loads(finish(process).splitlines()[-1]) for process in readers]
    compacted = json.loads(finish(compactor).splitlines()[-1])
    points = FLUSHES_PER_WRITER + 1
    for report in reports:
        assert report["points"][SHARED] == WRITERS * points, report  # the last read saw everything
        assert report["reads"] >= 2
    print(f"reads {[r['reads'] for r in reports]}, compactor {compacted}")

    final = store.get_metrics(run_id)
    assert not read_problems(final, WRITERS)
    assert len(final[SHARED].values) == WRITERS * points
    assert all(final[own_series(w)].values == list(range(points)) for w in range(WRITERS))
    store.set_status(run_id, RunStatus.COMPLETED)
    ended = store.get_metrics(run_id)
    assert sorted(ended) == sorted(final)
    for name, series in final.items():  # the full compaction at the end changed nothing
        assert (ended[name].values, ended[name].times.tolist()) == (series.values, series.times.tolist()), name
    assert {s.name: s.count for s in store.get_metric_summaries(run_id)} == {
        SHARED: WRITERS * points,
        **{own_series(w): points for w in range(WRITERS)},
    }
    assert_compacted(ws, run_id)


# --- 2. kill -9 in the middle of a compaction ---

KILL_SERIES = 200  # series of the big run
OTHER_SERIES = 40  # series of a second run, compacted by compact_metrics(None)
# (action of the killed process, seconds after it began), in this order
KILLS = (
    *(("compact_run", delay) for delay in (0.0, 0.005, 0.01, 0.02, 0.05, 0.1)),
    *(("compact_all", delay) for delay in (0.0, 0.005, 0.01, 0.02, 0.05, 0.2)),
    *(("complete", delay) for delay in (0.0, 0.01, 0.05)),
)
STARTED_AHEAD = 2  # killed processes importing runhistory ahead of their turn


class SmallFlushes:
    """Appends one-point flushes to a run's series and remembers what it appended."""

    def __init__(self, store: RunStore, run_id: str, series: int) -> None:
        self.store, self.run_id = store, run_id
        self.names = [f"m{i:03d}" for i in range(series)]
        self.expected = {name: ExpectedSeries() for name in self.names}
        self.clock = 1.7e9

    def _point(self, name: str) -> MetricBatch:
        index, number = len(self.expected[name].values), int(name[1:])
        value = f"v{index}" if number % 10 == 9 else index + 0.5 if number % 2 else index
        self.clock += 0.001
        self.expected[name].add([value], [self.clock])
        return MetricBatch(self.run_id, name, "scalar", [value], [None], [self.clock])

    def one_series_each(self, flushes: int) -> None:
        """``flushes`` calls, each one point of one series (round robin)."""
        for i in range(flushes):
            self.store.append_metrics([self._point(self.names[i % len(self.names)])])

    def every_series_each(self, flushes: int) -> None:
        """``flushes`` calls, each one point of every series."""
        for _ in range(flushes):
            self.store.append_metrics([self._point(name) for name in self.names])


def _kill_during_its_action(process: subprocess.Popen, delay: float) -> int | None:
    """Let a ready ``one_shot`` process act and kill -9 it ``delay`` s after it began; its exit code."""
    assert process.stdout.readline().strip() == "ready", process.communicate(timeout=60)[1]
    process.stdin.write("go\n")
    process.stdin.flush()
    assert process.stdout.readline().strip() == "go", process.communicate(timeout=60)[1]
    time.sleep(delay)
    if process.poll() is None:
        os.kill(process.pid, signal.SIGKILL)
    process.communicate(timeout=60)
    return process.returncode


def test_kill_9_during_compaction_loses_and_doubles_nothing(ws: Workspace) -> None:
    """Processes compacting (one run, every run, ending the run) are killed at several moments;
    after each kill both runs read every point once and in order, and a last compaction works."""
    store = ws.store
    big = SmallFlushes(store, _new_run(store), KILL_SERIES)
    other = SmallFlushes(store, _new_run(store), OTHER_SERIES)
    # started lazily, STARTED_AHEAD before their turn
    starting = (start_role("one_shot", **_where(ws), run_id=big.run_id, action=action) for action, _ in KILLS)
    ready = list(itertools.islice(starting, STARTED_AHEAD))
    outcomes = []
    try:
        big.one_series_each(3 * KILL_SERIES)
        big.every_series_each(10)
        other.one_series_each(5 * OTHER_SERIES)
        for action, delay in KILLS:
            if action != "complete":  # new small pieces for this kill to interrupt merging
                big.one_series_each(30)
                big.every_series_each(1)
            process = ready.pop(0)
            ready.extend(itertools.islice(starting, 1))
            outcomes.append((action, delay, _kill_during_its_action(process, delay)))
            assert_run_reads(store, big.run_id, big.expected)
            assert_run_reads(store, other.run_id, other.expected)
    finally:
        for process in ready:
            if process.poll() is None:
                process.kill()
                process.communicate(timeout=60)
    print("kills (action, delay, exit code):", outcomes)

    for run in (big, other):
        store.set_status(run.run_id, RunStatus.COMPLETED)
    store.compact_metrics()
    for run in (big, other):
        assert store.get_run(run.run_id).status == RunStatus.COMPLETED
        assert_run_reads(store, run.run_id, run.expected)
        assert_compacted(ws, run.run_id)


# --- 3. followers reading only what is new ---

FOLLOWED_POINTS = 400


def test_a_follower_reading_from_start_across_compactions_assembles_each_series_exactly(
    ws: Workspace, tmp_path: Path
) -> None:
    """A follower asks only for points past those it has (one start per series, or one for all)
    while a writer appends and a compactor compacts; what it assembles is the whole series."""
    store = ws.store
    run_id = _new_run(store)
    stop_file = str(tmp_path / "stop")
    compactor = start_role("compactor", **_where(ws), run_id=run_id, stop_file=stop_file)
    writer = start_role("follow_writer", **_where(ws), run_id=run_id, points=FOLLOWED_POINTS)
    have = {"followed": ExpectedSeries(), "stepped": ExpectedSeries()}
    reads = 0
    try:
        while True:
            writing = writer.poll() is None
            _follow(store, run_id, have, one_start=reads % 3 == 2)
            reads += 1
            if not writing:
                break
            time.sleep(0.002)
        finish(writer)
    finally:
        Path(stop_file).touch()
    print(f"{reads} follower reads, compactor {finish(compactor).strip()}")

    expected = {"followed": ExpectedSeries(), "stepped": ExpectedSeries()}
    for index in range(FOLLOWED_POINTS):
        expected["followed"].add([index * 0.25], [point_time(0, index)])
        expected["stepped"].add([f"s{index}"], [point_time(1, index)], [index * 10 - 7])
    for name in expected:
        assert _typed_points(have[name]) == _typed_points(expected[name]), f"{name} assembled wrongly"
    store.set_status(run_id, RunStatus.COMPLETED)
    _follow(store, run_id, have, one_start=False)  # nothing new after the end, nothing again
    assert_run_reads(store, run_id, have)
    middle = store.get_metrics(run_id, ["followed"], start=FOLLOWED_POINTS // 2)["followed"]
    assert not series_problems("followed", middle, expected["followed"], start=FOLLOWED_POINTS // 2)
    assert_compacted(ws, run_id)


def _follow(store: RunStore, run_id: str, have: dict[str, ExpectedSeries], *, one_start: bool) -> None:
    """Read what is new of each series and add it to ``have``, checking it starts where ``have`` ends.

    With ``one_start`` one index is asked for every series (the smaller of what is had), and
    what the follower already has is cut off the answer.
    """
    if one_start:
        start = min(len(series.values) for series in have.values())
        read = store.get_metrics(run_id, sorted(have), start=start)
        starts = {name: start for name in have}
    else:
        starts = {name: len(series.values) for name, series in have.items()}
        read = store.get_metrics(run_id, sorted(have), start=starts)
    for name, series in have.items():
        if name not in read:
            continue
        new, skip = read[name], len(series.values) - starts[name]
        assert new.values[:skip] == series.values[starts[name] :], f"{name}: the points it had read differently"
        if name == "followed":  # steps are indexes: the first new point is the next index
            steps = new.steps.tolist()
            assert steps == list(range(starts[name], starts[name] + len(steps))), (
                f"asked from {starts[name]}, read the steps {steps[:3]}...{steps[-3:]} ({len(steps)} points)"
            )
        series.add(new.values[skip:], new.times.tolist()[skip:], new.steps.tolist()[skip:])


def _typed_points(series: ExpectedSeries) -> list[tuple]:
    return [(type(v).__name__, repr(v), s, t) for v, s, t in zip(series.values, series.steps, series.times)]


# --- 4. encodings and explicit steps ---


def test_mixed_encodings_and_explicit_steps_survive_compaction_exactly(ws: Workspace) -> None:
    """One series takes ints (one past float64's precision), then floats (NaN, infinities, -0.0,
    1.0 beside the int 1), then strings, then ints again, one flush each, with explicit steps that
    go back and forth; rows of a table and a list series too. Compaction keeps every value's type."""
    store = ws.store
    run_id = _new_run(store)
    expected = {"mixed": ExpectedSeries(), "rows": ExpectedSeries("table"), "listed": ExpectedSeries("list")}
    clock = iter(1.7e9 + i * 0.123456789 for i in range(10_000))
    flushes: list[tuple[str, list, list]] = []  # (series, values, steps) one call each
    flushes += [("mixed", [value], [step]) for value, step in zip([1, -7, 2**62 + 1, 0], [10, 10, 5, -3])]
    flushes += [("mixed", [value], [None]) for value in [1.0, math.nan, math.inf, -math.inf, -0.0, 2.5e-308]]
    flushes += [("mixed", [value], [2**40]) for value in ["1", "", "naïve ✓", "NaN"]]
    flushes += [("mixed", [3, "x", 4.5], [None, 7, None])]  # one JSON chunk of mixed values
    flushes += [("mixed", [value], [None]) for value in [2**63 - 1, -(2**63)]]
    flushes += [("rows", [{"a": i, "b": i / 3, "c": f"r{i}"}], [None]) for i in range(30)]
    flushes += [("listed", [i, i + 1] if i % 2 else [i + 0.5], None) for i in range(30)]
    for name, values, steps in flushes:
        steps = steps or [None] * len(values)
        times = [next(clock) for _ in values]
        expected[name].add(values, times, steps)
        store.append_metrics([MetricBatch(run_id, name, expected[name].kind, values, steps, times)])
    for _ in range(3):
        assert_run_reads(store, run_id, expected)
        store.compact_metrics(run_id)
    store.set_status(run_id, RunStatus.COMPLETED)
    assert_run_reads(store, run_id, expected)
    for start in (3, 5, 11, 14, 17):
        tail = store.get_metrics(run_id, ["mixed"], start=start)["mixed"]
        assert not series_problems("mixed", tail, expected["mixed"], start=start)
    assert_compacted(ws, run_id)

