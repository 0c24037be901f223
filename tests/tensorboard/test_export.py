"""export_to_tensorboard, judged by the real TensorBoard's HTTP API (both loaders)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

from runhistory import Experiment, Run, Workspace
from runhistory.core.errors import NotFoundError, TensorboardError
from runhistory.store.base import MetricBatch, MetricKind, MetricSource
from runhistory.tensorboard.events import EventFileWriter
from runhistory.tensorboard.export import export_to_tensorboard
from tests.tensorboard.conftest import Board, make_png, serve_board

ALPHAS = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]
ROOT = "sweep-1"


@dataclass
class Exported:
    """A sweep and a run with every metric kind, exported once into ``logdir``."""

    logdir: Path
    root: Run
    kinds: Run
    png: bytes


def _log_sweep(exp: Experiment) -> Run:
    root = exp.start_logging()
    for alpha in ALPHAS:
        with root.child_run(f"alpha{alpha}") as child:
            child.log("alpha", alpha)
            child.log("mse", 3000 + 100 * alpha)
        root.log("alpha", alpha)
        root.log("mse", 3000 + 100 * alpha)
    root.complete()
    return root


def _log_every_kind(exp: Experiment, png_path: Path) -> Run:
    run = exp.start_logging(display_name="kinds")
    for step, loss in [(0, 1.0), (1, 0.5), (2, 0.25), (1, 0.75)]:  # step 1 repeats: the last point wins
        run.log("loss", loss, step=step)
    run.log("edge", float("nan"))
    run.log("edge", float("inf"))
    run.log("note", "converged")
    run.log_list("lrs", [0.1, 0.01, 0.001])
    run.log_row("roc", fpr=0.0, tpr=0.5)
    run.log_row("roc", fpr=0.5, tpr=0.9)
    run.log_image("digits", path=png_path)
    run.complete()
    return run


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Exported:
    base = tmp_path_factory.mktemp("export")
    ws = Workspace.create(base / "ws")
    root = _log_sweep(Experiment(ws, "sweep"))
    png = make_png(6, 4)
    (base / "digits.png").write_bytes(png)
    kinds = _log_every_kind(Experiment(ws, "kinds"), base / "digits.png")
    logdir = base / "tb"
    export_to_tensorboard(root, logdir)
    export_to_tensorboard(root, logdir)  # again: replaces, never duplicates
    export_to_tensorboard(f"kinds:{kinds.number}", logdir, workspace=ws)
    return Exported(logdir, root, kinds, png)


@pytest.fixture(scope="module", params=[True, False], ids=["load_fast", "python_loader"])
def board(request: pytest.FixtureRequest, exported: Exported) -> Iterator[Board]:
    yield from serve_board(exported.logdir, request.param, 9)


def _scalars(board: Board, run: str, tag: str) -> list[list[float]]:
    return board.get("data/plugin/scalars/scalars", run=run, tag=tag)


def test_one_tensorboard_run_per_run_children_nested(board: Board) -> None:
    runs = set(board.get("data/runs"))
    assert runs == {ROOT, "kinds-1", *(f"{ROOT}/alpha{a}-{i}" for i, a in enumerate(ALPHAS, start=2))}


def test_root_series_are_seven_point_curves_with_steps_and_wall_times(board: Board, exported: Exported) -> None:
    logged = exported.root.get_metric_series()
    for tag in ("alpha", "mse"):
        points = _scalars(board, ROOT, tag)
        assert [p[1] for p in points] == list(range(7))
        assert [p[2] for p in points] == pytest.approx(np.float32(logged[tag].values).tolist())
        assert [p[0] for p in points] == pytest.approx(logged[tag].times.tolist())


def test_repeated_steps_keep_the_last_point_and_specials_survive(board: Board) -> None:
    assert [(p[1], p[2]) for p in _scalars(board, "kinds-1", "loss")] == [(0, 1.0), (1, 0.75), (2, 0.25)]
    edge = [p[2] for p in _scalars(board, "kinds-1", "edge")]
    assert isinstance(edge[0], str) or math.isnan(edge[0])  # JSON has no NaN: TensorBoard says "NaN"
    assert edge[1] in (math.inf, "Infinity")


def test_lists_are_scalars_by_index(board: Board) -> None:
    points = _scalars(board, "kinds-1", "lrs")
    assert [(p[1], p[2]) for p in points] == [(0, pytest.approx(0.1)), (1, pytest.approx(0.01)), (2, pytest.approx(0.001))]


def test_rows_are_a_text_table_and_scalars_per_column(board: Board) -> None:
    tags = board.get("data/plugin/text/tags")["kinds-1"]
    assert {"note", "roc"} <= set(tags)
    note = board.get("data/plugin/text/text", run="kinds-1", tag="note")
    assert "converged" in note[0]["text"]
    table = board.get("data/plugin/text/text", run="kinds-1", tag="roc")[-1]["text"]
    assert "<table>" in table and "tpr" in table and "0.9" in table
    assert [p[2] for p in _scalars(board, "kinds-1", "roc/tpr")] == pytest.approx([0.5, 0.9])


def test_images_come_back_byte_for_byte(board: Board, exported: Exported) -> None:
    assert "digits" in board.get("data/plugin/images/tags")["kinds-1"]
    (entry,) = board.get("data/plugin/images/images", run="kinds-1", tag="digits")
    blob = board.client.get("data/plugin/images/individualImage?" + entry["query"])
    assert blob.content == exported.png


def test_sweep_children_are_hparams_sessions(board: Board) -> None:
    experiment = board.post("data/plugin/hparams/experiment", {"experimentName": ""})
    assert [info["name"] for info in experiment["hparamInfos"]] == ["alpha"]
    metric_tags = {info["name"]["tag"] for info in experiment["metricInfos"]}
    assert "mse" in metric_tags
    groups = board.post(
        "data/plugin/hparams/session_groups",
        {
            "experimentName": "",
            "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"],
            "colParams": [],
            "startIndex": 0,
            "sliceSize": 100,
        },
    )["sessionGroups"]
    by_alpha = {}
    for group in groups:
        (session,) = group["sessions"]
        mse = next(m["value"] for m in session["metricValues"] if m["name"]["tag"] == "mse")
        by_alpha[group["hparams"]["alpha"]] = mse
    assert sorted(by_alpha) == pytest.approx(ALPHAS)
    for alpha, mse in by_alpha.items():
        assert mse == pytest.approx(3000 + 100 * alpha, rel=1e-6)


def test_exporting_again_left_one_event_file_per_run(exported: Exported) -> None:
    files = sorted(p.relative_to(exported.logdir).parent.as_posix() for p in exported.logdir.rglob("events.out.tfevents.*"))
    assert len(files) == len(set(files)) == 9


def test_experiment_list_and_ids_resolve(
    tmp_path: Path, exported: Exported, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = exported.root.experiment.workspace
    monkeypatch.setenv("RUNHISTORY_TRACKING_URI", ws.tracking_uri)
    by_experiment = export_to_tensorboard(Experiment(ws, "sweep"), tmp_path / "a")
    by_list = export_to_tensorboard([exported.root], tmp_path / "b", recursive=False)
    by_id = export_to_tensorboard(exported.root.id, tmp_path / "c", recursive=False)
    assert by_experiment[0] == tmp_path / "a" / ROOT and len(by_experiment) == 8
    assert by_list == [tmp_path / "b" / ROOT] and by_id == [tmp_path / "c" / ROOT]


def test_bad_input(tmp_path: Path, exported: Exported) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(TensorboardError, match="is a file"):
        export_to_tensorboard(exported.root, a_file)
    with pytest.raises(NotFoundError, match="No run 'nope:9'"):
        export_to_tensorboard("nope:9", tmp_path / "out", workspace=exported.root.experiment.workspace)
    with pytest.raises(TensorboardError, match="Cannot export int"):
        export_to_tensorboard(42, tmp_path / "out")  # type: ignore[arg-type]


# --- a job's own event files: copied as they are, their series never written a second time ---


@dataclass
class JobExport:
    """A job run with its own event file in ``logs/train/`` and the series read from it, exported twice."""

    logdir: Path
    event_file: str  # its name under logs/train/
    event_bytes: bytes


@pytest.fixture(scope="module")
def job_exported(tmp_path_factory: pytest.TempPathFactory) -> JobExport:
    base = tmp_path_factory.mktemp("job-export")
    ws = Workspace.create(base / "ws")
    run = Experiment(ws, "job").start_logging(display_name="job")
    with EventFileWriter(base / "local") as writer:
        for step, loss in enumerate([1.0, 0.5, 0.25]):
            writer.add_scalar("loss", loss, step, wall_time=1_700_000_000.0 + step)
            writer.add_histogram("weights", [0.1 * step, 0.2, 0.3], step, wall_time=1_700_000_000.0 + step)
    data = writer.path.read_bytes()
    ws.artifacts.append(run.id, f"logs/train/{writer.path.name}", data)
    times = [1_700_000_000.0, 1_700_000_001.0, 1_700_000_002.0]
    ws.store.append_metrics(  # what the supervisor reads from that file
        [
            MetricBatch(run.id, "train/loss", MetricKind.SCALAR, [1.0, 0.5, 0.25], [0, 1, 2], times, source=MetricSource.EVENT_FILES),
            MetricBatch(run.id, "train/weights", MetricKind.SUMMARY, ["histograms"] * 3, [0, 1, 2], times, source=MetricSource.EVENT_FILES),
        ]
    )
    run.log("accuracy", 0.5)
    run.log("accuracy", 0.75)
    run.log("lone", 3.0)
    run.complete()
    logdir = base / "tb"
    export_to_tensorboard(run, logdir)
    export_to_tensorboard(run, logdir)  # again: replaces, never duplicates
    return JobExport(logdir, writer.path.name, data)


@pytest.fixture(scope="module", params=[True, False], ids=["load_fast", "python_loader"])
def job_board(request: pytest.FixtureRequest, job_exported: JobExport) -> Iterator[Board]:
    yield from serve_board(job_exported.logdir, request.param, 2)


def test_exporting_a_job_copies_its_own_event_files_once(job_exported: JobExport) -> None:
    copied = job_exported.logdir / "job-1" / "train" / job_exported.event_file
    assert copied.read_bytes() == job_exported.event_bytes
    files = sorted(p.relative_to(job_exported.logdir).as_posix() for p in job_exported.logdir.rglob("events.out.tfevents.*"))
    assert len(files) == 2 and files[1] == f"job-1/train/{job_exported.event_file}"


def test_series_from_event_files_are_shown_from_them_alone(job_board: Board) -> None:
    assert set(job_board.get("data/runs")) == {"job-1", "job-1/train"}
    scalar_tags = job_board.get("data/plugin/scalars/tags")
    assert set(scalar_tags["job-1"]) == {"accuracy", "lone"}  # the SDK's series only
    assert set(scalar_tags["job-1/train"]) == {"loss"}
    points = _scalars(job_board, "job-1/train", "loss")
    assert [(p[1], p[2]) for p in points] == [(0, 1.0), (1, 0.5), (2, 0.25)]
    histograms = job_board.get("data/plugin/histograms/tags")
    assert set(histograms.get("job-1/train", {})) == {"weights"} and "job-1" not in histograms
    assert [(p[1], p[2]) for p in _scalars(job_board, "job-1", "accuracy")] == [(0, 0.5), (1, 0.75)]
