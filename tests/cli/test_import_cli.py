"""``runhistory import tensorboard LOGDIR -e NAME [--parent RUN]``: its summary table, the line
of a re-import, and its errors (one line, exit 1)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest
from click.testing import Result
from tensorboardX import SummaryWriter

from runhistory import Experiment, Workspace

from tests.cli.support import assert_fits, assert_one_line_error, row_of

FOLDERS = ("a", "a/train", "b")
STEPS = 4
Invoke = Callable[..., Result]


@pytest.fixture
def logdir(tmp_path: Path) -> Path:
    """tensorboardX logs: a, its child a/train, and b; each STEPS scalars and a text."""
    root = tmp_path / "logdir"
    for folder in FOLDERS:
        with SummaryWriter(str(root / folder)) as writer:
            for step in range(STEPS):
                writer.add_scalar("loss", 1.0 / (step + 1), step)
            writer.add_text("notes", folder, 0)
    return root


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    Workspace.create(tmp_path / "ws")
    return tmp_path / "ws"


def _import(invoke: Invoke, logdir: Path, workspace: Path, *extra: str) -> Result:
    return invoke("import", "tensorboard", str(logdir), "-e", "imp", "-w", str(workspace), *extra)


def _folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.iterdir() if path.is_file())


def test_an_import_prints_one_row_per_run_folder_and_a_total(invoke: Invoke, logdir: Path, workspace: Path) -> None:
    result = _import(invoke, logdir, workspace)
    assert result.exit_code == 0, result.output
    assert_fits(result.stdout)
    assert row_of(result.stdout, "folder") == ["folder", "run", "new", "points", "bytes"]
    for number, (name, folder) in enumerate(zip(("a", "train", "b"), FOLDERS), start=1):
        assert row_of(result.stdout, name) == [name, f"imp:{number}", "yes", str(STEPS + 1), str(_folder_bytes(logdir / folder))]
    last = result.stdout.strip().splitlines()[-1]
    assert last == f"Imported 3 TensorBoard run(s) into experiment 'imp': 3 new, {3 * (STEPS + 1)} new points."
    exp = Experiment(Workspace(workspace), "imp")
    runs = {run.display_name: run for run in exp.get_runs(include_children=True)}
    assert set(runs) == {"a", "train", "b"} and runs["train"].parent.id == runs["a"].id
    assert runs["b"].get_metrics()["loss"] == pytest.approx([1.0 / (step + 1) for step in range(STEPS)])


def test_importing_again_says_nothing_is_new(invoke: Invoke, logdir: Path, workspace: Path) -> None:
    assert _import(invoke, logdir, workspace).exit_code == 0
    again = _import(invoke, logdir, workspace)
    assert again.exit_code == 0, again.output
    for number, name in enumerate(("a", "train", "b"), start=1):
        assert row_of(again.stdout, name) == [name, f"imp:{number}", "no", "0", "0"]
    assert again.stdout.strip().splitlines()[-1] == "Imported 3 TensorBoard run(s) into experiment 'imp': 0 new, 0 new points."
    assert len(list(Experiment(Workspace(workspace), "imp").get_runs(include_children=True))) == 3


def test_parent_imports_the_runs_under_a_given_run(invoke: Invoke, logdir: Path, workspace: Path) -> None:
    parent = Experiment(Workspace(workspace), "imp").start_logging("sweep")
    result = _import(invoke, logdir, workspace, "--parent", "imp:1")
    assert result.exit_code == 0, result.output
    assert row_of(result.stdout, "a")[1] == "imp:2"
    assert {child.display_name for child in parent.get_children()} == {"a", "b"}
    assert [child.display_name for child in parent.get_children(recursive=True)] == ["a", "train", "b"]


def test_a_corrupt_record_is_reported_in_one_line_and_the_rest_imported(
    invoke: Invoke, logdir: Path, workspace: Path
) -> None:
    [path] = (logdir / "b").iterdir()
    data = bytearray(path.read_bytes())
    data[-6] ^= 0xFF  # in the payload of the last record (the text): its checksum fails
    path.write_bytes(bytes(data))
    result = _import(invoke, logdir, workspace)
    assert result.exit_code == 0, result.output
    reports = [line for line in result.stdout.splitlines() if "corrupt" in line]
    assert len(reports) == 1 and path.name in reports[0], result.stdout
    assert row_of(result.stdout, "b")[:4] == ["b", "imp:3", "yes", str(STEPS)]
    assert "Traceback" not in result.output


def _missing(root: Path) -> Path:
    return root / "missing"


def _a_file(root: Path) -> Path:
    (root / "events.txt").write_text("x")
    return root / "events.txt"


def _empty(root: Path) -> Path:
    (root / "empty").mkdir()
    return root / "empty"


@pytest.mark.parametrize(
    ("make", "fragment"),
    [(_missing, "there is no such folder"), (_a_file, "it is a file"), (_empty, "No TensorBoard event files")],
    ids=["missing", "a file", "no event files"],
)
def test_what_cannot_be_imported_is_one_error_line(
    invoke: Invoke, tmp_path: Path, workspace: Path, make: Callable[[Path], Path], fragment: str
) -> None:
    target = make(tmp_path)
    assert_one_line_error(_import(invoke, target, workspace), fragment, str(target))
    assert list(Experiment(Workspace(workspace), "imp").get_runs(include_children=True)) == []


def test_an_unknown_parent_is_one_error_line_and_nothing_is_imported(invoke: Invoke, logdir: Path, workspace: Path) -> None:
    assert_one_line_error(_import(invoke, logdir, workspace, "--parent", "imp:9"), "No run 'imp:9'")
    assert list(Experiment(Workspace(workspace), "imp").get_runs(include_children=True)) == []


def test_the_experiment_is_required(invoke: Invoke, logdir: Path, workspace: Path) -> None:
    assert_one_line_error(invoke("import", "tensorboard", str(logdir), "-w", str(workspace)), "Missing option '--experiment'")


def test_a_parent_of_another_experiment_is_refused_before_anything_is_imported(
    invoke: Invoke, logdir: Path, workspace: Path
) -> None:
    """Found in review (importer.py): each top folder fails in the store, the failed folders are
    counted as new, and their child folders are imported as top-level runs."""
    Experiment(Workspace(workspace), "other").start_logging("sweep")
    assert_one_line_error(_import(invoke, logdir, workspace, "--parent", "other:1"), "other:1")
    assert list(Experiment(Workspace(workspace), "imp").get_runs(include_children=True)) == []
