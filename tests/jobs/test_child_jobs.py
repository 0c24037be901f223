"""A job's own child jobs (what a sweep's controller submits) never outlive it: when its script
ends, by itself or killed, the supervisor cancels the child jobs still open before the job ends."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from runhistory import Experiment, Run, ScriptRunConfig
from runhistory.store.base import RunStatus

from tests.jobs.support import read_pids, wait_for_status, write_script

PARENT = """
import os, sys, time
from runhistory import Run, ScriptRunConfig
from runhistory.jobs.submit import submit_job
run = Run.get_context()
open("sleep.py", "w").write("import time\\ntime.sleep(300)\\n")
open("quick.py", "w").write("print('done')\\n")
quick = submit_job(run.experiment, ScriptRunConfig(".", "quick.py"), parent_id=run.id)
quick.wait_for_completion(timeout=60)
child = submit_job(run.experiment, ScriptRunConfig(".", "sleep.py"), parent_id=run.id)
while child.get_status() != "Running":
    time.sleep(0.1)
open(sys.argv[1], "w").write(str(os.getpid()))
if sys.argv[2] == "wait":
    time.sleep(300)
"""


def _parent(exp: Experiment, source: Path, pid_file: Path, how: str) -> Run:
    write_script(source, "parent.py", PARENT)
    return exp.submit(ScriptRunConfig(source, "parent.py", [str(pid_file), how]))


def _children(run: Run) -> dict[str, str]:
    return {child.get_details()["runDefinition"]["script"]: child.get_status() for child in run.get_children()}


def test_a_job_that_exits_cancels_its_open_child_jobs_first(exp: Experiment, source: Path, tmp_path: Path) -> None:
    run = _parent(exp, source, tmp_path / "pid", "exit")
    assert wait_for_status(run, *RunStatus.TERMINAL) == RunStatus.COMPLETED
    assert _children(run) == {"quick.py": RunStatus.COMPLETED, "sleep.py": RunStatus.CANCELED}


def test_a_killed_job_script_cancels_its_open_child_jobs_before_it_reads_failed(
    exp: Experiment, source: Path, tmp_path: Path
) -> None:
    run = _parent(exp, source, tmp_path / "pid", "wait")
    [pid] = read_pids(tmp_path / "pid", 1)
    os.kill(pid, signal.SIGKILL)
    assert wait_for_status(run, *RunStatus.TERMINAL) == RunStatus.FAILED
    assert _children(run) == {"quick.py": RunStatus.COMPLETED, "sleep.py": RunStatus.CANCELED}
