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

The pieces that are not particular to jobs (process groups, parent death, the subreaper, killing
a tree) are in :mod:`runhistory.core.processes`, which TensorBoard's launcher uses too.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import psutil

from runhistory.core.processes import (
    any_running,
    die_with_parent_hook,
    kill_processes,
    reap_orphans,
    send_signal,
    signal_group,
)

TERMINATE_GRACE_S = 2.0


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
        preexec_fn=die_with_parent_hook(),  # noqa: PLW1509 - called before any thread starts
        close_fds=True,
    )


def end_job_tree(process: subprocess.Popen, spared: Iterable[int] = (), grace: float = TERMINATE_GRACE_S) -> None:
    """End the script and every process it started: SIGTERM, then SIGKILL after ``grace`` seconds
    to what is left; returns once all of them are gone. ``spared`` (the watchdog) is left alone.

    The processes are the script's group and every descendant of this process (its subreaper).
    """
    spared = {*spared}
    others = job_descendants(process, spared)
    signal_group(process.pid, signal.SIGTERM)
    for other in others:
        send_signal(other, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and (process.poll() is None or any_running(others)):
        time.sleep(0.02)
    kill_job_tree(process, spared)


def kill_job_tree(process: subprocess.Popen, spared: Iterable[int] = ()) -> None:
    """SIGKILL the script's group and what it left anywhere else; returns once they are gone."""
    spared = {*spared}
    signal_group(process.pid, signal.SIGKILL)
    kill_processes(job_descendants(process, spared), kept={process.pid, *spared})
    process.wait()
    signal_group(process.pid, signal.SIGKILL)  # members that were still being forked
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


def describe_exit(returncode: int) -> str:
    """``exited with code 2`` or ``was killed by signal SIGKILL (9)``."""
    if returncode >= 0:
        return f"exited with code {returncode}"
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        name = "an unknown signal"
    return f"was killed by signal {name} ({-returncode})"
