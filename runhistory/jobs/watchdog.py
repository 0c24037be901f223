"""The watchdog of a job: ``python -m runhistory.jobs.watchdog SUPERVISOR_PID [FOLDER]``.

A supervisor starts it (in a session of its own, so that no signal to the supervisor's group
reaches it) before the script, and keeps its stdin open. The watchdog remembers the
supervisor's descendants (the script's whole tree: the supervisor is its subreaper, see
:mod:`runhistory.jobs.process`) every ``POLL_INTERVAL_S``. Its stdin takes lines:

- ``script PID``: the script's process group, ended too;
- ``done``: the supervisor ended the job itself; the watchdog leaves.

End of file without ``done`` means the supervisor died (``kill -9``): the watchdog stops and
kills every process it remembers and all they started, removes the job's working ``FOLDER``
when one is given, and leaves.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import sys

import psutil

from runhistory.core.processes import kill_processes, signal_group

POLL_INTERVAL_S = 0.25


def watch(supervisor_pid: int, folder: str | None) -> int:
    """Watch until the supervisor says done (0) or dies (the tree is ended first; 0)."""
    try:
        supervisor = psutil.Process(supervisor_pid)
    except psutil.Error:
        return 1
    remembered: dict[int, psutil.Process] = {}
    script_group: int | None = None
    fd = sys.stdin.fileno()
    pending = b""
    while True:
        readable, _, _ = select.select([fd], [], [], POLL_INTERVAL_S)
        if readable:
            data = os.read(fd, 4096)
            if not data:
                break  # the supervisor is gone
            *lines, pending = (pending + data).split(b"\n")
            for words in (line.split() for line in lines):
                if words[:1] == [b"done"]:
                    return 0
                if words[:1] == [b"script"] and len(words) == 2 and words[1].isdigit():
                    script_group = int(words[1])
        _remember(supervisor, remembered)
    _end(remembered, script_group)
    if folder:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


def _remember(supervisor: psutil.Process, remembered: dict[int, psutil.Process]) -> None:
    try:
        children = supervisor.children(recursive=True)
    except psutil.Error:
        return
    me = os.getpid()
    for child in children:
        if child.pid != me and child.pid not in remembered:
            remembered[child.pid] = child
    for pid in [pid for pid, proc in remembered.items() if not proc.is_running()]:
        del remembered[pid]


def _end(remembered: dict[int, psutil.Process], script_group: int | None) -> None:
    if script_group is not None:
        signal_group(script_group, signal.SIGSTOP)  # no member forks while the rest is found
    kill_processes(remembered.values())
    if script_group is not None:
        signal_group(script_group, signal.SIGKILL)


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``SUPERVISOR_PID [FOLDER]``."""
    args = sys.argv[1:] if argv is None else argv
    if not 1 <= len(args) <= 2 or not args[0].isdigit():
        print("usage: python -m runhistory.jobs.watchdog SUPERVISOR_PID [FOLDER]", file=sys.stderr)
        return 2
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C in the submitting terminal is not for it
    return watch(int(args[0]), args[1] if len(args) == 2 else None)


if __name__ == "__main__":
    sys.exit(main())
