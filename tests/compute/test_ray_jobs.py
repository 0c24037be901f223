"""Jobs on a real Ray cluster: queueing in runhistory, statuses that follow the job, cancel, failures."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from ray.job_submission import JobSubmissionClient

from runhistory import Experiment, ScriptRunConfig, Workspace
from runhistory.compute import ComputeTarget, RayCompute
from runhistory.compute.ray import unreachable_workspace
from runhistory.core.errors import ComputeUnavailableError, JobConfigError
from runhistory.store.base import RunFilter
from tests.helpers import run_python
from tests.server.support import free_port
from tests.jobs.support import wait_for_status, wait_until, write_script
from tests.ray_cluster import RayCluster

JOURNAL = "journal.txt"  # each script appends "start RUN t" and "end RUN t" here (the nodes are this machine)


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace.create(tmp_path / "ws")


@pytest.fixture
def cluster_target(ws: Workspace, ray_cluster: RayCluster) -> ComputeTarget:
    return ComputeTarget.create(ws, "cpucluster", RayCompute.provisioning_configuration(address=ray_cluster.address, num_cpus=1))


@pytest.fixture
def source(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    journal = tmp_path / JOURNAL
    write_script(folder, "work.py", f"""
        import os, sys, time
        run_id = os.environ["RUNHISTORY_RUN_ID"]
        def note(what):
            with open({str(journal)!r}, "a") as journal:
                journal.write(f"{{what}} {{run_id}} {{time.time()}}\\n")
        note("start")
        print("started", run_id, flush=True)
        time.sleep(float(sys.argv[1]) if len(sys.argv) > 1 else 0)
        note("end")
        sys.exit(int(sys.argv[2]) if len(sys.argv) > 2 else 0)
    """)
    return folder


def journal_of(tmp_path: Path) -> list[tuple[str, str, float]]:
    path = tmp_path / JOURNAL
    lines = path.read_text().split("\n") if path.exists() else []
    return [(what, run_id, float(at)) for what, run_id, at in (line.split() for line in lines if line)]


def most_at_once(journal: list[tuple[str, str, float]]) -> int:
    running, most = 0, 0
    for what, _, _ in sorted(journal, key=lambda entry: entry[2]):
        running += 1 if what == "start" else -1
        most = max(most, running)
    return most


def file_text(run, name: str) -> str:
    return run.workspace.artifacts.read(run.id, name).decode()


def submit(exp: Experiment, source: Path, *arguments: object, target: str = "cpucluster"):
    return exp.submit(ScriptRunConfig(source, "work.py", arguments=list(arguments), compute_target=target))


def test_six_jobs_on_two_cpus_run_two_at_a_time_in_order_each_once(
    ws: Workspace, cluster_target: ComputeTarget, source: Path, tmp_path: Path, ray_cluster: RayCluster
) -> None:
    ray_jobs = JobSubmissionClient(ray_cluster.address)
    exp = Experiment(ws, "queue")
    runs = [submit(exp, source, 1.5) for _ in range(6)]
    statuses = [run.get_status() for run in runs]
    assert statuses.count("Queued") == 4, statuses  # the cluster holds 2 jobs of 1 CPU: the rest wait with us
    assert all(status == "Queued" for status in statuses[2:])
    status = cluster_target.get_status()
    assert (status.running_runs, status.queued_runs) == (2, 4)
    assert status.cluster is not None and status.cluster["cpus_total"] == 2 and status.cluster["nodes"] >= 1
    for run in runs:
        assert run.wait_for_completion()["status"] == "Completed"
    journal = journal_of(tmp_path)
    starts = [run_id for what, run_id, _ in sorted(journal, key=lambda entry: entry[2]) if what == "start"]
    assert sorted(starts) == sorted(run.id for run in runs)  # each started once
    # the queued ones went to Ray in submission order (two admitted together may start in either order)
    handed_to_ray = [ray_jobs.get_job_info(run.id).start_time for run in runs[2:]]
    assert handed_to_ray == sorted(handed_to_ray)
    assert most_at_once(journal) <= 2
    for run in runs:
        assert file_text(run, "system_logs/supervisor.log").count("Started python") == 1


def test_jobs_go_on_after_the_submitter_exits(ws: Workspace, cluster_target: ComputeTarget, source: Path, tmp_path: Path) -> None:
    out = run_python(f"""
        from runhistory import Experiment, ScriptRunConfig, Workspace
        ws = Workspace({str(tmp_path / "ws")!r})
        exp = Experiment(ws, "orphans")
        for _ in range(4):
            run = exp.submit(ScriptRunConfig({str(source)!r}, "work.py", arguments=[1], compute_target="cpucluster"))
            print(run.id, flush=True)
    """).stdout.split()
    assert len(out) == 4
    runs = [ws.get_run(run_id) for run_id in out]
    # Only reads from here (no wait_for_completion, which admits too): the ending jobs admit the rest.
    wait_until(lambda: all(run.get_status() == "Completed" for run in runs), timeout=90, what="all 4 jobs Completed")
    assert sorted(run_id for what, run_id, _ in journal_of(tmp_path) if what == "start") == sorted(out)


def test_cancel_a_queued_and_a_running_job(ws: Workspace, cluster_target: ComputeTarget, source: Path, tmp_path: Path) -> None:
    exp = Experiment(ws, "cancel")
    running = [submit(exp, source, 60) for _ in range(2)]
    queued = submit(exp, source, 60)
    assert queued.get_status() == "Queued"
    queued.cancel()
    assert queued.get_status() == "Canceled"  # at once: it never reached Ray
    wait_for_status(running[0], "Running")
    wait_until(lambda: any(entry[1] == running[0].id for entry in journal_of(tmp_path)), what="the script to start")
    started = time.monotonic()
    running[0].cancel()
    assert wait_for_status(running[0], "Canceled", timeout=30) == "Canceled"
    assert time.monotonic() - started < 15
    running[1].cancel()
    wait_for_status(running[1], "Canceled", timeout=30)
    time.sleep(1)
    assert not any(what == "end" for what, _, _ in journal_of(tmp_path))  # no script ran to its end
    assert queued.id not in {run_id for _, run_id, _ in journal_of(tmp_path)}
    jobs = cluster_target.cluster
    wait_until(lambda: str(jobs.job(running[0].id).status.value) == "STOPPED", timeout=30, what="Ray to say STOPPED")
    assert jobs.job(queued.id) is None


def test_a_script_that_exits_3_fails_with_its_exit_code(ws: Workspace, cluster_target: ComputeTarget, source: Path) -> None:
    run = submit(Experiment(ws, "exit3"), source, 0, 3)
    details = run.wait_for_completion(raise_on_error=False)
    assert details["status"] == "Failed"
    assert run.record.error["exit_code"] == 3
    assert "exited with code 3" in run.record.error["message"]
    assert "started" in file_text(run, "system_logs/driver.log")


def test_a_job_whose_node_dies_reads_failed(ws: Workspace, ray_cluster: RayCluster, source: Path, tmp_path: Path) -> None:
    worker = ray_cluster.add_worker(num_cpus=1, resources={"worker": 1})
    config = RayCompute.provisioning_configuration(address=ray_cluster.address, num_cpus=1, resources={"worker": 1})
    ComputeTarget.create(ws, "workers", config)
    run = submit(Experiment(ws, "node-loss"), source, 120, target="workers")
    wait_for_status(run, "Running", timeout=60)
    wait_until(lambda: journal_of(tmp_path), what="the script to start")
    worker.kill()
    killed = time.monotonic()
    assert wait_for_status(run, "Failed", "Completed", "Canceled", timeout=30) == "Failed"
    assert time.monotonic() - killed <= 15
    assert run.record.error["code"] == "SupervisorLost"


def test_an_unreachable_head_is_one_sentence_at_create_and_at_submit(ws: Workspace, source: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ComputeUnavailableError) as refused:
        ComputeTarget.create(ws, "gone", RayCompute.provisioning_configuration(address=dead))
    assert dead in str(refused.value) and "\n" not in str(refused.value)
    assert "gone" not in ws.compute_targets
    ws.store.save_compute_target("gone", "ray", RayCompute.provisioning_configuration(address=dead).to_dict())
    exp = Experiment(ws, "unreachable")
    with pytest.raises(ComputeUnavailableError) as refused:
        submit(exp, source, target="gone")
    assert dead in str(refused.value) and "\n" not in str(refused.value)
    assert ws.store.list_runs(RunFilter(experiment_id=exp.id)) == []


def test_a_job_bigger_than_the_cluster_is_refused_at_submit(ws: Workspace, ray_cluster: RayCluster, source: Path) -> None:
    ComputeTarget.create(ws, "big", RayCompute.provisioning_configuration(address=ray_cluster.address, num_cpus=64))
    with pytest.raises(JobConfigError, match="needs 64 CPU.*would wait forever"):
        submit(Experiment(ws, "big"), source, target="big")


def test_a_workspace_on_this_machine_is_refused_for_nodes_elsewhere(ws: Workspace) -> None:
    problem = unreachable_workspace(ws.tracking_uri, ws.artifact_uri, ["127.0.0.1", "10.9.9.9"])
    assert problem is not None and "10.9.9.9" in problem and "runhistory server" in problem
    assert unreachable_workspace(ws.tracking_uri, ws.artifact_uri, ["127.0.0.1"]) is None
    assert unreachable_workspace("http://10.0.0.2:5000", "http://10.0.0.2:5000", ["10.9.9.9"]) is None
    assert "127.0.0.1:5000" in unreachable_workspace("http://127.0.0.1:5000", "http://127.0.0.1:5000", ["10.9.9.9"])


def test_bad_settings_are_one_sentence(ray_cluster: RayCluster) -> None:
    bad = [
        {"address": "127.0.0.1:8265"},
        {"num_cpus": -1},
        {"num_gpus": "one"},
        {"memory": 1.5},
        {"resources": {"CPU": 2}},
        {"max_concurrent_runs": 0},
        {"runtime_env": {"working_dir": "."}},
        {"runtime_env": {"env_vars": {"A": 1}}},
        {"runtime_env": {"pip": 5}},
        {"runtime_env": {"pip": "no-such-requirements.txt"}},
        {"resources": {"x" * 300: 1}},
        {"resources": {"bad\nname": 1}},
    ]
    for settings in bad:
        with pytest.raises(JobConfigError) as refused:
            RayCompute.provisioning_configuration(**{"address": ray_cluster.address, **settings})
        assert "\n" not in str(refused.value), settings


def test_a_run_admitted_by_an_admitter_that_died_before_submitting_is_failed(
    ws: Workspace, cluster_target: ComputeTarget, source: Path
) -> None:
    exp = Experiment(ws, "lost")
    blockers = [submit(exp, source, 30) for _ in range(2)]  # the cluster is full: the next one is held
    held = submit(exp, source)
    assert held.get_status() == "Queued"
    assert ws.store.admit_queued_jobs("cpucluster", 3) == [held.id]  # admitted, and its admitter "dies" here
    assert cluster_target.admit_queued_runs() == []
    assert held.get_status() == "Failed"
    assert held.record.error["code"] == "RayJobLost" and "does not know" in held.record.error["message"]
    for run in blockers:
        run.cancel()
        wait_for_status(run, "Canceled", timeout=30)


def test_a_job_whose_runtime_env_cannot_be_set_up_fails_with_rays_words(
    ws: Workspace, ray_cluster: RayCluster, source: Path
) -> None:
    config = RayCompute.provisioning_configuration(
        address=ray_cluster.address, num_cpus=1, runtime_env={"pip": ["--no-index", "runhistory-no-such-package-7f3a"]}  # pip fails at once, offline
    )
    ComputeTarget.create(ws, "broken", config)
    run = submit(Experiment(ws, "broken-env"), source, target="broken")
    details = run.wait_for_completion(raise_on_error=False, timeout=180)
    assert details["status"] == "Failed"
    error = run.record.error
    assert error["code"] == "RayJobFailed" and error["error_type"]
    assert "before its supervisor reported" in error["message"]


def test_waiting_for_a_head_that_does_not_answer_says_so_then_names_it(
    ws: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    ws.store.save_compute_target("gone", "ray", RayCompute.provisioning_configuration(address=dead).to_dict())
    with pytest.raises(ComputeUnavailableError, match=dead):
        ComputeTarget(ws, "gone").wait_for_completion(show_output=True, timeout_in_minutes=0.03)
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and dead in out and "Waiting up to 0.03 min" in out


def test_waiting_for_a_live_head_shows_its_resources(cluster_target: ComputeTarget, capsys: pytest.CaptureFixture[str]) -> None:
    cluster_target.wait_for_completion(show_output=True, min_node_count=1)
    out = capsys.readouterr().out
    assert "Succeeded" in out and "/2 CPUs free" in out
