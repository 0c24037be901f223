"""Scenario 1 of scenarios.md: a job that writes TensorBoard logs itself, watched live in TensorBoard."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest

from tests.jobs.support import EXAMPLES, counts_seen_while_running, scalar_counts, wait_until

def test_scenario_1_as_written_but_for_imports(isolated: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # --- scenario 1, as in scenarios.md ---
    from os import path, makedirs
    experiment_name = 'tensorboard-demo'
    exp_dir = './sample_projects/' + experiment_name
    if not path.exists(exp_dir):
        makedirs(exp_dir)
    shutil.copy(EXAMPLES / "tensorboard_demo" / "train.py", exp_dir)  # (copy the training script into exp_dir here)

    import os
    from runhistory import Workspace, Experiment
    ws = Workspace.from_config()
    logs_dir = os.path.join(os.curdir, "logs")
    arguments_list = ["--log_dir", logs_dir]
    exp = Experiment(ws, experiment_name)

    from runhistory.compute import ComputeTarget, LocalCompute
    cluster_name = "cpucluster"
    if cluster_name in ws.compute_targets:
        compute_target = ws.compute_targets[cluster_name]
    else:
        compute_target = ComputeTarget.create(ws, cluster_name, LocalCompute.provisioning_configuration())
    compute_target.wait_for_completion(show_output=True)

    from runhistory.train.dnn import TensorFlow      # an alias of Estimator
    tf_estimator = TensorFlow(source_directory=exp_dir, compute_target=compute_target,
                              entry_script='train.py', script_params={"--log_dir": "./logs"})
    run = exp.submit(tf_estimator)

    from runhistory.tensorboard import Tensorboard
    tb = Tensorboard([run], port=0)  # the one change: any free port, as other tests may hold 6006
    url = tb.start()          # while the job still runs: its curves grow live
    # --- (what a user watching TensorBoard now sees: the curves grow while the job runs) ---
    seen_while_running = counts_seen_while_running(run, url, "tensorboard-demo-1", "loss/train")
    # --- scenario 1 goes on ---
    run.wait_for_completion(show_output=True)
    assert len(seen_while_running) >= 3, f"points seen while running: {sorted(seen_while_running)}"
    assert tb.wait_for_runs(timeout=30)  # then what TensorBoard shows is final
    final = scalar_counts(url, "tensorboard-demo-1")
    tb.stop()

    assert final == {"loss/train": 20, "loss/test": 20, "accuracy/train": 20, "accuracy/test": 20}
    assert arguments_list == ["--log_dir", os.path.join(".", "logs")]
    out = capsys.readouterr().out
    assert out.startswith("Compute target 'cpucluster' (local): Succeeded")
    assert f"RunId: {run.id}" in out and "epoch 1/20: loss" in out and "epoch 20/20: loss" in out
    assert out.index("epoch 20/20") < out.index("Execution Summary") < out.index("Status: Completed")
    assert run.status == "Completed"
    names = run.get_file_names()
    assert any(name.startswith("logs/events.out.tfevents.") for name in names)
    assert {"outputs/model.npz", "snapshot/train.py", "system_logs/driver.log"} <= set(names)


def test_a_pytorch_job_writing_native_event_files_reaches_tensorboard_while_running(
    isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from runhistory import Experiment, Workspace
    from runhistory.tensorboard import Tensorboard
    from runhistory.train.dnn import PyTorch

    project = isolated / "torch-project"
    project.mkdir()
    shutil.copy(EXAMPLES / "tensorboard_demo" / "train_torch.py", project)
    ws = Workspace.from_config()
    estimator = PyTorch(source_directory=project, entry_script="train_torch.py",
                        script_params={"--log_dir": "./logs", "--epochs": 6, "--epoch_sleep": 0.4})
    run = Experiment(ws, "torch-demo").submit(estimator)
    with Tensorboard([run], port=0) as tb:
        assert tb.url is not None
        growing = wait_until(lambda: run.get_status() == "Running" and
                             scalar_counts(tb.url, "torch-demo-1").get("accuracy/test", 0) >= 2, timeout=60,
                             what="TensorBoard to show two epochs while the job runs")
        assert growing and run.get_status() == "Running"
        histograms = httpx.get(f"{tb.url.rstrip('/')}/data/plugin/histograms/tags", timeout=30).json()
        assert {"0.weight", "2.weight"} <= set(histograms["torch-demo-1"])
        run.wait_for_completion(show_output=True)
        final = wait_until(lambda: scalar_counts(tb.url, "torch-demo-1").get("accuracy/test") == 6, timeout=30,
                           what="the sixth epoch in TensorBoard")
        assert final
    assert "epoch 6/6" in capsys.readouterr().out
    assert "outputs/model.pt" in run.get_file_names()
