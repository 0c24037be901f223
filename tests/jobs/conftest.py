"""Fixtures of the job tests: a source folder to submit, and a local target with its own job folders."""

from __future__ import annotations

import os
import signal
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

from runhistory import Workspace
from runhistory.compute import ComputeTarget, LocalCompute

from tests.jobs.support import supervisors_under, wait_until


@pytest.fixture(autouse=True)
def no_job_left_behind(tmp_path: Path) -> Iterator[None]:
    """After each test, no supervisor of its jobs may still run (they are killed, and the test fails)."""
    yield
    try:
        wait_until(lambda: not supervisors_under(tmp_path), timeout=10, what="the test's jobs to end")
    except AssertionError:
        left = supervisors_under(tmp_path)
        for pid in left:
            os.killpg(pid, signal.SIGKILL)  # each supervisor leads a session of its own
        pytest.fail(f"supervisors left running after the test: {left}")


@pytest.fixture(autouse=True)
def own_temp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Temporary files of this process (and so the ``local`` target's job folders) under the test's folder."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """An empty source folder for the test's scripts."""
    folder = tmp_path / "project"
    folder.mkdir()
    return folder


@pytest.fixture
def jobs_dir(tmp_path: Path) -> Path:
    """Where the ``here`` target puts its jobs' working folders."""
    return tmp_path / "jobs"


@pytest.fixture
def here(ws: Workspace, jobs_dir: Path) -> ComputeTarget:
    """A local target whose job folders are inside the test's temporary folder."""
    return ComputeTarget.create(ws, "here", LocalCompute.provisioning_configuration(working_directory=str(jobs_dir)))
