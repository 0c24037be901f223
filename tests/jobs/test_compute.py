"""Compute targets: registered in the workspace, found again after a restart, their status."""

from __future__ import annotations

from pathlib import Path

import pytest

from runhistory import Workspace
from runhistory.compute import ComputeTarget, LocalCompute
from runhistory.core.errors import JobConfigError, NotFoundError

from tests.helpers import run_python


def test_local_always_exists(ws: Workspace) -> None:
    assert list(ws.compute_targets) == ["local"]
    local = ws.compute_targets["local"]
    assert isinstance(local, LocalCompute) and local.max_concurrent_runs is None
    assert ComputeTarget(ws, "local") == local
    assert local.jobs_directory.is_absolute()


def test_a_created_target_survives_reopening_the_workspace(ws: Workspace, tmp_path: Path) -> None:
    config = LocalCompute.provisioning_configuration(max_concurrent_runs=2, working_directory=str(tmp_path / "j"))
    created = ComputeTarget.create(ws, "cpucluster", config)
    assert isinstance(created, LocalCompute) and created.name == "cpucluster"
    result = run_python(
        f"""
        from runhistory import Workspace
        target = Workspace.from_config({str(tmp_path / 'ws')!r}).compute_targets["cpucluster"]
        print(type(target).__name__, target.max_concurrent_runs, target.jobs_directory)
        """
    )
    assert result.stdout.split() == ["LocalCompute", "2", str(tmp_path / "j")]
    assert list(ws.compute_targets) == ["local", "cpucluster"]


def test_creating_again_replaces_the_settings(ws: Workspace) -> None:
    ComputeTarget.create(ws, "cpu", LocalCompute.provisioning_configuration(max_concurrent_runs=1))
    again = ComputeTarget.create(ws, "cpu", LocalCompute.provisioning_configuration(max_concurrent_runs=4))
    assert again.max_concurrent_runs == 4 and ComputeTarget(ws, "cpu").max_concurrent_runs == 4
    local = ComputeTarget.create(ws, "local", LocalCompute.provisioning_configuration(max_concurrent_runs=3))
    assert local.max_concurrent_runs == 3 == ws.compute_targets["local"].max_concurrent_runs


def test_status_and_wait_for_completion(ws: Workspace, capsys: pytest.CaptureFixture[str]) -> None:
    target = ComputeTarget.create(ws, "cpucluster", LocalCompute.provisioning_configuration(max_concurrent_runs=2))
    target.wait_for_completion(show_output=True)
    assert capsys.readouterr().out == "Compute target 'cpucluster' (local): Succeeded, at most 2 jobs at once.\n"
    status = target.get_status()
    assert (status.provisioning_state, status.running_runs, status.queued_runs) == ("Succeeded", 0, 0)
    assert status.serialize()["max_concurrent_runs"] == 2


def test_bad_targets(ws: Workspace) -> None:
    with pytest.raises(NotFoundError, match=r"No compute target 'gpu' in the workspace at .* \(it has: local\)"):
        ComputeTarget(ws, "gpu")
    with pytest.raises(JobConfigError, match="takes a provisioning configuration"):
        ComputeTarget.create(ws, "cpu", {"max_concurrent_runs": 1})  # type: ignore[arg-type]
    with pytest.raises(JobConfigError, match="Compute target name 'has space' is not valid"):
        ComputeTarget.create(ws, "has space", LocalCompute.provisioning_configuration())
    with pytest.raises(JobConfigError, match="max_concurrent_runs must be a positive integer"):
        LocalCompute.provisioning_configuration(max_concurrent_runs=0)


def test_the_supervisor_starts_without_numpy_or_sqlalchemy() -> None:
    import subprocess
    import sys

    code = "import sys, runhistory.jobs.supervisor; print(sorted({'numpy', 'sqlalchemy'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"