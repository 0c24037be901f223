"""Liveness of the runs a process started: it heartbeats them while it lives and ends them when it exits.

The interactive and child runs that this process created (``start_logging``, ``child_run``;
not runs merely opened by id, and not a job's own run, which its supervisor ends) are *owned*:

- a daemon thread beats each owned run that is still open every ``HEARTBEAT_INTERVAL_S``;
- at interpreter exit each owned run still open is ended: Completed after a normal exit,
  Failed with the exception (type, message, traceback) after an uncaught one, Canceled after
  an uncaught KeyboardInterrupt (as a run used as a context manager does). ``sys.exit(n)``
  is a normal exit. A forked child (``os.fork``, ``multiprocessing``) owns none of its
  parent's runs and ends none of them.

Readers (the store, when a run is read) apply the rules for a process that ended without
ending its runs (``kill -9``, ``os._exit``, a crash, a lost machine):

- its heartbeat has been silent for ``OWNER_LOST_AFTER_S`` and the owner process is known to be
  gone (same machine: no process with its pid and its creation time, or a zombie): Failed,
  error code ``ProcessLost``;
- its heartbeat has been silent for ``OWNER_HEARTBEAT_TIMEOUT_S`` and whether the owner lives
  cannot be known (another machine), or it lives but does not beat (suspended: SIGSTOP, a laptop
  asleep): NotResponding. Its next heartbeat makes it Running again, and nothing it logged or
  logs is lost: NotResponding is not an end.

The timeout is generous on purpose: a training step may hold the GIL (a long C call) and so
keep the heartbeat thread from running; such a process reads NotResponding at worst, never Failed,
because Failed is only ever decided from a pid that is gone.
"""

from __future__ import annotations

import hashlib
import os
import socket
import sys
import threading
from typing import TYPE_CHECKING, Any

from runhistory.status import HEARTBEAT_INTERVAL_S, RunStatus
from runhistory.store.base import RunOwner

if TYPE_CHECKING:
    from runhistory.run import Run
    from runhistory.store.base import RunRecord

# Seconds of heartbeat silence after which an owned run reads NotResponding (owner not known dead).
OWNER_HEARTBEAT_TIMEOUT_S = 30.0
# Seconds of heartbeat silence after which a reader on the owner's machine checks whether it is gone.
OWNER_LOST_AFTER_S = 3 * HEARTBEAT_INTERVAL_S
PROCESS_LOST_CODE = "ProcessLost"
PROCESS_LOST_MESSAGE = "the process ended without completing the run"
OWNED_RUN_TYPES = ("interactive", "child")
# Two creation times of one process read in two processes differ by rounding only.
_START_TIME_TOLERANCE_S = 0.5

_identity: tuple[int, RunOwner] | None = None  # (pid it was read in, what it is)


def this_process() -> RunOwner:
    """The owner record of the current process (read once per process)."""
    global _identity
    pid = os.getpid()
    if _identity is None or _identity[0] != pid:
        import psutil  # here, not at import: it costs ~40 ms and only owners and readers of stale runs need it

        _identity = (pid, RunOwner(socket.gethostname()[:255], _machine(), pid, psutil.Process(pid).create_time()))
    return _identity[1]


def _machine() -> str | None:
    """What tells this machine and PID namespace apart from others with the same host name.

    Containers can share a host name while their pids mean different processes: the boot id
    (the kernel's, new at every boot) together with the PID namespace decides "same machine".
    """
    parts = []
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as boot:
            parts.append(boot.read().strip())
        parts.append(os.readlink("/proc/self/ns/pid"))
    except OSError:
        import psutil  # see this_process

        parts = [f"boot:{psutil.boot_time():.0f}"]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]


def is_this_process(record: "RunRecord") -> bool:
    """Whether the run's owner is the current process."""
    me = this_process()
    return (record.owner_pid, record.owner_host, record.owner_machine) == (me.pid, me.host, me.machine) and (
        record.owner_start_time is not None and abs(record.owner_start_time - me.start_time) <= _START_TIME_TOLERANCE_S
    )


def owner_is_gone(record: "RunRecord") -> bool:
    """True when the run's owner process is known to have ended: it ran on this machine and no
    process with its pid and creation time lives (a zombie counts as ended). False when it lives,
    or when that cannot be known here (another machine, or a run without an owner)."""
    if record.owner_pid is None or record.owner_host is None or record.owner_start_time is None:
        return False
    me = this_process()
    if record.owner_host != me.host or record.owner_machine != me.machine:
        return False
    if not _pid_exists(record.owner_pid):
        return True
    import psutil  # see this_process

    try:
        process = psutil.Process(record.owner_pid)
        if abs(process.create_time() - record.owner_start_time) > _START_TIME_TOLERANCE_S:
            return True  # the pid was given to another process since
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.Error:  # hidden from us (/proc hidepid), access denied, or ending right now: not known gone
        return False


def _pid_exists(pid: int) -> bool:
    """Whether any process has this pid; signal 0 sees processes that /proc may hide from this user."""
    if pid <= 0:
        return False
    if os.name != "posix":  # there os.kill would end the process
        import psutil  # see this_process

        return psutil.pid_exists(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    except OverflowError:
        return False
    return True


def process_lost_error(record: "RunRecord", silence: float) -> dict[str, Any]:
    """The error recorded on a run whose owner process ended without ending it."""
    return {
        "message": (
            f"{PROCESS_LOST_MESSAGE.capitalize()} (pid {record.owner_pid} on {record.owner_host}; "
            f"its last heartbeat was {silence:.1f} s ago)."
        ),
        "code": PROCESS_LOST_CODE,
    }


# --- the owning side: heartbeats and the end at exit ---


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
    return (id(run._backends.store), run.id)


def _beat_forever(owned: _Owned) -> None:
    while not owned.stop.wait(HEARTBEAT_INTERVAL_S):
        with owned.lock:
            runs = list(owned.runs.items())
        for key, run in runs:
            try:
                status = run._backends.store.heartbeat(run.id)
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
    try:
        from runhistory.backends import add_exit_hook
    except ImportError:  # an older backends module: atexit runs this before the buffers' flush too
        import atexit

        atexit.register(end_owned_runs)
    else:
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

__all__ = [
    "OWNED_RUN_TYPES",
    "OWNER_HEARTBEAT_TIMEOUT_S",
    "OWNER_LOST_AFTER_S",
    "PROCESS_LOST_CODE",
    "end_owned_runs",
    "is_this_process",
    "own",
    "owned_runs",
    "owner_is_gone",
    "process_lost_error",
    "release",
    "release_all",
    "this_process",
]
