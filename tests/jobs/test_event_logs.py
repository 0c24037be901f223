"""A job's own TensorBoard event files become its run history, live, through the supervisor.

Real jobs on a local target (and one against a real ``runhistory server``) write with real
writers (tensorboardX, PyTorch's ``SummaryWriter``); what ``run.get_metrics()`` holds is compared
with what a real TensorBoard serves over HTTP for the same run.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from runhistory import Experiment, Run, ScriptRunConfig, Workspace
from runhistory.cli.main import cli
from runhistory.compute import ComputeTarget, LocalCompute
from runhistory.store.base import MetricSource
from runhistory.tensorboard import Tensorboard
from runhistory.train.dnn import PyTorch, TensorFlow

from tests.jobs.support import EXAMPLES, tensorboard_scalars, write_script
from tests.server.support import ServerProcess

SCENARIO_TAGS = ("loss/train", "loss/test", "accuracy/train", "accuracy/test")
EPOCHS = 20


def _copy_example(source: Path, name: str) -> Path:
    shutil.copy(EXAMPLES / "tensorboard_demo" / name, source)
    return source


def _counts_while_running(run: Run, tag: str) -> set[int]:
    """The point counts of ``tag`` that ``run.get_metrics()`` gave while the run read Running."""
    seen: set[int] = set()
    while run.get_status() in ("Queued", "Starting", "Running"):
        values = run.get_metrics().get(tag)
        count = len(values) if isinstance(values, list) else int(values is not None)
        if count and run.get_status() == "Running":
            seen.add(count)
        time.sleep(0.05)
    return seen


def _served(run: Run) -> dict[str, dict[str, list[list[float]]]]:
    """What ``Tensorboard([run])`` serves of the run once it has read everything."""
    with Tensorboard([run], port=0) as tb:
        assert tb.url is not None and tb.wait_for_runs(timeout=30)
        return tensorboard_scalars(tb.url)


def _assert_same_as_tensorboard(run: Run, served: dict[str, list[list[float]]], tags: tuple[str, ...]) -> None:
    series = run.get_metric_series(list(tags))
    for tag in tags:
        assert [int(point[1]) for point in served[tag]] == list(series[tag].steps), tag
        assert [point[2] for point in served[tag]] == list(series[tag].values), tag
        assert series[tag].source == "tensorboard", tag


def _supervisor_log(run: Run) -> str:
    return run.workspace.artifacts.read(run.id, "system_logs/supervisor.log").decode()


def test_scenario_1s_curves_are_metrics_while_it_runs_and_match_tensorboard(
    exp: Experiment, source: Path, here: ComputeTarget
) -> None:
    estimator = TensorFlow(source_directory=_copy_example(source, "train.py"), compute_target=here,
                           entry_script="train.py", script_params={"--log_dir": "./logs"})
    run = exp.submit(estimator)
    seen = _counts_while_running(run, "loss/train")
    assert run.wait_for_completion(timeout=120)["status"] == "Completed"
    assert len(seen) >= 3 and min(seen) < EPOCHS, f"points seen while running: {sorted(seen)}"

    metrics = run.get_metrics()
    assert all(len(metrics[tag]) == EPOCHS for tag in SCENARIO_TAGS), {tag: metrics.get(tag) for tag in SCENARIO_TAGS}
    assert metrics["hidden/weights"] == {"kind": "histograms", "count": EPOCHS}
    served = _served(run)
    # One TensorBoard run: the job's event files, with no second copy written from the history.
    [(tb_run, tags)] = served.items()
    assert tb_run == f"{exp.name}-{run.number}"
    assert {tag: len(points) for tag, points in tags.items()} == {tag: EPOCHS for tag in SCENARIO_TAGS}
    _assert_same_as_tensorboard(run, tags, SCENARIO_TAGS)
    assert list(run.get_metric_series(["loss/train"])["loss/train"].steps) == list(range(1, EPOCHS + 1))


def test_the_pytorch_example_gets_its_scalars_live_and_its_histograms_named(
    exp: Experiment, source: Path, here: ComputeTarget
) -> None:
    estimator = PyTorch(source_directory=_copy_example(source, "train_torch.py"), compute_target=here,
                        entry_script="train_torch.py",
                        script_params={"--log_dir": "./logs", "--epochs": 6, "--epoch_sleep": 0.4})
    run = exp.submit(estimator)
    seen = _counts_while_running(run, "accuracy/test")
    assert run.wait_for_completion(timeout=120)["status"] == "Completed"
    assert seen and min(seen) < 6, f"points seen while running: {sorted(seen)}"

    metrics = run.get_metrics()
    assert all(len(metrics[tag]) == 6 for tag in SCENARIO_TAGS)
    for name in ("0.weight", "0.bias", "2.weight", "2.bias"):
        assert metrics[name] == {"kind": "histograms", "count": 6}, name
    [tags] = _served(run).values()
    assert {tag: len(points) for tag, points in tags.items()} == {tag: 6 for tag in SCENARIO_TAGS}
    _assert_same_as_tensorboard(run, tags, SCENARIO_TAGS)


TRAIN_AND_EVAL = """
    from tensorboardX import SummaryWriter
    train, evaluation = SummaryWriter("logs/train"), SummaryWriter("logs/eval")
    for step in range(5):
        train.add_scalar("loss", 1.0 / (step + 1), step)
        evaluation.add_scalar("loss", 2.0 / (step + 1), step)
    train.close()
    evaluation.close()
