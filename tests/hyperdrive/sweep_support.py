"""What the sweep tests share: trial scripts, a local target for the trials, finding a controller."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest

from runhistory import Experiment, Workspace
from runhistory.compute import ComputeTarget, LocalCompute
from runhistory.jobs.config import ScriptRunConfig
from runhistory.store.base import RunStatus
from runhistory.train.hyperdrive import HyperDriveRun
from runhistory.train.hyperdrive.runconfig import CONTROLLER_TARGET

from tests.jobs.support import alive, supervisors_under, wait_until, write_script

SWEEP_TIMEOUT_S = 90.0

# A trial that logs x * 10 + y as "score" and exits; x = 2 fails when $FAIL_AT_2 is set.
SCORE_SCRIPT = """
    import argparse, os, sys
    from runhistory import Run
    parser = argparse.ArgumentParser()
    parser.add_argument("--x", type=int)
    parser.add_argument("--y", type=int, default=0)
    parser.add_argument("--sleep", type=float, default=0)
    args = parser.parse_args()
    if os.environ.get("FAIL_AT_2") and args.x == 2:
        sys.exit(3)
    if args.sleep:
        import time
        time.sleep(args.sleep)
    run = Run.get_context()
    run.log("score", args.x * 10 + args.y)
"""

# A trial whose "acc" curve is its --quality at every step: a poor one lags by construction (and
# logs slower, so that the good one has reached each step it is judged at).
CURVE_SCRIPT = """
    import argparse, time
    from runhistory import Run
    parser = argparse.ArgumentParser()
    parser.add_argument("--quality", type=float)
    args = parser.parse_args()
    run = Run.get_context()
    for step in range(12):
        run.log("acc", args.quality * (1 + step / 12))
        run.flush()
        time.sleep(0.3 if args.quality >= 0.5 else 0.6)
"""

# A trial that sleeps until it is ended, having logged one point.
SLEEP_SCRIPT = """
    import argparse, time
    from runhistory import Run
    parser = argparse.ArgumentParser()
    parser.add_argument("--x", type=int)
    args = parser.parse_args()
    Run.get_context().log("score", args.x)
    time.sleep(120)
"""


def trial_source(folder: Path) -> Path:
    """A source folder with the three trial scripts."""
    for name, code in (("score.py", SCORE_SCRIPT), ("curve.py", CURVE_SCRIPT), ("sleep.py", SLEEP_SCRIPT)):
        write_script(folder, name, code)
    return folder


def trial_config(source: Path, script: str, target: str, **options: object) -> ScriptRunConfig:
    """A ScriptRunConfig of one of the trial scripts on ``target``."""
    return ScriptRunConfig(source, script, compute_target=target, **options)  # type: ignore[arg-type]


def wait_for_sweep(sweep: HyperDriveRun, *statuses: str, timeout: float = SWEEP_TIMEOUT_S) -> str:
    """Wait until the sweep reads one of ``statuses``; returns it."""
    return wait_until(lambda: sweep.get_status() in statuses and sweep.get_status(), timeout, 0.2, f"sweep {statuses}")


def controller_pids(folder: Path) -> list[int]:
    """Live processes running a sweep controller script whose working folder is inside ``folder``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            command = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            cwd = Path(os.readlink(f"/proc/{entry}/cwd"))
        except OSError:
            continue
        if any(part.endswith(b"hyperdrive_controller.py") for part in command) and cwd.is_relative_to(folder):
            if alive(int(entry)):
                found.append(int(entry))
    return found


@pytest.fixture
def trials_target(ws: Workspace, tmp_path: Path) -> str:
    """A local target whose job folders are inside the test's folder; its name."""
    config = LocalCompute.provisioning_configuration(working_directory=str(tmp_path / "trials"))
    return ComputeTarget.create(ws, "trials", config).name


@pytest.fixture
def trials_source(tmp_path: Path) -> Path:
    """The source folder of the trial scripts."""
    return trial_source(tmp_path / "project")


@pytest.fixture
def sweep_exp(ws: Workspace, controllers_target: str) -> Experiment:
    """An experiment for the sweeps."""
    return Experiment(ws, "sweeps")


@pytest.fixture
def controllers_target(ws: Workspace, tmp_path: Path) -> str:
    """The sweeps' controller target registered ahead, its job folders inside the test's folder."""
    config = LocalCompute.provisioning_configuration(working_directory=str(tmp_path / "controllers"))
    return ComputeTarget.create(ws, CONTROLLER_TARGET, config).name


@pytest.fixture(autouse=True)
def no_sweep_left_behind(tmp_path: Path) -> Iterator[None]:
    """After each test no supervisor of its sweeps or trials may run (they are killed, and it fails)."""
    yield
    try:
        wait_until(lambda: not supervisors_under(tmp_path), timeout=20, what="the test's jobs to end")
    except AssertionError:
        left = supervisors_under(tmp_path)
        for pid in left:
            os.killpg(pid, 9)
        pytest.fail(f"supervisors left running after the test: {left}")


def terminal(status: str) -> bool:
    """Whether a status is final."""
    return status in RunStatus.TERMINAL
