"""The Ray cluster fixture itself: the head runs jobs, workers join and leave, a killed worker is
lost with its job, and a cluster whose launcher dies is cleaned up."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import psutil
from ray.job_submission import JobStatus, JobSubmissionClient

from tests.helpers import start_python, wait_until
from tests.ray_cluster import RayCluster

REPO_ROOT = Path(__file__).resolve().parents[2]
TERMINAL = {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED}


def _wait_for_status(client: JobSubmissionClient, job_id: str, wanted: set[JobStatus], timeout: float) -> JobStatus:
    def reached() -> JobStatus | None:
        status = client.get_job_status(job_id)
        return status if status in wanted else None

    return wait_until(reached, timeout, interval=0.1, what=f"job {job_id} to reach one of {sorted(wanted)}")


def test_the_head_runs_a_job_to_succeeded(ray_cluster: RayCluster) -> None:
    client = JobSubmissionClient(ray_cluster.address)
    job_id = client.submit_job(entrypoint='python -c "print(1)"', entrypoint_num_cpus=1)
    assert _wait_for_status(client, job_id, TERMINAL, timeout=60) == JobStatus.SUCCEEDED
    assert "1" in client.get_job_logs(job_id).splitlines()


def test_a_job_runs_with_this_venvs_python(ray_cluster: RayCluster) -> None:
    client = JobSubmissionClient(ray_cluster.address)
    job_id = client.submit_job(entrypoint='python -c "import sys; print(sys.prefix)"')
    assert _wait_for_status(client, job_id, TERMINAL, timeout=60) == JobStatus.SUCCEEDED
    assert sys.prefix in client.get_job_logs(job_id).splitlines()


def test_an_added_worker_shows_up_and_a_killed_one_leaves_failing_its_job(ray_cluster: RayCluster) -> None:
    before = ray_cluster.alive_nodes()
    worker = ray_cluster.add_worker(num_cpus=1, resources={"worker": 1})
    try:
        assert ray_cluster.alive_nodes() == before + 1
        assert ray_cluster.node_state(worker) == "ALIVE"
        client = JobSubmissionClient(ray_cluster.address)
        job_id = client.submit_job(
            entrypoint='python -c "import time; print(1, flush=True); time.sleep(120)"',
            entrypoint_resources={"worker": 1},
        )
        _wait_for_status(client, job_id, {JobStatus.RUNNING}, timeout=60)
        assert client.get_job_info(job_id).driver_node_id == worker.node_id

        killed = time.monotonic()
        worker.kill()
        assert not worker.processes()
        wait_until(lambda: ray_cluster.node_state(worker) != "ALIVE", 15, interval=0.2, what="the killed node to leave")
        assert ray_cluster.node_state(worker) == "DEAD"
        assert ray_cluster.alive_nodes() == before
        assert _wait_for_status(client, job_id, TERMINAL, timeout=30) == JobStatus.FAILED
        assert time.monotonic() - killed < 30
    finally:
        worker.stop()


def test_a_stopped_worker_leaves_and_leaves_no_process(ray_cluster: RayCluster) -> None:
    worker = ray_cluster.add_worker(num_cpus=1)
    assert worker.processes()
    worker.stop()
    assert not worker.processes()
    assert worker.process.returncode is not None
    wait_until(lambda: ray_cluster.node_state(worker) == "DEAD", 15, interval=0.2, what="the stopped node to leave")


def test_a_cluster_whose_launcher_is_killed_is_cleaned_up() -> None:
    launcher = start_python(
        """
        import time
        from tests.ray_cluster import start_ray_cluster
        cluster = start_ray_cluster(num_cpus=1)
        print(cluster.temp_dir, cluster.head.process.pid, flush=True)
        time.sleep(300)
        """,
        PYTHONPATH=str(REPO_ROOT),
    )
    try:
        line = launcher.stdout.readline()
        assert line, f"the launcher failed: {launcher.communicate(timeout=30)[1]}"
        temp_dir, head_pid = line.split()
        node = psutil.Process(int(head_pid))
        processes = [node, *node.children(recursive=True)]
    finally:
        launcher.kill()
        launcher.wait()
    wait_until(lambda: not Path(temp_dir).exists(), 30, interval=0.2, what=f"the watchdog to remove {temp_dir}")
    assert not [p for p in processes if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
