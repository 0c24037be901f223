"""A sweep whose trials run on a real Ray cluster: the controller a Ray job on the head node (of
no CPU), each trial a Ray job (its supervisor the Ray job's driver), ranked as on the local target."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from runhistory import Experiment, ScriptRunConfig, Workspace
from runhistory.compute import ComputeTarget, RayCompute
from runhistory.train.hyperdrive import GridParameterSampling, HyperDriveConfig, PrimaryMetricGoal, choice

from tests.helpers import python_env
from tests.jobs.support import write_script
from tests.ray_cluster import RayCluster

pytestmark = pytest.mark.xdist_group("ray")  # with tests/compute: the machine holds one Ray head at a time
EXAMPLE_TIMEOUT_S = 300

TRIAL = """
import sys
from runhistory import Run
x = float(sys.argv[sys.argv.index("--x") + 1])
run = Run.get_context()
for step in range(3):
    run.log("loss", (x - 0.3) ** 2 + 1.0 / (step + 1))
"""


@pytest.fixture(autouse=True)
def own_temp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The controller's job folder under the test's folder."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))


def test_a_grid_sweep_on_ray(tmp_path: Path, ray_cluster: RayCluster) -> None:
    ws = Workspace.create(tmp_path / "ws")
    ComputeTarget.create(ws, "cluster", RayCompute.provisioning_configuration(address=ray_cluster.address, num_cpus=1))
    source = tmp_path / "project"
    write_script(source, "trial.py", TRIAL)
    config = HyperDriveConfig(
        run_config=ScriptRunConfig(source, "trial.py", arguments=["--epochs", 3], compute_target="cluster"),
        hyperparameter_sampling=GridParameterSampling({"x": choice(0.0, 0.3, 0.9)}),
        primary_metric_name="loss",
        primary_metric_goal=PrimaryMetricGoal.MINIMIZE,
        max_total_runs=3,
        max_concurrent_runs=2,
    )
    sweep = Experiment(ws, "tune").submit(config)
    sweep.wait_for_completion(show_output=False)
    assert sweep.get_status() == "Completed", sweep.get_details().get("error")
    assert sweep.record.target == "cluster-hyperdrive"
    controller = ws.compute_targets["cluster-hyperdrive"].config
    assert controller["num_cpus"] == 0 and controller["resources"] == {"node:__internal_head__": 0.001}

    trials = sweep.get_children()
    assert sorted(json.loads(t.get_properties()["hyperparameters"])["x"] for t in trials) == [0.0, 0.3, 0.9]
    assert {t.record.target for t in trials} == {"cluster"} and {t.get_status() for t in trials} == {"Completed"}
    best = sweep.get_best_run_by_primary_metric()
    assert json.loads(best.get_properties()["hyperparameters"]) == {"x": 0.3}
    arguments = best.get_details()["runDefinition"]["arguments"]
    assert arguments[:2] == ["--epochs", "3"] and arguments[2:] == ["--x", "0.3"]
    assert best.get_metrics()["loss"] == pytest.approx([1.0, 0.5, 1 / 3])


def test_the_example_sweep_on_ray_unchanged_but_for_the_target(tmp_path: Path, ray_cluster: RayCluster) -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "sweep.py"
    work = tmp_path / "work"  # the test's working folder (tests/conftest.py's ``isolated``)
    args = ["--ray", ray_cluster.address, "--trials", "2", "--epochs", "2", "--epoch-sleep", "0", "--no-tensorboard"]
    done = subprocess.run(
        [sys.executable, str(example), *args], cwd=work, env=python_env(TMPDIR=tempfile.gettempdir()),
        capture_output=True, text=True, timeout=EXAMPLE_TIMEOUT_S,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"Compute target 'raycluster' (ray at {ray_cluster.address}): Succeeded" in done.stdout
    best_id = done.stdout.split("Best Run Id:")[1].split()[0]
    ws = Workspace.from_config(str(work / ".runhistory"), create=False)
    best = ws.get_run(best_id)
    assert best.record.target == "raycluster" and best.get_status() == "Completed"
    assert {"--learning_rate", "--hidden"} <= set(best.get_details()["runDefinition"]["arguments"])
