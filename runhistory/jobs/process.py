"""Starting a job's script as a process tree that cannot outlive its supervisor, and ending it.

How the whole tree ends, even when the supervisor is killed with ``kill -9``:

- the script runs in a process group of its own and gets SIGKILL when the supervisor dies
  (``PR_SET_PDEATHSIG``);
- the supervisor is a *child subreaper* (``PR_SET_CHILD_SUBREAPER``): a process of the script
  whose parent exits (a double-forked daemon, a grandchild of a killed child) is re-parented to
  the supervisor instead of init, so every process the script ever started stays a descendant
  of the supervisor, whatever process group or session it moved to;
- a watchdog (:mod:`runhistory.jobs.watchdog`), a small process in a session of its own,
  keeps the list of those descendants; when the supervisor dies it ends them all.

We chose a subreaper plus a watchdog over the watchdog alone because, without the subreaper,
a process that leaves the script's group and whose parent exits at once is adopted by init
before any poll can see it; and over the subreaper alone because a subreaper that is killed
passes its children on to init, where nobody ends them.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

import psutil

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36
TERMINATE_GRACE_S = 2.0
KILL_WAIT_S = 5.0


def _prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    return libc.prctl


def become_subreaper() -> bool:
    """Make this process the reaper of its orphaned descendants (Linux); True when it is."""
    prctl = _prctl()
    return prctl is not None and prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0


def _die_with_parent_hook() -> Callable[[], None]:
    """What the child runs between fork and exec: its own process group, and on Linux a
    SIGKILL when the supervisor dies (even by ``kill -9``)."""
    parent = os.getpid()
    prctl = _prctl()

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


def end_job_tree(process: subprocess.Popen, spared: Iterable[int] = (), grace: float = TERMINATE_GRACE_S) -> None:
    """End the script and every process it started: SIGTERM, then SIGKILL after ``grace`` seconds
    to what is left; returns once all of them are gone. ``spared`` (the watchdog) is left alone.

    The processes are the script's group and every descendant of this process (its subreaper).
    """
    spared = {*spared}
    others = job_descendants(process, spared)
    _signal_group(process.pid, signal.SIGTERM)
    for other in others:
        _send(other, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and (process.poll() is None or _any_running(others)):
        time.sleep(0.02)
    kill_job_tree(process, spared)


def kill_job_tree(process: subprocess.Popen, spared: Iterable[int] = ()) -> None:
    """SIGKILL the script's group and what it left anywhere else; returns once they are gone."""
    spared = {*spared}
    _signal_group(process.pid, signal.SIGKILL)
    kill_processes(job_descendants(process, spared), kept={process.pid, *spared})
    process.wait()
    _signal_group(process.pid, signal.SIGKILL)  # members that were still being forked
    reap_orphans({process.pid, *spared})


def job_descendants(process: subprocess.Popen, spared: set[int]) -> list[psutil.Process]:
    """This process's descendants but ``process`` itself and the ``spared`` ones (and theirs)."""
    try:
        children = psutil.Process().children(recursive=True)
    except psutil.Error:
        return []
    skipped = set(spared)
    for child in children:
        if child.pid in spared:
            try:
                skipped.update(grandchild.pid for grandchild in child.children(recursive=True))
            except psutil.Error:
                pass
    return [child for child in children if child.pid not in skipped and child.pid != process.pid]


def kill_processes(processes: Iterable[psutil.Process], kept: set[int] = frozenset()) -> None:
    """SIGKILL ``processes`` and everything they started, without letting any of them fork away
    meanwhile (all are stopped first, then killed); waits until they are gone. Children of this
    process in ``kept`` are not reaped here (their Popen does it)."""
    stopped: dict[int, psutil.Process] = {}
    frontier = [p for p in processes if _running(p)]
    while frontier:
        for proc in frontier:
            _send(proc, signal.SIGSTOP)
            stopped[proc.pid] = proc
        found = []
        for proc in frontier:
            try:
                found += proc.children(recursive=True)
            except psutil.Error:
                continue
        frontier = [p for p in found if p.pid not in stopped and _running(p)]
    for proc in stopped.values():
        _send(proc, signal.SIGKILL)
    deadline = time.monotonic() + KILL_WAIT_S
    while time.monotonic() < deadline and _any_running(stopped.values()):
        reap_orphans(kept)
        time.sleep(0.01)


def reap_orphans(kept: set[int]) -> None:
    """Reap the exited children of this process but those in ``kept`` (the script's Popen reaps
    its own); a subreaper inherits orphans and must reap them, or they stay zombies."""
    waitid = getattr(os, "waitid", None)
    if waitid is None:
        return
    while True:
        try:
            info = waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return
        if info is None or info.si_pid in kept:
            return
        try:
            os.waitpid(info.si_pid, 0)
        except ChildProcessError:
            return


def _running(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _any_running(processes: Iterable[psutil.Process]) -> bool:
    return any(_running(proc) for proc in processes)


def _send(proc: psutil.Process, signum: int) -> None:
    try:
        if proc.is_running():  # is_running compares creation times: never signal a reused pid
            proc.send_signal(signum)
    except psutil.Error:
        pass


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
