"""What the command-line tests share: a workspace written with the SDK, and output checks."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from click.testing import Result

from runhistory import Experiment, Run, Workspace

WIDTH = 80


@dataclass
class Populated:
    """A workspace with two experiments, and the runs the tests look at."""

    path: Path
    workspace: Workspace
    baseline: Run
    child: Run
    grandchild: Run
    failed_child: Run
    failed: Run
    running: Run


def populate(path: Path, notes: Path) -> Populated:
    """mnist: 1 baseline (Completed; metrics, tags, a file, children c1 > grandchild, c2 Failed)
    and 2 sweep (Failed). cifar: 1 Running run."""
    ws = Workspace.create(path)
    mnist = Experiment(ws, "mnist")
    baseline = mnist.start_logging("baseline")
    for i in range(5):
        baseline.log("loss", 1.0 / (i + 1))
    baseline.log("accuracy", 0.9876543219)
    baseline.log("diverged", float("nan"))
    baseline.log("bound", float("inf"))
    baseline.log("note", "hello world")
    baseline.log("epochs", 12)
    baseline.log_list("lrs", [0.1, 0.01, 0.001])
    baseline.log_row("roc", fpr=0.1, tpr=0.7)
    baseline.log_row("roc", fpr=0.2, tpr=0.9)
    baseline.tag("optimizer", "adam")
    baseline.tag("best")
    baseline.add_properties({"framework": "torch"})
    baseline.upload_file("outputs/notes.txt", notes)
    child = baseline.child_run("c1")
    grandchild = child.child_run("grandchild")
    grandchild.log("depth", 2)
    grandchild.complete()
    child.complete()
    failed_child = baseline.child_run("c2")
    failed_child.fail(ValueError("bad learning rate"))
    baseline.complete()
    failed = mnist.start_logging("sweep")
    failed.fail("out of memory")
    running = Experiment(ws, "cifar").start_logging("long-job")
    running.log("step_loss", 0.5)
    running.flush()
    return Populated(path, ws, baseline, child, grandchild, failed_child, failed, running)


def assert_one_line_error(result: Result, *fragments: str) -> str:
    """The command failed with exit 1 and a single ``Error: ...`` line on stderr, no traceback."""
    assert result.exit_code == 1, (result.exit_code, result.output, result.exception)
    assert isinstance(result.exception, SystemExit), result.exception
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "Traceback" not in result.output
    assert result.stdout == ""
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def assert_fits(text: str, width: int = WIDTH) -> None:
    """Every line of the output fits the terminal."""
    too_wide = [line for line in text.splitlines() if len(line) > width]
    assert not too_wide, too_wide


def row_of(text: str, first_cell: str) -> list[str]:
    """The whitespace-split cells of the table line that starts with ``first_cell``."""
    for line in text.splitlines():
        cells = line.split()
        if cells and cells[0] == first_cell:
            return cells
    raise AssertionError(f"no line starts with {first_cell!r} in:\n{text}")
