"""Scenario 1 on a real Ray cluster, with only the compute target changed; and a job against a server
workspace, whose supervisor reaches everything through the server (no shared disk assumed)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.jobs.support import EXAMPLES, counts_seen_while_running, scalar_counts, write_script
from tests.ray_cluster import RayCluster
from tests.server.support import ServerProcess


def test_scenario_1_on_ray_as_written_but_for_the_target(
    isolated: Path, ray_cluster: RayCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    # --- scenario 1, as in scenarios.md, with a RayCompute target ---
    from os import path, makedirs
    experiment_name = 'tensorboard-demo'
    exp_dir = './sample_projects/' + experiment_name
    if not path.exists(exp_dir):
        makedirs(exp_dir)
    shutil.copy(EXAMPLES / "tensorboard_demo" / "train.py", exp_dir)

    import os
    from runhistory import Workspace, Experiment
    ws = Workspace.from_config()
    logs_dir = os.path.join(os.curdir, "logs")
    arguments_list = ["--log_dir", logs_dir]
    exp = Experiment(ws, experiment_name)

    from runhistory.compute import ComputeTarget, RayCompute
    cluster_name = "cpucluster"
    if cluster_name in ws.compute_targets and ws.compute_targets[cluster_name].kind == "ray":
        compute_target = ws.compute_targets[cluster_name]
    else:
        compute_target = ComputeTarget.create(ws, cluster_name, RayCompute.provisioning_configuration(address=ray_cluster.address, num_cpus=1))
    compute_target.wait_for_completion(show_output=True)

    from runhistory.train.dnn import TensorFlow      # an alias of Estimator
    tf_estimator = TensorFlow(source_directory=exp_dir, compute_target=compute_target,
                              entry_script='train.py', script_params={"--log_dir": "./logs"})
    run = exp.submit(tf_estimator)

    from runhistory.tensorboard import Tensorboard
    tb = Tensorboard([run], port=0)
    url = tb.start()          # while the job still runs on the cluster: its curves grow live
    seen_while_running = counts_seen_while_running(run, url, "tensorboard-demo-1", "loss/train")
    run.wait_for_completion(show_output=True)
    assert len(seen_while_running) >= 3, f"points seen while running: {sorted(seen_while_running)}"
    assert tb.wait_for_runs(timeout=30)
    final = scalar_counts(url, "tensorboard-demo-1")
    tb.stop()

    assert final == {"loss/train": 20, "loss/test": 20, "accuracy/train": 20, "accuracy/test": 20}
    assert arguments_list == ["--log_dir", os.path.join(".", "logs")]
    out = capsys.readouterr().out
    assert out.startswith(f"Compute target 'cpucluster' (ray at {ray_cluster.address}): Succeeded, ")
    assert "epoch 20/20: loss" in out and out.index("epoch 20/20") < out.index("Status: Completed")
    assert {"outputs/model.npz", "snapshot/train.py", "system_logs/driver.log"} <= set(run.get_file_names())
    curves = run.get_metrics()  # the supervisor on the cluster stored the job's event files as its metrics too
    assert {tag: len(curves[tag]) for tag in final} == final


def test_a_job_against_a_server_workspace(tmp_path: Path, ray_cluster: RayCluster) -> None:
    from runhistory import Experiment, ScriptRunConfig, Workspace
    from runhistory.compute import ComputeTarget, RayCompute

    server = ServerProcess(tmp_path / "server").start()
    try:
        ws = Workspace(server.url)
        ComputeTarget.create(ws, "cluster", RayCompute.provisioning_configuration(address=ray_cluster.address, num_cpus=1))
        source = tmp_path / "project"
        write_script(source, "job.py", """
            import os
            from runhistory import Run
            run = Run.get_context()
            print("tracking", os.environ["RUNHISTORY_TRACKING_URI"], "artifacts", os.environ["RUNHISTORY_ARTIFACT_URI"])
            with run.child_run("child") as child:
                child.log("inner", 1.5)
            for step in range(5):
                run.log("loss", 1.0 / (step + 1))
            os.makedirs("outputs", exist_ok=True)
            open("outputs/result.txt", "w").write("done")
        """)
        run = Experiment(ws, "remote").submit(ScriptRunConfig(source, "job.py", compute_target="cluster"))
        assert run.wait_for_completion()["status"] == "Completed"
        driver = ws.artifacts.read(run.id, "system_logs/driver.log").decode()
        assert f"tracking {server.url} artifacts {server.url}" in driver  # nothing but the server
        assert run.get_metrics()["loss"] == [1.0, 0.5, 1 / 3, 0.25, 0.2]
        assert [child.get_metrics() for child in run.get_children()] == [{"inner": 1.5}]
        assert ws.artifacts.read(run.id, "outputs/result.txt") == b"done"
    finally:
        server.stop()
