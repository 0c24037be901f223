"""Files: an upload never takes the workspace with it, a download never leaves a half-written file."""

from __future__ import annotations

from pathlib import Path

import pytest

from runhistory import Experiment, Run, Workspace
from runhistory.core.errors import ArtifactPathError, ArtifactStorageError


@pytest.fixture
def run(exp: Experiment) -> Run:
    return exp.start_logging()


def test_upload_folder_of_the_working_folder_leaves_out_the_default_workspace(isolated: Path) -> None:
    ws = Workspace.from_config()  # ./.runhistory/ in the working folder
    run = Experiment(ws, "uploads").start_logging()
    run.upload_file("outputs/model.txt", _write(isolated / "seed.txt", "seed"))  # the artifact folder has files
    _write(isolated / "train.py", "print(1)")
    _write(isolated / "data" / "a.csv", "1,2")
    _write(isolated / "other" / ".runhistory" / "runhistory.db", "another workspace")
    uploaded = run.upload_folder("code", ".")
    assert sorted(uploaded) == ["code/data/a.csv", "code/seed.txt", "code/train.py"]
    assert not [name for name in run.get_file_names() if ".runhistory" in name or name.endswith(".db")]


def test_upload_folder_leaves_out_a_workspace_database_and_its_companions(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "project" / "ws")  # runhistory.db (+ -wal, -shm) and artifacts/ in ws/
    run = Experiment(ws, "uploads").start_logging()
    run.log("x", 1)
    run.flush()
    run.upload_file("notes.txt", _write(tmp_path / "notes.txt", "n"))
    _write(tmp_path / "project" / "ws" / "mine.txt", "kept")
    _write(tmp_path / "project" / "main.py", "kept")
    assert (tmp_path / "project" / "ws" / "runhistory.db-wal").exists()
    uploaded = set(run.upload_folder("project", tmp_path / "project"))
    assert {"project/main.py", "project/ws/mine.txt"} <= uploaded
    assert not [name for name in uploaded if "runhistory.db" in name or name.startswith("project/ws/artifacts/")]


def test_upload_folder_of_the_workspace_folder_itself_is_refused(isolated: Path) -> None:
    ws = Workspace.from_config()
    run = Experiment(ws, "uploads").start_logging()
    (isolated / ".runhistory" / "artifacts").mkdir(exist_ok=True)
    for folder in (".runhistory", ".runhistory/artifacts"):
        with pytest.raises(ArtifactPathError, match="holds a workspace's own files"):
            run.upload_folder("ws", folder)
    assert run.get_file_names() == []


def test_download_files_into_an_existing_file_is_one_sentence_and_writes_nothing(run: Run, tmp_path: Path) -> None:
    run.upload_file("outputs/a.txt", _write(tmp_path / "a.txt", "a"))
    blocker = _write(tmp_path / "out", "keep me")
    with pytest.raises(ArtifactStorageError, match="it is a file, not a folder") as raised:
        run.download_files("outputs/", output_directory=blocker)
    assert "\n" not in str(raised.value)
    assert blocker.read_text() == "keep me"
    with pytest.raises(ArtifactStorageError, match="is a file, not a folder"):
        run.download_files("outputs/", output_directory=blocker / "below")
    assert blocker.read_text() == "keep me"


def test_download_file_below_a_file_is_one_sentence_and_writes_nothing(run: Run, tmp_path: Path) -> None:
    run.upload_file("a.txt", _write(tmp_path / "a.txt", "a"))
    blocker = _write(tmp_path / "blocker", "keep me")
    with pytest.raises(ArtifactStorageError, match="blocker is a file, not a folder"):
        run.download_file("a.txt", blocker / "sub" / "a.txt")
    assert blocker.read_text() == "keep me"


def test_a_download_that_fails_while_writing_leaves_no_partial_file_and_the_old_one_intact(
    run: Run, tmp_path: Path
) -> None:
    run.upload_file("model.bin", _write(tmp_path / "model.bin", "new" * 100_000))
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(ArtifactStorageError, match="Cannot download 'model.bin'.*File name too long"):
        run.download_file("model.bin", out / ("m" * 300))  # no such name can be made here
    assert list(out.iterdir()) == []
    existing = _write(out / "model.bin", "old")
    assert run.download_file("model.bin", existing).read_text() == "new" * 100_000
    assert sorted(p.name for p in out.iterdir()) == ["model.bin"]  # no temporary file left beside it


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.mark.parametrize("experiment_name", ["x" * 255, "a.b-c_d"])
def test_runs_of_any_experiment_name_keep_files(ws: Workspace, tmp_path: Path, experiment_name: str) -> None:
    root = Experiment(ws, experiment_name).start_logging()
    child = root.child_run("trial")
    for run in (root, child):
        run.upload_file("notes.txt", _write(tmp_path / "notes.txt", "n"))
        assert run.get_file_names() == ["notes.txt"]
        assert len(run.id.encode()) <= 255
