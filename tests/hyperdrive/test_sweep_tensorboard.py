"""``Tensorboard([sweep_run])``: a real sweep's trials as children, each an HParams session with its
parameters (and nothing else) against the primary metric, listed while the trial still runs (as
STATUS_RUNNING), then with its final status; the HParams experiment's columns are the sweep's
parameters and its primary metric, read from TensorBoard's own HTTP API."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from runhistory import Experiment, ScriptRunConfig, Workspace
from runhistory.compute import ComputeTarget, LocalCompute
from runhistory.tensorboard import Tensorboard
from runhistory.tensorboard.export import export_to_tensorboard
from runhistory.train.hyperdrive import GridParameterSampling, HyperDriveConfig, PrimaryMetricGoal, choice

from tests.helpers import python_env
from tests.jobs.support import write_script

TRIAL = """
import sys, time
from runhistory import Run
args = sys.argv
x = float(args[args.index("--x") + 1])
units = int(args[args.index("--units") + 1])
run = Run.get_context()
for step in range(6):
    run.log("score", x * (step + 1) / 6)
    run.log("loss", 1 - x * (step + 1) / 6)  # logged, but no column of the sweep's HParams table
    run.flush()
    time.sleep(0.5)
"""
EXAMPLE_TIMEOUT_S = 240
ALL_STATUSES = ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"]
ENDED = ("Completed", "Failed", "Canceled")


@pytest.fixture(autouse=True)
def own_temp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Job folders (the controller's too) under the test's folder."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))


def run_python_file(script: Path, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """Run a script with this Python in ``cwd`` (created), capturing its output."""
    cwd.mkdir(parents=True, exist_ok=True)
    env = python_env(TMPDIR=tempfile.gettempdir())  # job folders under the test's folder
    env.pop("RAY_ADDRESS", None)
    return subprocess.run(
        [sys.executable, str(script), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=EXAMPLE_TIMEOUT_S
    )


def _session_groups(url: str) -> list[dict]:
    body = {"experimentName": "", "allowedStatuses": ALL_STATUSES, "colParams": [], "startIndex": 0, "sliceSize": 100}
    response = httpx.post(f"{url.rstrip('/')}/data/plugin/hparams/session_groups", json=body, timeout=30)
    return response.json().get("sessionGroups", []) if response.status_code == 200 else []


def _experiment(url: str) -> tuple[dict[str, list | None], list[str]]:
    """The HParams experiment TensorBoard serves: each hyperparameter's discrete domain (None
    without one), and the metric columns' tags in order."""
    response = httpx.post(f"{url.rstrip('/')}/data/plugin/hparams/experiment", json={"experimentName": ""}, timeout=30)
    assert response.status_code == 200, response.text
    experiment = response.json()
    hparams = {info["name"]: info.get("domainDiscrete") for info in experiment.get("hparamInfos", [])}
    return hparams, [metric["name"]["tag"] for metric in experiment.get("metricInfos", [])]


SWEEP_COLUMNS = ({"x": [0.2, 0.9], "units": [8.0, 32.0]}, ["score"])  # parameters, primary metric


def _submit(ws: Workspace, source: Path):
    ComputeTarget.create(ws, "here", LocalCompute.provisioning_configuration(working_directory=str(source.parent / "jobs")))
    write_script(source, "trial.py", TRIAL)
    config = HyperDriveConfig(
        run_config=ScriptRunConfig(source, "trial.py", compute_target="here"),
        hyperparameter_sampling=GridParameterSampling({"x": choice(0.2, 0.9), "units": choice(8, 32)}),
        primary_metric_name="score",
        primary_metric_goal=PrimaryMetricGoal.MAXIMIZE,
        max_total_runs=3,
        max_concurrent_runs=2,
    )
    return Experiment(ws, "tune").submit(config)


def _watch_running_trials(url: str, sweep) -> tuple[dict[str, set[str]], set]:
    """While the sweep runs: the statuses TensorBoard gave the sessions of trials still running
    (by trial; the run's status is read after TensorBoard answered), and the experiments served
    once a session was listed."""
    seen: dict[str, set[str]] = {}
    experiments: set = set()
    workspace = sweep.experiment.workspace
    while sweep.get_status() not in ENDED:
        groups = _session_groups(url)
        for group in groups:
            if workspace.get_run(group["name"]).get_status() not in ENDED:
                seen.setdefault(group["name"], set()).update(session["status"] for session in group["sessions"])
        if groups:
            hparams, metrics = _experiment(url)
            experiments.add((json.dumps(hparams, sort_keys=True), tuple(metrics)))
        time.sleep(0.3)
    return seen, experiments


