"""Liveness of the runs a process started: it heartbeats them while it lives and ends them when it exits.

The interactive and child runs that this process created (``start_logging``, ``child_run``;
not runs merely opened by id, and not a job's own run, which its supervisor ends) are *owned*:

- a daemon thread beats each owned run that is still open every ``HEARTBEAT_INTERVAL_S``;
- at interpreter exit each owned run still open is ended: Completed after a normal exit,
  Failed with the exception (type, message, traceback) after an uncaught one, Canceled after
  an uncaught KeyboardInterrupt (as a run used as a context manager does). ``sys.exit(n)``
  is a normal exit. A forked child (``os.fork``, ``multiprocessing``) owns none of its
  parent's runs and ends none of them.

The rules by which a reader finds a run whose owner is gone are :mod:`runhistory.store.owners`.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import TYPE_CHECKING

from runhistory.backends import add_exit_hook
from runhistory.core.status import HEARTBEAT_INTERVAL_S, RunStatus


if TYPE_CHECKING:
    from runhistory.run import Run

class _Owned:
    """This process's owned runs, its heartbeat thread, and the uncaught exception that ended it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.runs: dict[tuple[int, str], "Run"] = {}  # (id of its store, run id) -> run, in creation order
        self.thread: threading.Thread | None = None
        self.stop = threading.Event()
        self.uncaught: BaseException | None = None
        self.pid = os.getpid()


_owned = _Owned()
_hooks_installed = False


def own(run: "Run") -> None:
    """Heartbeat ``run`` from now on and end it when this process exits (unless it ends first)."""
    with _owned.lock:
        _owned.runs[_key(run)] = run
        _install_hooks()
        if _owned.thread is None:
            _owned.thread = threading.Thread(
                target=_beat_forever, args=(_owned,), name="runhistory-heartbeat", daemon=True
            )
            _owned.thread.start()


def release(run: "Run") -> None:
    """Stop heartbeating ``run`` (it has ended)."""
    with _owned.lock:
        _owned.runs.pop(_key(run), None)


def release_all() -> None:
    """Stop heartbeating every owned run and leave them open at exit (for a host process, such as
    a test session, that outlives the workspaces its runs live in)."""
    with _owned.lock:
        _owned.runs.clear()


def owned_runs() -> list["Run"]:
    """The runs this process owns and has not ended, oldest first."""
    with _owned.lock:
        return list(_owned.runs.values())


def _key(run: "Run") -> tuple[int, str]:
    return (id(run.workspace.store), run.id)


def _beat_forever(owned: _Owned) -> None:
    while not owned.stop.wait(HEARTBEAT_INTERVAL_S):
        with owned.lock:
            runs = list(owned.runs.items())
        for key, run in runs:
            try:
                status = run.workspace.store.heartbeat(run.id)
            except Exception:  # unreachable or locked for now: the next beat tries again
                continue
            if status in RunStatus.TERMINAL:  # ended elsewhere (`runhistory runs cancel`, another handle)
                with owned.lock:
                    owned.runs.pop(key, None)


def _install_hooks() -> None:
    global _hooks_installed
    if _hooks_installed:
        return
    _hooks_installed = True
    previous = sys.excepthook

    def remember_uncaught(exc_type, exc, tb):
        if not hasattr(sys, "ps1"):  # at an interactive prompt the process goes on after an error
            _owned.uncaught = exc
        previous(exc_type, exc, tb)

    sys.excepthook = remember_uncaught
    add_exit_hook(end_owned_runs)


def end_owned_runs() -> None:
    """At exit: end every run this process owns that is still open (children before parents)."""
    owned = _owned
    if owned.pid != os.getpid():
        return
    owned.stop.set()
    exc = owned.uncaught
    for run in reversed(owned_runs()):
        try:
            if exc is None:
                run.complete()
            elif isinstance(exc, KeyboardInterrupt):
                run.cancel()
            else:
                run.fail(exc)
        except Exception as problem:  # one run that cannot be ended must not keep the others open
            print(f"runhistory: could not end run {run.id} at exit: {problem}", file=sys.stderr)


def _forget_after_fork() -> None:
    """A forked child owns nothing: its parent beats and ends its own runs."""
    global _owned
    _owned = _Owned()


os.register_at_fork(after_in_child=_forget_after_fork)

__all__ = ["end_owned_runs", "own", "owned_runs", "release", "release_all"]