"""


def test_event_files_in_subfolders_of_logs_give_prefixed_series(
    exp: Experiment, source: Path, here: ComputeTarget
) -> None:
    write_script(source, "job.py", TRAIN_AND_EVAL)
    run = exp.submit(ScriptRunConfig(source, "job.py", compute_target=here))
    assert run.wait_for_completion(timeout=60)["status"] == "Completed"
    metrics = run.get_metrics()
    assert metrics["train/loss"] == pytest.approx([1.0 / (step + 1) for step in range(5)])
    assert metrics["eval/loss"] == pytest.approx([2.0 / (step + 1) for step in range(5)])
    assert "loss" not in metrics
    served = _served(run)
    assert {tb_run: {tag: len(points) for tag, points in tags.items()} for tb_run, tags in served.items()} == {
        f"{exp.name}-{run.number}/train": {"loss": 5},
        f"{exp.name}-{run.number}/eval": {"loss": 5},
    }


def test_a_job_against_a_server_workspace_gets_its_curves(
    tmp_path: Path, source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNHISTORY_SPOOL_DIR", str(tmp_path / "server" / "spool"))
    monkeypatch.setenv("RUNHISTORY_CONFIG_DIR", str(tmp_path / "server" / "home"))
    monkeypatch.delenv("RUNHISTORY_TOKEN", raising=False)
    server = ServerProcess(tmp_path / "server").start()
    try:
        ws = Workspace(server.url)
        target = ComputeTarget.create(ws, "here", LocalCompute.provisioning_configuration(working_directory=str(tmp_path / "jobs")))
        estimator = TensorFlow(source_directory=_copy_example(source, "train.py"), compute_target=target,
                               entry_script="train.py",
                               script_params={"--log_dir": "./logs", "--epochs": 5, "--epoch_sleep": 0.4})
        run = Experiment(ws, "remote").submit(estimator)
        seen = _counts_while_running(run, "loss/train")
        assert run.wait_for_completion(timeout=120)["status"] == "Completed"
        assert seen, "no point of loss/train was readable while the job ran"
        metrics = run.get_metrics()
        assert all(len(metrics[tag]) == 5 for tag in SCENARIO_TAGS)
        assert metrics["output/bias"] == {"kind": "histograms", "count": 5}
        [tags] = _served(run).values()
        assert {tag: len(points) for tag, points in tags.items()} == {tag: 5 for tag in SCENARIO_TAGS}
        _assert_same_as_tensorboard(run, tags, SCENARIO_TAGS)
    finally:
        server.stop()


SHARED_NAME = """
    import time
    from runhistory import Run
    from tensorboardX import SummaryWriter
    run = Run.get_context()
    run.log("loss", 0.5)
    run.flush()  # the SDK's "loss" exists before the event files name it
    writer = SummaryWriter("logs", flush_secs=1)
    for step in range(6):
        writer.add_scalar("loss", 1.0 / (step + 1), step)
        writer.add_scalar("accuracy", step / 10, step)
        writer.flush()
        time.sleep(0.3)  # several supervisor passes see "loss" again
    writer.close()
    run.log("loss", 0.25)
"""


def test_a_tag_the_sdk_already_logs_is_left_out_once_and_the_job_completes(
    exp: Experiment, source: Path, here: ComputeTarget
) -> None:
    write_script(source, "job.py", SHARED_NAME)
    run = exp.submit(ScriptRunConfig(source, "job.py", compute_target=here))
    assert run.wait_for_completion(timeout=60)["status"] == "Completed"
    metrics = run.get_metrics()
    assert metrics["loss"] == [0.5, 0.25]  # the SDK's points only
    assert metrics["accuracy"] == pytest.approx([step / 10 for step in range(6)])
    series = run.get_metric_series(["loss", "accuracy"])
    assert (series["loss"].source, series["accuracy"].source) == (MetricSource.SDK, MetricSource.EVENT_FILES)
    log = _supervisor_log(run)
    refusals = [line for line in log.splitlines() if "'loss'" in line]
    assert len(refusals) == 1 and "not kept" in refusals[0], log


def test_runs_show_lists_the_jobs_series_with_source_tensorboard(
    ws: Workspace, exp: Experiment, source: Path, here: ComputeTarget, tmp_path: Path
) -> None:
    write_script(source, "job.py", TRAIN_AND_EVAL)
    run = exp.submit(ScriptRunConfig(source, "job.py", compute_target=here))
    assert run.wait_for_completion(timeout=60)["status"] == "Completed"
    runner = CliRunner(env={"COLUMNS": "100"})
    shown = runner.invoke(cli, ["runs", "show", f"{exp.name}:{run.number}", "-w", str(tmp_path / "ws")])
    assert shown.exit_code == 0, shown.output
    rows = {line.split()[0]: line.split() for line in shown.stdout.splitlines() if line.split()[:1] in (["train/loss"], ["eval/loss"])}
    assert rows["train/loss"][:4] == ["train/loss", "scalar", "5", "tensorboard"]
    assert rows["eval/loss"][:4] == ["eval/loss", "scalar", "5", "tensorboard"]
    data = json.loads(runner.invoke(cli, ["runs", "show", f"{exp.name}:{run.number}", "-o", "json", "-w", str(tmp_path / "ws")]).stdout)
    assert data["metrics"]["train/loss"] == {"kind": "scalar", "count": 5, "last_value": pytest.approx(0.2), "source": "tensorboard"}
