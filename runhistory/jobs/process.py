"""Starting a job's script as a process tree that cannot outlive its supervisor, and ending it."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Mapping, Sequence

_PR_SET_PDEATHSIG = 1
TERMINATE_GRACE_S = 2.0


def _die_with_parent_hook() -> Callable[[], None]:
    """What the child runs between fork and exec: its own process group, and on Linux a
    SIGKILL when the supervisor dies (even by ``kill -9``)."""
    parent = os.getpid()
    prctl = None
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        prctl = libc.prctl

    def hook() -> None:
        os.setpgid(0, 0)
        if prctl is not None:
            prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
            if os.getppid() != parent:  # the supervisor died before the hook ran
                os._exit(1)

    return hook


def start_script(
    script: str, arguments: Sequence[str], folder: Path, environment: Mapping[str, str]
) -> subprocess.Popen:
    """``python script arguments`` in ``folder``, stdout and stderr piped, in a process group of its own.

    Call it from the thread that lives as long as the job (the main thread): Linux sends
    the death signal when the thread that started the child ends.
    """
    return subprocess.Popen(
        [sys.executable, script, *arguments],
        cwd=folder,
        env=dict(environment),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=_die_with_parent_hook(),  # noqa: PLW1509 - called before any thread starts
        close_fds=True,
    )


def end_process_group(process: subprocess.Popen, grace: float = TERMINATE_GRACE_S) -> None:
    """SIGTERM the process's whole group, then SIGKILL whatever is left after ``grace`` seconds."""
    _signal_group(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    _signal_group(process.pid, signal.SIGKILL)
    process.wait()


def kill_leftovers(process: subprocess.Popen) -> None:
    """SIGKILL what the script left running in its group after it exited."""
    _signal_group(process.pid, signal.SIGKILL)


def _signal_group(group: int, signum: int) -> None:
    try:
        os.killpg(group, signum)
    except (ProcessLookupError, PermissionError):
        pass


def describe_exit(returncode: int) -> str:
    """``exited with code 2`` or ``was killed by signal SIGKILL (9)``."""
    if returncode >= 0:
        return f"exited with code {returncode}"
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        name = "an unknown signal"
    return f"was killed by signal {name} ({-returncode})"
