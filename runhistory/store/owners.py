"""Who owns a run (the process that started it), and the rules a reader applies when that
process ended without ending its runs (``kill -9``, ``os._exit``, a crash, a lost machine):

- its heartbeat has been silent for ``OWNER_LOST_AFTER_S`` and the owner process is known to be
  gone (same machine: no process with its pid and its creation time, or a zombie): Failed,
  error code ``ProcessLost``;
- its heartbeat has been silent for ``OWNER_HEARTBEAT_TIMEOUT_S`` and whether the owner lives
  cannot be known (another machine), or it lives but does not beat (suspended: SIGSTOP, a laptop
  asleep): NotResponding. Its next heartbeat makes it Running again, and nothing it logged or
  logs is lost: NotResponding is not an end.

The timeout is generous on purpose: a training step may hold the GIL (a long C call) and so
keep the heartbeat thread from running; such a process reads NotResponding at worst, never Failed,
because Failed is only ever decided from a pid that is gone. The owning side (heartbeats, the
end at exit) is :mod:`runhistory.liveness`.
"""

from __future__ import annotations

import hashlib
import os
import socket
from typing import TYPE_CHECKING, Any

from runhistory.core.status import HEARTBEAT_INTERVAL_S
from runhistory.store.base import RunOwner

if TYPE_CHECKING:
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
