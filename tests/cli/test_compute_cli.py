"""``runhistory compute list|create-local|create-ray|status`` on local targets (and the option
checks of create-ray that refuse before any cluster is asked; tests/compute has the real Ray ones)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runhistory import Workspace
from runhistory.compute import ComputeTarget, LocalCompute
from runhistory.store.base import JOB_RUN_TYPE, RunStatus

from tests.cli.support import assert_fits, assert_one_line_error, row_of
from tests.postgres import BACKENDS


@pytest.fixture
def workspace(ws: Workspace) -> Workspace:
    """A fresh workspace (``ws``: embedded, or PostgreSQL where a test says ``both_stores``)."""
    return ws


def _ref(workspace: Workspace) -> str:
    """What ``--workspace`` names the workspace by."""
    return workspace.tracking_uri


def _job_runs(ws: Workspace, target: str, *statuses: str) -> None:
    """One job run of ``target`` with each status, as a submitter leaves them."""
    experiment = ws.store.get_or_create_experiment("jobs")
    for status in statuses:
        ws.store.create_run(experiment.id, run_type=JOB_RUN_TYPE, status=status, target=target)


def test_create_local_registers_the_target_and_says_what_it_registered(invoke, workspace, tmp_path):
    jobs = tmp_path / "jobs"
    result = invoke(
        "compute", "create-local", "cpu2", "--max-concurrent-runs", "2", "--working-directory", str(jobs),
        "--keep-working-folders", "-w", _ref(workspace),
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Registered compute target 'cpu2' (local, working folders in ")
    assert str(jobs) in result.stdout and "at most 2 jobs at once" in result.stdout
    assert "runhistory submit -t cpu2" in result.stdout
    target = ComputeTarget(workspace, "cpu2")
    assert (target.kind, target.max_concurrent_runs, target.keep_working_folders) == ("local", 2, True)
    assert target.jobs_directory == jobs.resolve()


def test_create_local_again_replaces_the_target(invoke, workspace):
    assert invoke("compute", "create-local", "cpu2", "--max-concurrent-runs", "2", "-w", _ref(workspace)).exit_code == 0
    result = invoke("compute", "create-local", "cpu2", "-w", _ref(workspace))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Replaced compute target 'cpu2'") and "no limit on jobs at once" in result.stdout
    assert ComputeTarget(workspace, "cpu2").max_concurrent_runs is None


def test_create_local_gives_the_registered_target_as_json(invoke, workspace):
    result = invoke("compute", "create-local", "cpu3", "--max-concurrent-runs", "3", "-o", "json", "-w", _ref(workspace))
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert {key: data[key] for key in ("name", "kind", "max_concurrent_runs", "running_runs", "queued_runs")} == {
        "name": "cpu3", "kind": "local", "max_concurrent_runs": 3, "running_runs": 0, "queued_runs": 0,
    }
    assert data["config"] == {"max_concurrent_runs": 3, "working_directory": None, "keep_working_folders": False}


def test_the_built_in_local_target_takes_new_settings(invoke, workspace):
    result = invoke("compute", "create-local", "local", "--max-concurrent-runs", "1", "-w", _ref(workspace))
    assert result.exit_code == 0, result.output
    assert ComputeTarget(workspace, "local").max_concurrent_runs == 1


def test_create_local_without_a_workspace_makes_the_default_one(invoke, isolated):
    result = invoke("compute", "create-local", "cpu2")
    assert result.exit_code == 0, result.output
    assert ComputeTarget(Workspace.from_config(isolated), "cpu2").kind == "local"


def test_list_shows_every_target_with_its_limit_and_its_jobs(invoke, workspace, tmp_path):
    config = LocalCompute.provisioning_configuration(max_concurrent_runs=2, working_directory=str(tmp_path / "jobs"))
    ComputeTarget.create(workspace, "cpu2", config)
    _job_runs(workspace, "cpu2", RunStatus.RUNNING, RunStatus.STARTING, RunStatus.QUEUED, RunStatus.COMPLETED)
    _job_runs(workspace, "local", RunStatus.QUEUED)
    result = invoke("compute", "list", "-w", _ref(workspace))
    assert result.exit_code == 0, result.output
    assert result.stdout.split()[:6] == ["name", "kind", "at", "once", "where", "running"]
    assert row_of(result.stdout, "local") == ["local", "local", "any", "this", "machine", "0", "1"]
    assert row_of(result.stdout, "cpu2")[:3] == ["cpu2", "local", "2"]
    assert result.stdout.index("local ") < result.stdout.index("cpu2 ")  # local first, then by name
    assert_fits(result.stdout)  # a long folder folds within its column
    wide = invoke("compute", "list", "-w", _ref(workspace), env={"COLUMNS": "250"}).stdout
    assert row_of(wide, "cpu2") == ["cpu2", "local", "2", str(tmp_path / "jobs"), "2", "1"]


@BACKENDS
def test_list_gives_json_and_csv_for_scripts(invoke, workspace):
    invoke("compute", "create-local", "cpu2", "--max-concurrent-runs", "2", "-w", _ref(workspace))
    _job_runs(workspace, "cpu2", RunStatus.QUEUED, RunStatus.QUEUED)
    records = json.loads(invoke("compute", "list", "-o", "json", "-w", _ref(workspace)).stdout)
    assert [(r["name"], r["kind"], r["max_concurrent_runs"], r["queued_runs"]) for r in records] == [
        ("local", "local", None, 0),
        ("cpu2", "local", 2, 2),
    ]
    assert records[1]["config"]["max_concurrent_runs"] == 2 and records[1]["created_time"] > 0
    lines = invoke("compute", "list", "-o", "csv", "-w", _ref(workspace)).stdout.splitlines()
    assert lines[0] == "name,kind,max_concurrent_runs,address,working_directory,running_runs,queued_runs,created_time"
    assert lines[2].startswith("cpu2,local,2,,,0,2,")


def test_the_root_workspace_option_reaches_the_compute_commands(invoke, workspace):
    assert invoke("-w", _ref(workspace), "compute", "create-local", "cpu2").exit_code == 0
    assert row_of(invoke("-w", _ref(workspace), "compute", "list").stdout, "cpu2")[:2] == ["cpu2", "local"]


@BACKENDS
def test_status_shows_the_state_and_the_jobs_of_a_target(invoke, workspace):
    invoke("compute", "create-local", "cpu2", "--max-concurrent-runs", "2", "-w", _ref(workspace))
    _job_runs(workspace, "cpu2", RunStatus.RUNNING, RunStatus.QUEUED, RunStatus.QUEUED, RunStatus.FAILED)
    result = invoke("compute", "status", "cpu2", "-w", _ref(workspace))
    assert result.exit_code == 0, result.output
    assert row_of(result.stdout, "Target") == ["Target", "cpu2"]
    assert row_of(result.stdout, "State") == ["State", "Succeeded"]
    assert row_of(result.stdout, "At") == ["At", "once", "at", "most", "2", "jobs"]
    assert row_of(result.stdout, "Running") == ["Running", "1"]
    assert row_of(result.stdout, "Queued") == ["Queued", "2"]
    assert "Nodes" not in result.stdout  # a local target has no cluster
    data = json.loads(invoke("compute", "status", "cpu2", "-o", "json", "-w", _ref(workspace)).stdout)
    assert data == {
        "name": "cpu2", "kind": "local", "provisioning_state": "Succeeded", "running_runs": 1, "queued_runs": 2,
        "max_concurrent_runs": 2, "cluster": None,
    }


def test_status_of_the_built_in_local_target_needs_no_registering(invoke, workspace):
    data = json.loads(invoke("compute", "status", "local", "-o", "json", "-w", _ref(workspace)).stdout)
    assert (data["name"], data["kind"], data["max_concurrent_runs"]) == ("local", "local", None)


def test_status_of_an_unknown_target_is_one_line_naming_the_known_ones(invoke, workspace):
    invoke("compute", "create-local", "cpu2", "-w", _ref(workspace))
    assert_one_line_error(
        invoke("compute", "status", "gpu", "-w", _ref(workspace)),
        "No compute target 'gpu'", "(it has: local, cpu2)", "runhistory compute create-local",
    )


@pytest.mark.parametrize("limit", ["-1", "0", "two"])
def test_a_bad_max_concurrent_runs_is_one_line_and_registers_nothing(invoke, workspace, limit):
    for command in (["create-local", "cpu2"], ["create-ray", "cpu2", "--address", "http://127.0.0.1:9"]):
        result = invoke("compute", *command, "--max-concurrent-runs", limit, "-w", _ref(workspace))
        assert_one_line_error(result, "--max-concurrent-runs", limit)
    assert [target.name for target in ComputeTarget.list(workspace)] == ["local"]


def test_a_bad_target_name_is_one_line(invoke, workspace):
    assert_one_line_error(invoke("compute", "create-local", "no spaces", "-w", _ref(workspace)), "'no spaces'")


def test_the_local_target_cannot_become_a_ray_one(invoke, workspace):
    result = invoke("compute", "create-ray", "local", "--address", "http://127.0.0.1:9", "-w", _ref(workspace))
    assert_one_line_error(result, "'local' is built in")


@pytest.mark.parametrize(
    "options, fragments",
    [
        (["--address", "head:8265"], ["address must be", "'head:8265'"]),
        (["--resource", "accelerator"], ["--resource", "'accelerator' is not NAME=AMOUNT"]),
        (["--resource", "a=lots"], ["--resource", "'a=lots' is not NAME=AMOUNT"]),
        (["--resource", "a=1", "--resource", "a=2"], ["--resource", "'a' is given twice"]),
        (["--resource", "CPU=2"], ["num_cpus, num_gpus and memory have their own", "'CPU'"]),
        (["--num-cpus", "-1"], ["--num-cpus", "-1"]),
        (["--num-gpus", "many"], ["--num-gpus", "many"]),
        (["--memory", "-5"], ["--memory", "-5"]),
        (["--runtime-env", "{pip"], ["--runtime-env", "is not JSON"]),
        (["--runtime-env", "[1, 2]"], ["--runtime-env", "not a JSON object"]),
        (["--runtime-env", "@missing.json"], ["--runtime-env", "cannot read", "missing.json"]),
        (["--runtime-env", '{"working_dir": "."}'], ["working_dir is not used"]),
        (["--runtime-env", '{"env_vars": {"A": 1}}'], ["env_vars must map names to strings"]),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) and value[0].startswith("--") else "",
)
def test_bad_create_ray_options_are_one_line_before_any_cluster_is_asked(invoke, workspace, options, fragments):
    if "--address" not in options:
        options = ["--address", "http://127.0.0.1:9", *options]  # no head there: the options are refused first
    assert_one_line_error(invoke("compute", "create-ray", "cpucluster", *options, "-w", _ref(workspace)), *fragments)
    assert [target.name for target in ComputeTarget.list(workspace)] == ["local"]


def test_create_ray_needs_an_address(invoke, workspace):
    assert_one_line_error(invoke("compute", "create-ray", "cpucluster", "-w", _ref(workspace)), "--address")


def test_reading_commands_create_no_workspace(invoke, isolated):
    assert_one_line_error(invoke("compute", "list"), "No runhistory workspace found")
    assert not any(isolated.iterdir())
