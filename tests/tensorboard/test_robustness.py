"""What no bad item, mixed series or ending of its owner can do to an export, a follow or a TensorBoard.

Judged by the real TensorBoard's HTTP API (both loaders) and by real child processes killed for real.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import httpx
import psutil
import pytest
from PIL import Image

from runhistory import Experiment, Run, Workspace
from runhistory.core.errors import NotFoundError, TensorboardError
from runhistory.tensorboard import Tensorboard
from runhistory.tensorboard.board import COPY_PREFIX
from runhistory.tensorboard.export import export_to_tensorboard
from runhistory.core.processes import process_identity
from tests.helpers import python_env
from tests.tensorboard.conftest import Board, make_png, poll, scalar_steps, serve_board

MIXED_AT = 10  # the step of the one string in a 100-point series


def make_jpeg(width: int, height: int) -> bytes:
    """A real JPEG (Pillow)."""
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 90)).save(out, format="JPEG")
    return out.getvalue()


def artifact_path(ws: Workspace, run: Run, name: str) -> Path:
    """Where the local artifact store keeps a run's file."""
    return Path(ws.artifacts.root) / run.id / name


def image_file(run: Run, name: str, index: int) -> str:
    """The file name of the ``index``-th image of series ``name``."""
    return run.get_metric_series([name])[name].values[index]


@dataclass
class Exported:
    """Runs with images, a mixed series and a sweep, exported once into ``logdir``."""

    logdir: Path
    jpeg: bytes
    png: bytes
    sweep: Run
    stderr: str
    broken_files: list[str]