@pytest.mark.parametrize("load_fast", [True, False], ids=["load_fast", "python_loader"])
def test_trials_are_hparams_sessions_with_their_parameters_live(tmp_path: Path, load_fast: bool) -> None:
    ws = Workspace.create(tmp_path / "ws")
    sweep = _submit(ws, tmp_path / "project")
    # Both loaders drop the live folder's run at a trial's end, and read its own folder afresh.
    with Tensorboard([sweep], port=0, load_fast=load_fast) as tb:
        url = tb.start()
        statuses_while_running, experiments_while_running = _watch_running_trials(url, sweep)
        assert tb.wait_for_runs(timeout=60)
        groups = _session_groups(url)
        columns = _experiment(url)
    assert sweep.get_status() == "Completed"
    seen_while_running = set(statuses_while_running)
    assert seen_while_running  # a trial's session shows as soon as it runs
    assert all(statuses == {"STATUS_RUNNING"} for statuses in statuses_while_running.values()), statuses_while_running
    # From the start, the columns are the sweep's parameters and primary metric, not every tag logged.
    assert experiments_while_running == {(json.dumps(SWEEP_COLUMNS[0], sort_keys=True), tuple(SWEEP_COLUMNS[1]))}
    assert columns == SWEEP_COLUMNS

    trials = {child.id: json.loads(child.get_properties()["hyperparameters"]) for child in sweep.get_children()}
    assert len(trials) == 3
    shown = {}
    for group in groups:
        (session,) = group["sessions"]  # the live session's run is gone
        assert not session["name"].endswith(".running")
        score = next(metric["value"] for metric in session["metricValues"] if metric["name"]["tag"] == "score")
        shown[group["name"]] = (group["hparams"], score, session["status"])
    assert set(shown) == set(trials) >= seen_while_running  # one session per trial, named by its run id
    for run_id, params in trials.items():
        hparams, score, status = shown[run_id]
        assert hparams == {"x": params["x"], "units": params["units"]}  # its parameters and nothing else
        assert score == pytest.approx(params["x"]) and status == "STATUS_SUCCESS"


def test_export_of_a_sweep_has_one_session_per_trial(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "ws")
    sweep = _submit(ws, tmp_path / "project")
    sweep.wait_for_completion(show_output=False)
    folders = export_to_tensorboard(sweep, tmp_path / "logs")
    with Tensorboard([], local_root=tmp_path / "logs", port=0) as tb:
        url = tb.start()
        assert tb.wait_for_runs(timeout=30)
        groups = _session_groups(url)
        columns = _experiment(url)
    assert len(folders) == 4  # the sweep and its three trials
    assert sorted(group["hparams"]["x"] for group in groups) in ([0.2, 0.2, 0.9], [0.2, 0.9, 0.9])
    assert all(set(group["hparams"]) == {"x", "units"} for group in groups)
    assert all(session["status"] == "STATUS_SUCCESS" for group in groups for session in group["sessions"])
    assert columns == SWEEP_COLUMNS


def test_an_export_while_trials_run_shows_them_running(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "ws")
    sweep = _submit(ws, tmp_path / "project")
    _first_running_trial(sweep)
    export_to_tensorboard(sweep, tmp_path / "logs")
    still_going = {child.id for child in sweep.get_children() if child.get_status() not in ENDED}
    with Tensorboard([], local_root=tmp_path / "logs", port=0) as tb:
        url = tb.start()
        assert tb.wait_for_runs(timeout=30)
        statuses = {group["name"]: group["sessions"][0]["status"] for group in _session_groups(url)}
        columns = _experiment(url)
    sweep.wait_for_completion(show_output=False)
    assert still_going  # a trial lasts about 3 s, the export far less
    # A trial still going after the export was going during it: a snapshot of the trial as it was.
    assert {statuses[run_id] for run_id in still_going} == {"STATUS_RUNNING"}
    assert columns == SWEEP_COLUMNS


def _first_running_trial(sweep, timeout: float = 120):
    """The first trial seen Running (it runs for about 3 s more)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for child in sweep.get_children():
            if child.get_status() == "Running":
                return child
        time.sleep(0.1)
    raise AssertionError(f"no trial of sweep {sweep.id} ran within {timeout} s")


def test_the_example_sweep_runs_and_prints_the_best_run(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "sweep.py"
    args = ["--trials", "3", "--epochs", "3", "--epoch-sleep", "0.1"]
    done = run_python_file(example, args, cwd=tmp_path / "work")
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "TensorBoard (the trials' curves and HParams, live): http://" in out
    best_id = out.split("Best Run Id:")[1].split()[0]
    arguments = out.split("Arguments:")[1].strip()
    assert "'--learning_rate'" in arguments and "'--hidden'" in arguments and "'--log_dir'" in arguments
    ws = Workspace.from_config(str(tmp_path / "work" / ".runhistory"), create=False)
    sweep = ws.get_run(best_id).parent
    assert len(sweep.get_children()) == 3 and sweep.get_status() == "Completed"
