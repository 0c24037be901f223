"""``runhistory compute create-ray|status|list`` against a real Ray head (the ``ray_cluster``
fixture: one node, 2 CPUs), through the real console script; and heads that do not answer."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from runhistory import Workspace
from runhistory.compute import ComputeTarget

from tests.cli.support import WIDTH, row_of
from tests.helpers import python_env
from tests.ray_cluster import RayCluster

CONSOLE_SCRIPT = Path(sys.executable).with_name("runhistory")


def _runhistory(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """The real console script, to the end."""
    return subprocess.run(
        [str(CONSOLE_SCRIPT), *args],
        cwd=cwd,
        env=python_env(COLUMNS=str(WIDTH)),
        capture_output=True,
        text=True,
        timeout=180,
    )


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then let go)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _assert_one_sentence(result: subprocess.CompletedProcess, *fragments: str) -> str:
    """Exit 1, nothing on stdout, and one ``Error: ...`` line on stderr holding ``fragments``."""
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


@pytest.fixture
def ws_folder(tmp_path: Path) -> Path:
    """An embedded workspace's folder (the cluster is on this machine, so its nodes reach it)."""
    Workspace.create(tmp_path / "ws")
    return tmp_path / "ws"


def test_create_ray_registers_the_cluster_and_status_shows_its_node_and_cpus(
    ray_cluster: RayCluster, ws_folder: Path, isolated: Path, tmp_path: Path
) -> None:
    runtime_env = tmp_path / "env.json"
    runtime_env.write_text(json.dumps({"env_vars": {"DATA": "/data"}}))
    created = _runhistory(
        "compute", "create-ray", "cpucluster", "--address", ray_cluster.address, "--num-cpus", "1",
        "--resource", "accelerator=0.5", "--max-concurrent-runs", "4", "--runtime-env", f"@{runtime_env}",
        "-w", str(ws_folder), cwd=isolated,
    )
    assert created.returncode == 0, created.stderr
    assert created.stdout.startswith(
        f"Registered compute target 'cpucluster' (ray at {ray_cluster.address}; each job takes 1 CPU, 0 GPU, "
        f"0.5 accelerator; at most 4 jobs at once)"
    ), created.stdout
    target = ComputeTarget(Workspace.from_config(ws_folder), "cpucluster")
    assert target.kind == "ray"
    assert {key: target.config[key] for key in ("address", "num_cpus", "resources", "max_concurrent_runs", "runtime_env")} == {
        "address": ray_cluster.address, "num_cpus": 1, "resources": {"accelerator": 0.5}, "max_concurrent_runs": 4,
        "runtime_env": {"env_vars": {"DATA": "/data"}},
    }

    status = _runhistory("compute", "status", "cpucluster", "-o", "json", "-w", str(ws_folder), cwd=isolated)
    assert status.returncode == 0, status.stderr
    data = json.loads(status.stdout)
    assert (data["name"], data["kind"], data["provisioning_state"]) == ("cpucluster", "ray", "Succeeded")
    assert (data["running_runs"], data["queued_runs"], data["max_concurrent_runs"]) == (0, 0, 4)
    assert data["cluster"]["nodes"] == 1 and data["cluster"]["cpus_total"] == 2
    assert 0 <= data["cluster"]["cpus_free"] <= 2 and data["cluster"]["gpus_total"] == 0

    table = _runhistory("compute", "status", "cpucluster", "-w", str(ws_folder), cwd=isolated)
    assert table.returncode == 0, table.stderr
    assert row_of(table.stdout, "Kind") == ["Kind", "ray"]
    assert row_of(table.stdout, "Address") == ["Address", ray_cluster.address]
    assert row_of(table.stdout, "Nodes") == ["Nodes", "1"]
    assert row_of(table.stdout, "CPUs")[-3:] == ["free", "of", "2"]
    assert row_of(table.stdout, "GPUs")[-3:] == ["free", "of", "0"]

    listed = _runhistory("compute", "list", "-w", str(ws_folder), cwd=isolated)
    assert listed.returncode == 0, listed.stderr
    assert row_of(listed.stdout, "cpucluster") == ["cpucluster", "ray", "4", ray_cluster.address, "0", "0"]


def test_create_ray_against_a_closed_port_is_one_sentence_naming_it_and_registers_nothing(
    ws_folder: Path, isolated: Path
) -> None:
    address = f"http://127.0.0.1:{_closed_port()}"
    result = _runhistory("compute", "create-ray", "cpucluster", "--address", address, "-w", str(ws_folder), cwd=isolated)
    _assert_one_sentence(result, f"The Ray cluster at {address} ")
    assert "Traceback" not in result.stderr
    assert [target.name for target in ComputeTarget.list(Workspace.from_config(ws_folder))] == ["local"]


def test_status_of_a_ray_target_whose_head_is_gone_is_one_sentence_naming_it(ws_folder: Path, isolated: Path) -> None:
    address = f"http://127.0.0.1:{_closed_port()}"
    ws = Workspace.from_config(ws_folder)
    # registered while its head answered (the store takes it as it is); the head has gone since
    ws.store.save_compute_target("gone", "ray", {"address": address, "num_cpus": 1, "max_concurrent_runs": None})
    _assert_one_sentence(_runhistory("compute", "status", "gone", "-w", str(ws_folder), cwd=isolated), address)
    listed = _runhistory("compute", "list", "-w", str(ws_folder), cwd=isolated)  # list asks no cluster
    assert listed.returncode == 0, listed.stderr
    assert row_of(listed.stdout, "gone") == ["gone", "ray", "any", address, "0", "0"]
