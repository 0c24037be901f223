"""Process groups, process trees and parent death: what jobs and TensorBoard both need.

- a child in a process group (or session) of its own, ended as a whole: :func:`signal_group`,
  :func:`live_group_members`, :func:`end_group` (SIGTERM, wait, SIGKILL);
- a child that dies with its parent (:func:`die_with_parent_hook`, Linux's
  ``PR_SET_PDEATHSIG``) and a parent that adopts its orphaned descendants
  (:func:`become_subreaper`, ``PR_SET_CHILD_SUBREAPER``), which must then reap them
  (:func:`reap_orphans`);
- a process told apart from a later one that got its pid: :func:`process_identity`,
  :func:`process_alive` (pid and create time);
- a tree killed without letting any member fork away: :func:`kill_processes`.

Trees, liveness and create times come from psutil (no ``/proc`` scanning).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
import time
from typing import Callable, Iterable

import psutil

__all__ = [
    "KILL_WAIT_S",
    "any_running",
    "become_subreaper",
    "die_with_parent_hook",
    "end_group",
    "kill_processes",
    "live_group_members",
    "process_alive",
    "process_identity",
    "reap_orphans",
    "running",
    "send_signal",
    "signal_group",
]

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36
KILL_WAIT_S = 5.0
# psutil's create times are rounded to the clock tick: a later process with the same pid
# started at least this long after
_START_TIME_TOLERANCE_S = 1.0
_POLL_S = 0.02


def _prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    return libc.prctl


# --- parent death and orphans ---


def become_subreaper() -> bool:
    """Make this process the reaper of its orphaned descendants (Linux); True when it is."""
    prctl = _prctl()
    return prctl is not None and prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0


def die_with_parent_hook() -> Callable[[], None]:
    """A ``preexec_fn`` for :class:`subprocess.Popen`: the child gets a process group of its own
    and, on Linux, SIGKILL when the process that started it dies (even by ``kill -9``).

    Linux sends that signal when the *thread* that started the child ends: start the child
    from a thread that lives as long as it should (the main thread).
    """
    parent = os.getpid()
    prctl = _prctl()

    def hook() -> None:
        os.setpgid(0, 0)
        if prctl is not None:
            prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
            if os.getppid() != parent:  # the parent died before the hook ran
                os._exit(1)

    return hook


def reap_orphans(kept: set[int]) -> None:
    """Reap the exited children of this process but those in ``kept`` (their Popen reaps
    them); a subreaper inherits orphans and must reap them, or they stay zombies."""
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


# --- identity and liveness ---


def process_identity(pid: int | None = None) -> tuple[int, float]:
    """A process's pid and create time (this process by default): what tells it apart from a
    later process given the same pid."""
    process = psutil.Process(pid)
    return process.pid, process.create_time()


def process_alive(pid: int, started: float) -> bool:
    """Whether the process ``pid`` that started at ``started`` (seconds since the epoch) still runs."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        return abs(process.create_time() - started) < _START_TIME_TOLERANCE_S
    except psutil.Error:
        return False


def running(process: psutil.Process) -> bool:
    """Whether ``process`` (that very process, not a later one with its pid) runs and is no zombie."""
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def any_running(processes: Iterable[psutil.Process]) -> bool:
    """Whether any of ``processes`` still runs."""
    return any(running(process) for process in processes)


def send_signal(process: psutil.Process, signum: int) -> None:
    """Send ``signum`` to ``process`` if it still runs (never to a later process with its pid)."""
    try:
        if process.is_running():  # is_running compares create times
            process.send_signal(signum)
    except psutil.Error:
        pass


# --- process groups ---


def signal_group(group: int, signum: int) -> None:
    """Send ``signum`` to process group ``group``, which may already be gone."""
    try:
        os.killpg(group, signum)
    except (ProcessLookupError, PermissionError):
        pass


def live_group_members(group: int) -> list[int]:
    """Pids of the processes of process group ``group`` that are not zombies."""
    members = []
    for process in psutil.process_iter(["status"]):
        try:
            if process.info["status"] != psutil.STATUS_ZOMBIE and os.getpgid(process.pid) == group:
                members.append(process.pid)
        except (OSError, psutil.Error):
            continue
    return members


def end_group(group: int, grace: float, gone: Callable[[], bool] | None = None) -> bool:
    """SIGTERM process group ``group``, SIGKILL it after ``grace`` seconds if it is still there;
    True once it is gone (within another ``grace``). ``gone`` says when it is gone (by default:
    no live member is left); a leader that is our child may need its own test (it stays a
    zombie, and in the group, until its Popen reaps it)."""
    is_gone = gone or (lambda: not live_group_members(group))
    signal_group(group, signal.SIGTERM)
    if _wait_until(is_gone, grace):
        return True
    signal_group(group, signal.SIGKILL)
    return _wait_until(is_gone, grace)


def _wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(_POLL_S)
    return True


# --- trees ---


def kill_processes(processes: Iterable[psutil.Process], kept: set[int] = frozenset()) -> None:
    """SIGKILL ``processes`` and everything they started, without letting any of them fork away
    meanwhile (all are stopped first, then killed); waits until they are gone. Children of this
    process in ``kept`` are not reaped here (their Popen does it)."""
    stopped: dict[int, psutil.Process] = {}
    frontier = [p for p in processes if running(p)]
    while frontier:
        for process in frontier:
            send_signal(process, signal.SIGSTOP)
            stopped[process.pid] = process
        found = []
        for process in frontier:
            try:
                found += process.children(recursive=True)
            except psutil.Error:
                continue
        frontier = [p for p in found if p.pid not in stopped and running(p)]
    for process in stopped.values():
        send_signal(process, signal.SIGKILL)
    deadline = time.monotonic() + KILL_WAIT_S
    while time.monotonic() < deadline and any_running(stopped.values()):
        reap_orphans(kept)
        time.sleep(0.01)
