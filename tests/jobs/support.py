"""What the job tests share: writing scripts, waiting for conditions, looking at processes."""

from __future__ import annotations

import os
import textwrap
import time
from pathlib import Path
from typing import Callable, Iterator, TypeVar

import httpx

from runhistory import Run
from tests import helpers

T = TypeVar("T")

JOB_TIMEOUT_S = 60.0
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def write_script(folder: Path, name: str, code: str) -> Path:
    """Write a (dedented) Python script into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(code))
    return path


def wait_until(check: Callable[[], T], timeout: float = JOB_TIMEOUT_S, interval: float = 0.05, what: str = "") -> T:
    """:func:`tests.helpers.wait_until` with a job's time-out by default."""
    return helpers.wait_until(check, timeout, interval, what)


def wait_for_status(run: Run, *statuses: str, timeout: float = JOB_TIMEOUT_S) -> str:
    """Wait until the run has one of ``statuses``; returns it."""
    return wait_until(lambda: run.get_status() in statuses and run.get_status(), timeout, 0.05, f"{run.id} {statuses}")


def read_pids(path: Path, count: int) -> list[int]:
    """Wait for a file of ``count`` whitespace-separated pids written by a job's script."""
    wait_until(lambda: path.is_file() and len(path.read_text().split()) >= count, what=f"pids in {path}")
    return [int(pid) for pid in path.read_text().split()[:count]]


def alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _supervisors() -> Iterator[tuple[int, list[bytes]]]:
    """Pid and command line of every live job supervisor on this machine."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            command = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"runhistory.jobs.supervisor" in command and alive(int(entry)):
            yield int(entry), command


def supervisor_pids(run_id: str) -> list[int]:
    """The live processes running the supervisor of ``run_id``."""
    return [pid for pid, command in _supervisors() if run_id.encode() in command]


def supervisors_under(folder: Path) -> list[int]:
    """The live supervisors whose working folder is inside ``folder``."""
    found = []
    for pid, _command in _supervisors():
        try:
            if Path(os.readlink(f"/proc/{pid}/cwd")).is_relative_to(folder):
                found.append(pid)
        except OSError:
            continue
    return found


def scalar_counts(url: str, tb_run: str) -> dict[str, int]:
    """The number of points TensorBoard's HTTP API serves for each scalar tag of one run."""
    tags = httpx.get(f"{url.rstrip('/')}/data/plugin/scalars/tags", timeout=30).json().get(tb_run, {})
    counts = {}
    for tag in tags:
        points = httpx.get(
            f"{url.rstrip('/')}/data/plugin/scalars/scalars", params={"run": tb_run, "tag": tag}, timeout=30
        ).json()
        counts[tag] = len(points)
    return counts


def tensorboard_scalars(url: str) -> dict[str, dict[str, list[list[float]]]]:
    """{TensorBoard run: {tag: [[wall_time, step, value], ...]}} for every scalar tag TensorBoard serves."""
    base = url.rstrip("/")
    tags = httpx.get(f"{base}/data/plugin/scalars/tags", timeout=30).json()
    return {
        tb_run: {
            tag: httpx.get(f"{base}/data/plugin/scalars/scalars", params={"run": tb_run, "tag": tag}, timeout=30).json()
            for tag in run_tags
        }
        for tb_run, run_tags in tags.items()
    }


def counts_seen_while_running(run: Run, url: str, tb_run: str, tag: str, enough: int = 3) -> set[int]:
    """The point counts of ``tag`` TensorBoard served while the job read Running (until ``enough``
    different ones, or the job ended): what a user watching the curves grow sees."""
    seen: set[int] = set()
    while run.get_status() in ("Queued", "Starting", "Running") and len(seen) < enough:
        counts = scalar_counts(url, tb_run)
        if run.get_status() == "Running" and counts.get(tag):
            seen.add(counts[tag])
        time.sleep(0.1)
    return seen