def _log_pictures(exp: Experiment, base: Path, jpeg: bytes, png: bytes) -> tuple[Run, list[str]]:
    (base / "photo.jpg").write_bytes(jpeg)
    (base / "photo.png").write_bytes(png)
    run = exp.start_logging(display_name="pics")
    run.log_image("photo", path=base / "photo.jpg")
    run.log_image("photo", path=base / "photo.png")
    for _ in range(4):  # missing, truncated, not an image, and one good one last
        run.log_image("broken", path=base / "photo.png")
    for i in range(MIXED_AT * 10):
        run.log("mixed", "n/a" if i == MIXED_AT else i / 100)
    run.log("after", 1.0)
    run.complete()
    ws = exp.workspace
    broken = [image_file(run, "broken", i) for i in range(3)]
    artifact_path(ws, run, broken[0]).unlink()
    ws.artifacts.write(run.id, broken[1], io.BytesIO(png[: len(png) // 2]))
    ws.artifacts.write(run.id, broken[2], io.BytesIO(b"plain text, not an image\n"))
    return run, broken


def _log_sweep(exp: Experiment) -> Run:
    root = exp.start_logging(display_name="sweep")
    for alpha in (0.1, 0.2, 0.3):
        with root.child_run(f"alpha{alpha}") as child:
            child.log("mse", 3000 + 100 * alpha)
        root.log("mse", 3000 + 100 * alpha)
    root.complete()
    return root


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Exported:
    base = tmp_path_factory.mktemp("robust")
    ws = Workspace.create(base / "ws")
    jpeg, png = make_jpeg(9, 7), make_png(6, 4)
    pictures, broken = _log_pictures(Experiment(ws, "pictures"), base, jpeg, png)
    sweep_exp = Experiment(ws, "sweeps")
    sweep = _log_sweep(sweep_exp)
    logdir = base / "tb"
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        export_to_tensorboard(pictures, logdir)
        export_to_tensorboard(list(sweep_exp.get_runs(include_children=True)), logdir)
    return Exported(logdir, jpeg, png, sweep, stderr.getvalue(), broken)


@pytest.fixture(scope="module", params=[True, False], ids=["load_fast", "python_loader"])
def board(request: pytest.FixtureRequest, exported: Exported) -> Iterator[Board]:
    yield from serve_board(exported.logdir, request.param, 5, samples_per_plugin={"images": 0})


def _images(board: Board, run: str, tag: str) -> list[httpx.Response]:
    entries = board.get("data/plugin/images/images", run=run, tag=tag)
    return [board.client.get("data/plugin/images/individualImage?" + entry["query"]) for entry in entries]


def test_jpeg_and_png_images_are_both_served(board: Board, exported: Exported) -> None:
    jpeg, png = _images(board, "pics-1", "photo")
    assert jpeg.content == exported.jpeg and jpeg.headers["content-type"] == "image/jpeg"
    assert png.content == exported.png and png.headers["content-type"] == "image/png"


def test_unreadable_images_are_left_out_reported_once_and_the_rest_exported(board: Board, exported: Exported) -> None:
    (good,) = _images(board, "pics-1", "broken")
    assert good.content == exported.png
    assert scalar_steps(board.client, "pics-1", "after") == [0]
    reports = exported.stderr.strip().splitlines()
    assert len(reports) == 3, reports
    for file_name, reason in zip(exported.broken_files, ["is missing", "truncated", "neither a PNG nor a JPEG"]):
        (line,) = [line for line in reports if file_name in line]
        assert reason in line and "'broken'" in line


def test_a_mixed_series_is_one_scalar_curve_and_its_strings_are_text(board: Board) -> None:
    points = board.get("data/plugin/scalars/scalars", run="pics-1", tag="mixed")
    expected = [step for step in range(100) if step != MIXED_AT]
    assert [p[1] for p in points] == expected and len(points) == 99
    assert [p[2] for p in points] == pytest.approx([step / 100 for step in expected])
    assert all(isinstance(p[2], float) for p in points)
    text_tags = board.get("data/plugin/text/tags")["pics-1"]
    assert "mixed/text" in text_tags and "mixed" not in text_tags
    assert "mixed/text" not in board.get("data/plugin/scalars/tags")["pics-1"]
    (entry,) = board.get("data/plugin/text/text", run="pics-1", tag="mixed/text")
    assert entry["step"] == MIXED_AT and "n/a" in entry["text"]


def test_a_list_of_parents_and_children_exports_each_run_once(board: Board, exported: Exported) -> None:
    runs = {run for run in board.get("data/runs") if run.startswith("sweep") or run.startswith("alpha")}
    children = exported.sweep.get_children()
    assert runs == {"sweep-1", *(f"sweep-1/{child.display_name}-{child.number}" for child in children)}
    files = [p.parent.relative_to(exported.logdir).as_posix() for p in exported.logdir.rglob("events.out.tfevents.*")]
    assert sorted(f for f in files if "sweep" in f or "alpha" in f) == sorted(runs)


def test_export_takes_azuremls_logger_third(exp: Experiment, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = exp.start_logging(display_name="root")
    with root.child_run("kid") as child:
        child.log("x", 1.0)
    root.log_image("pic", path=_png_file(tmp_path))
    artifact_path(exp.workspace, root, image_file(root, "pic", 0)).unlink()
    root.complete()
    logger = logging.getLogger("azureml-style")
    with caplog.at_level(logging.WARNING, logger="azureml-style"):
        folders = export_to_tensorboard(root, tmp_path / "logs", logger)
    assert folders == [tmp_path / "logs" / "root-1", tmp_path / "logs" / "root-1" / "kid-2"]  # recursive stays True
    (record,) = caplog.records
    assert "'pic'" in record.getMessage() and record.levelno == logging.WARNING
    assert export_to_tensorboard(root, logdir=tmp_path / "kw", recursive=False) == [tmp_path / "kw" / "root-1"]
    with pytest.raises(TensorboardError, match="recursive= by name"):
        export_to_tensorboard(root, tmp_path / "x", False)  # type: ignore[arg-type]


def _png_file(folder: Path) -> Path:
    path = folder / "small.png"
    path.write_bytes(make_png(3, 3))
    return path


def test_a_follow_goes_on_after_an_unreadable_image(
    ws: Workspace, exp: Experiment, tmp_path: Path, capfd: pytest.CaptureFixture
) -> None:
    run = exp.start_logging(display_name="live")
    run.log_image("pic", path=_png_file(tmp_path))
    run.flush()
    bad = image_file(run, "pic", 0)
    ws.artifacts.write(run.id, bad, io.BytesIO(b"\x89PNG\r\n\x1a\ngarbage"))
    run.log("loss", 0.0)
    with Tensorboard([run], port=0, follow_interval=0.05) as board, httpx.Client(base_url=board.url, timeout=10) as client:
        assert poll(lambda: scalar_steps(client, "live-1", "loss"), lambda s: s == [0], timeout=30) == [0]
        run.log_image("pic", path=_png_file(tmp_path))  # a good one after the bad one
        for step in range(1, 6):
            run.log("loss", step / 10)
        run.flush()
        steps = poll(lambda: scalar_steps(client, "live-1", "loss"), lambda s: len(s) == 6, timeout=30)
        assert steps == list(range(6))
        images = poll(
            lambda: client.get("data/plugin/images/images", params={"run": "live-1", "tag": "pic"}),
            lambda r: r.status_code == 200 and len(r.json()) == 1,
            timeout=30,
        )
        assert [entry["step"] for entry in images.json()] == [1]
        run.complete()
        assert board.wait_for_runs(timeout=30)
    reports = [line for line in capfd.readouterr().err.splitlines() if bad in line]
    assert len(reports) == 1 and "truncated" in reports[0]


def test_tensorboard_of_an_unknown_run_in_an_empty_folder_creates_nothing(isolated: Path, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError) as caught:
        Tensorboard(["nope"])
    assert str(isolated) in str(caught.value)
    with pytest.raises(NotFoundError):
        export_to_tensorboard("nope", tmp_path / "out")
    assert list(isolated.iterdir()) == [] and not (tmp_path / "out").exists()


def test_tensorboard_of_an_unknown_run_says_the_run_is_unknown(
    ws: Workspace, isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNHISTORY_TRACKING_URI", ws.tracking_uri)
    with pytest.raises(NotFoundError, match="No run 'nope'"):
        Tensorboard(["nope"])
    assert list(isolated.iterdir()) == []


# --------------------------------------------------------------------------- lifetime

OWNER = """
    import os, sys, threading, time
    from runhistory import Experiment, Workspace
    from runhistory.tensorboard import Tensorboard
    mode, where = sys.argv[1], sys.argv[2]
    run = Experiment(Workspace.create({workspace!r}), "owned").start_logging(display_name="owned")
    run.log("loss", 1.0)
    boards = []
    if where == "thread":
        starter = threading.Thread(target=lambda: boards.append(Tensorboard([run], port=0)) or boards[0].start())
        starter.start()
        starter.join()  # the thread that started TensorBoard has ended
    else:
        boards.append(Tensorboard([run], port=0))
        boards[0].start()
    print(boards[0].url, boards[0].local_root, flush=True)
    if mode == "kill":
        time.sleep(600)
    elif mode == "os_exit":
        os._exit(0)
"""


def tensorboard_processes(marker: Path) -> list[psutil.Process]:
    """Live processes whose command line names ``marker`` (TensorBoard and its data server)."""
    found = []
    for process in psutil.process_iter(["cmdline", "status"]):
        try:
            cmdline = " ".join(process.info["cmdline"] or [])
        except psutil.Error:
            continue
        if str(marker) in cmdline and process.info["status"] != psutil.STATUS_ZOMBIE and process.pid != os.getpid():
            found.append(process)
    return found


def copies(tmpdir: Path) -> list[Path]:
    """The temporary copies of runs in ``tmpdir``."""
    return sorted(tmpdir.glob(f"{COPY_PREFIX}*"))


def assert_nothing_left(tmpdir: Path, timeout: float = 15) -> None:
    """Within ``timeout`` s, no TensorBoard serves from ``tmpdir`` and no copy is left in it."""
    left = poll(lambda: (tensorboard_processes(tmpdir), copies(tmpdir)), lambda both: both == ([], []), timeout=timeout)
    assert left == ([], []), left


@dataclass
class Owner:
    """A child process that started a Tensorboard over its own run."""

    process: subprocess.Popen
    url: str
    root: Path


def start_owner(tmp_path: Path, mode: str, where: str = "main") -> Owner:
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir(exist_ok=True)
    code = OWNER.format(workspace=str(tmp_path / "ws"))
    process = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), mode, where],
        env=python_env(TMPDIR=str(tmpdir)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline().split()
    assert len(line) == 2, process.stderr.read() if process.stderr else ""
    url, root = line
    assert Path(root).parent == tmpdir and Path(root).is_dir()
    assert tensorboard_processes(tmpdir), "TensorBoard runs while its owner does"
    return Owner(process, url, Path(root))


def finish(owner: Owner) -> None:
    """Make sure the owner is gone and its pipes closed."""
    if owner.process.poll() is None:
        owner.process.kill()
    with contextlib.suppress(ValueError):
        owner.process.communicate(timeout=30)


@pytest.mark.parametrize("where", ["main", "thread"])
def test_kill_9_of_the_owner_leaves_no_tensorboard_and_no_copy(tmp_path: Path, where: str) -> None:
    owner = start_owner(tmp_path, "kill", where)
    try:
        time.sleep(2)  # a TensorBoard started from a thread that has ended lives on with its owner
        assert httpx.get(owner.url + "data/runs", timeout=10).status_code == 200
        assert len(tensorboard_processes(tmp_path / "tmp")) >= 2  # TensorBoard and its data server
        owner.process.send_signal(signal.SIGKILL)
        owner.process.wait(timeout=10)
        assert_nothing_left(tmp_path / "tmp")
    finally:
        finish(owner)


@pytest.mark.parametrize("mode", ["exit", "os_exit"])
def test_exiting_without_stop_leaves_no_tensorboard_and_no_copy(tmp_path: Path, mode: str) -> None:
    owner = start_owner(tmp_path, mode)
    try:
        _, err = owner.process.communicate(timeout=60)
        assert owner.process.returncode == 0, err
        assert "Traceback" not in err
        assert_nothing_left(tmp_path / "tmp")
    finally:
        finish(owner)


def test_a_copy_left_by_a_killed_owner_is_removed_by_the_next_start(tmp_path: Path) -> None:
    tmpdir = tmp_path / "tmp"
    owner = start_owner(tmp_path, "kill")
    try:
        for process in tensorboard_processes(tmpdir):  # TensorBoard killed with its owner: no watchdog
            process.kill()
        owner.process.send_signal(signal.SIGKILL)
        owner.process.wait(timeout=10)
        assert poll(lambda: tensorboard_processes(tmpdir), lambda found: not found) == []
        assert copies(tmpdir) == [owner.root], "nobody was left to remove it"
    finally:
        finish(owner)
    pid, started = process_identity()  # a copy whose owner (this test) lives is kept
    alive = tmpdir / f"{COPY_PREFIX}{pid}-{round(started * 1000)}-keep"
    alive.mkdir()
    foreign = tmpdir / f"{COPY_PREFIX}not-ours"
    foreign.mkdir()
    next_owner = start_owner(tmp_path, "exit")
    try:
        next_owner.process.communicate(timeout=60)
    finally:
        finish(next_owner)
    assert not owner.root.exists()
    assert copies(tmpdir) == sorted([alive, foreign])


def test_sighup_of_runhistory_tensorboard_leaves_nothing(ws: Workspace, exp: Experiment, tmp_path: Path) -> None:
    run = exp.start_logging(display_name="watched")
    run.log("loss", 1.0)
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    process = subprocess.Popen(
        [sys.executable, "-m", "runhistory.cli.main", "tensorboard", run.id, "--port", "0", "-w", str(tmp_path / "ws")],
        env=python_env(TMPDIR=str(tmpdir), COLUMNS="200"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("TensorBoard at http://127.0.0.1:"), line + (process.stderr.read() if process.stderr else "")
        assert tensorboard_processes(tmpdir) and copies(tmpdir)
        process.send_signal(signal.SIGHUP)
        _, err = process.communicate(timeout=30)
        assert "Traceback" not in err
        assert_nothing_left(tmpdir, timeout=5)
    finally:
        process.kill()
        process.communicate()
    run.complete()


def test_tensorboard_started_from_a_thread_serves_until_stopped(exp: Experiment) -> None:
    run = exp.start_logging(display_name="threaded")
    run.log("loss", 0.5)
    boards: list[Tensorboard] = []
    starter = threading.Thread(target=lambda: boards.append(Tensorboard([run], port=0)) or boards[0].start())
    starter.start()
    starter.join(timeout=120)
    (board,) = boards
    try:
        time.sleep(1.5)  # the starting thread is gone; TensorBoard stays
        with httpx.Client(base_url=board.url or "", timeout=10) as client:
            assert poll(lambda: scalar_steps(client, "threaded-1", "loss"), lambda s: s == [0], timeout=30) == [0]
        root = board.local_root
    finally:
        board.stop()
        run.complete()
    assert root is not None and not root.exists()
