"""What the job tests share: writing scripts, waiting for conditions, looking at processes."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import Callable, Iterator, TypeVar

from runhistory import Run
from tests import helpers

T = TypeVar("T")

JOB_TIMEOUT_S = 60.0


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
