"""A run's files: upload, list, download, and names that must not escape the run."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from runhistory import Experiment, Run
from runhistory.core.errors import ArtifactNotFoundError, ArtifactPathError
from tests.postgres import BACKENDS

pytestmark = BACKENDS  # every test on SQLite and on PostgreSQL


@pytest.fixture
def run(exp: Experiment) -> Run:
    return exp.start_logging()


def test_upload_list_and_download(run: Run, tmp_path: Path) -> None:
    local = tmp_path / "model.txt"
    local.write_text("weights")
    run.upload_file("outputs/model.txt", local)
    run.upload_file("notes.md", io.BytesIO(b"# notes"))
    assert run.get_file_names() == ["notes.md", "outputs/model.txt"]
    back = run.download_file("outputs/model.txt", tmp_path / "back.txt")
    assert back.read_text() == "weights"
    into_folder = tmp_path / "folder"
    into_folder.mkdir()
    assert run.download_file("notes.md", into_folder).read_bytes() == b"# notes"
    assert run.download_file("notes.md") == Path("notes.md") and Path("notes.md").read_bytes() == b"# notes"


def test_upload_folder_and_download_files_keep_paths(run: Run, tmp_path: Path) -> None:
    source = tmp_path / "src"
    (source / "sub").mkdir(parents=True)
    (source / "a.py").write_text("a")
    (source / "sub" / "b.py").write_text("b")
    assert run.upload_folder("code", source) == ["code/a.py", "code/sub/b.py"]
    run.upload_file("other.txt", io.BytesIO(b"o"))
    written = run.download_files(prefix="code", output_directory=tmp_path / "out")
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in written) == ["code/a.py", "code/sub/b.py"]
    assert (tmp_path / "out" / "code" / "sub" / "b.py").read_text() == "b"


def test_uploading_again_replaces(run: Run) -> None:
    run.upload_file("f", io.BytesIO(b"first"))
    run.upload_file("f", io.BytesIO(b"second"))
    assert run.workspace.artifacts.read(run.id, "f") == b"second"


@pytest.mark.parametrize("name", ["../x", "a/../../x", "/etc/passwd", "C:/x", "..\\x", "", "a\x00b"])
def test_names_that_escape_the_run_are_refused(run: Run, tmp_path: Path, name: str) -> None:
    local = tmp_path / "f"
    local.write_text("x")
    with pytest.raises(ArtifactPathError, match=f"of run {run.id}"):
        run.upload_file(name, local)
    with pytest.raises(ArtifactPathError):
        run.download_file(name, tmp_path / "out")
    assert run.get_file_names() == []
    assert not (tmp_path / "x").exists()


def test_missing_local_file_and_missing_run_file(run: Run, tmp_path: Path) -> None:
    with pytest.raises(ArtifactNotFoundError, match=f"Cannot upload 'x.txt' to run {run.id}: .* is not a file"):
        run.upload_file("x.txt", tmp_path / "missing.txt")
    with pytest.raises(ArtifactNotFoundError, match="is not a folder"):
        run.upload_folder("dir", tmp_path / "missing")
    with pytest.raises(ArtifactNotFoundError, match=f"Run {run.id} has no file 'nope.txt'"):
        run.download_file("nope.txt", tmp_path / "out.txt")
    assert not (tmp_path / "out.txt").exists()


def test_snapshot_directory_is_stored_with_the_run(exp: Experiment, tmp_path: Path) -> None:
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "train.py").write_text("print('hi')")
    run = exp.start_logging(snapshot_directory=tmp_path / "code")
    assert run.get_file_names() == ["snapshot/train.py"]
