"""The child processes of the compaction tests: writers, readers, a compactor, a one-shot compaction.

Run as ``python -m tests.sdk.compaction_processes ROLE JSON`` (see :func:`start_role`); each role
opens the workspace itself, as a separate process does. Readers and the compactor loop until
their stop file exists, then print what they did as one JSON line; a reader that reads something
inconsistent says what on stderr and exits 1.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

from runhistory import Workspace
from runhistory.core.status import RunStatus
from runhistory.store.base import MetricBatch, RunStore
from tests.helpers import python_env
from tests.series_check import SHARED, growth_problems, own_series, point_time, read_problems, shared_value

ROOT = Path(__file__).resolve().parents[2]
LONGEST_LOOP_S = 300.0  # a loop whose parent died stops on its own


def start_role(role: str, **params: Any) -> subprocess.Popen:
    """Start a child process playing ``role`` with ``params`` (stdin, stdout and stderr piped)."""
    return subprocess.Popen(
        [sys.executable, "-m", "tests.sdk.compaction_processes", role, json.dumps(params)],
        env=python_env(PYTHONPATH=str(ROOT)),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen, timeout: float = 120) -> str:
    """Wait for a child to exit 0 and return its stdout; else fail with its stderr."""
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, f"{' '.join(process.args[-2:])[:200]} exited {process.returncode}:\n{err[-3000:]}"
    return out


def _open(params: dict[str, Any]) -> RunStore:
    return Workspace(params["uri"], params["artifacts"]).store


def _looping(stop_file: str):
    deadline = time.monotonic() + LONGEST_LOOP_S
    while not os.path.exists(stop_file) and time.monotonic() < deadline:
        yield


def writer(params: dict[str, Any]) -> None:
    """Append one point to this writer's own series and one to the shared series per call."""
    store, run_id, me = _open(params), params["run_id"], params["writer"]
    for seq in range(params["first_seq"], params["first_seq"] + params["flushes"]):
        when = [point_time(me, seq)]
        store.append_metrics(
            [
                MetricBatch(run_id, own_series(me), "scalar", [seq], [None], when),
                MetricBatch(run_id, SHARED, "scalar", [shared_value(me, seq)], [None], when),
            ]
        )


def reader(params: dict[str, Any]) -> None:
    """Read the whole run again and again (alternately alone and as one of many runs), checking
    every read and each read against the one before."""
    store, run_id, writers = _open(params), params["run_id"], params["writers"]
    reads, before = 0, {}
    for _ in _looping(params["stop_file"]):
        before = _checked_read(store, run_id, writers, before, reads)
        reads += 1
    before = _checked_read(store, run_id, writers, before, reads)  # once more after the writers ended
    print(json.dumps({"reads": reads + 1, "points": {name: len(s.values) for name, s in before.items()}}))


def _checked_read(store: RunStore, run_id: str, writers: int, before: dict, reads: int) -> dict:
    # both ways of reading a run: its own read, and the read of many runs at once
    series = store.get_metrics_of_runs([run_id])[run_id] if reads % 2 else store.get_metrics(run_id)
    problems = read_problems(series, writers) + growth_problems(before, series)
    if reads % 10 == 0:
        counts = {summary.name: summary.count for summary in store.get_metric_summaries(run_id)}
        problems += [
            f"{name}: summary counts {counts.get(name)} points after {len(one.values)} were read"
            for name, one in series.items()
            if counts.get(name, -1) < len(one.values)
        ]
    if problems:
        sys.exit(f"read {reads + 1} is inconsistent:\n" + "\n".join(problems[:20]))
    return series


def compactor(params: dict[str, Any]) -> None:
    """Compact the run (every fifth time every run) until told to stop; print how many pieces merged."""
    store, run_id = _open(params), params["run_id"]
    calls = merged = 0
    for _ in _looping(params["stop_file"]):
        merged += store.compact_metrics(None if calls % 5 == 4 else run_id)
        calls += 1
    print(json.dumps({"calls": calls, "merged": merged}))


def follow_writer(params: dict[str, Any]) -> None:
    """Append one point per call to ``followed`` (steps = indexes) and ``stepped`` (explicit steps)."""
    store, run_id = _open(params), params["run_id"]
    for index in range(params["points"]):
        store.append_metrics(
            [
                MetricBatch(run_id, "followed", "scalar", [index * 0.25], [None], [point_time(0, index)]),
                MetricBatch(run_id, "stepped", "scalar", [f"s{index}"], [index * 10 - 7], [point_time(1, index)]),
            ]
        )


ONE_SHOT_ACTIONS: dict[str, Callable[[RunStore, str], object]] = {
    "compact_run": lambda store, run_id: store.compact_metrics(run_id),
    "compact_all": lambda store, run_id: store.compact_metrics(None),
    "complete": lambda store, run_id: store.set_status(run_id, RunStatus.COMPLETED),
}


def one_shot(params: dict[str, Any]) -> None:
    """Open the store and say ``ready``; on a line on stdin say ``go`` and do one action (the test
    kills it meanwhile). Started ahead, such processes cost the test no start-up time each."""
    store, run_id = _open(params), params["run_id"]
    store.get_run(run_id)  # connected and warm: the kill's delay counts from the action itself
    print("ready", flush=True)
    if not sys.stdin.readline():
        return  # the test ended without needing this one
    print("go", flush=True)
    result = ONE_SHOT_ACTIONS[params["action"]](store, run_id)
    print(json.dumps({"done": repr(result)}), flush=True)


ROLES = {
    "writer": writer,
    "reader": reader,
    "compactor": compactor,
    "follow_writer": follow_writer,
    "one_shot": one_shot,
}

if __name__ == "__main__":
    ROLES[sys.argv[1]](json.loads(sys.argv[2]))
