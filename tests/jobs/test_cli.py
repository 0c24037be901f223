"""``runhistory submit`` and ``runhistory runs logs``, in-process with click's runner."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from runhistory import Experiment, Workspace
from runhistory.cli.main import cli

from tests.jobs.support import write_script


def invoke(ws_path: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--workspace", str(ws_path), *args])


def test_submit_wait_streams_the_output_and_passes_unknown_options_to_the_script(
    ws: Workspace, tmp_path: Path, source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_script(source, "train.py", "import sys\nprint('args', sys.argv[1:])\n")
    monkeypatch.chdir(source)
    result = invoke(tmp_path / "ws", "submit", "train.py", "--epochs", "3", "-e", "cli", "--wait")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Submitted cli:1 (run cli_") and lines[0].endswith("to compute target 'local'.")
    assert "args ['--epochs', '3']" in lines and "Status: Completed" in lines
    after_dashes = invoke(tmp_path / "ws", "submit", "-e", "cli", "--wait", "--", "train.py", "--target", "x")
    assert "args ['--target', 'x']" in after_dashes.stdout.splitlines()


def test_submit_a_script_given_from_here_into_the_source_folder(
    ws: Workspace, tmp_path: Path, source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_script(source, "src/train.py", "print('ran from the snapshot')\n")
    monkeypatch.chdir(source)
    result = invoke(tmp_path / "ws", "submit", "src/train.py", "-e", "cli", "-s", "src", "--wait")
    assert result.exit_code == 0, result.output
    run = next(Experiment(ws, "cli").get_runs())
    assert run.get_file_names()[:2] == ["job.json", "snapshot/train.py"]


def test_a_failing_job_makes_submit_wait_exit_1_with_its_error(ws: Workspace, tmp_path: Path, source: Path) -> None:
    write_script(source, "bad.py", "raise SystemExit('out of memory')\n")
    result = invoke(tmp_path / "ws", "submit", "bad.py", "-e", "cli", "-s", str(source), "--wait")
    assert result.exit_code == 1
    assert "out of memory" in result.stdout and "Status: Failed" in result.stdout
    assert result.stderr.startswith("Error: Run cli_") and "exited with code 1" in result.stderr


def test_runs_logs_prints_and_follows_the_driver_log(ws: Workspace, tmp_path: Path, source: Path) -> None:
    write_script(source, "train.py", "import time\nfor i in range(3):\n    print('epoch', i)\n    time.sleep(0.2)\n")
    submitted = invoke(tmp_path / "ws", "submit", "train.py", "-e", "cli", "-s", str(source))
    assert submitted.exit_code == 0 and "runhistory runs logs cli:1 --follow" in submitted.stdout
    followed = invoke(tmp_path / "ws", "runs", "logs", "cli:1", "--follow")
    assert followed.exit_code == 0, followed.output
    assert followed.stdout == "epoch 0\nepoch 1\nepoch 2\n"
    assert followed.stderr == "Run cli:1 Completed.\n"
    assert invoke(tmp_path / "ws", "runs", "logs", "cli:1").stdout == "epoch 0\nepoch 1\nepoch 2\n"


def test_runs_logs_and_submit_errors_are_one_line(ws: Workspace, tmp_path: Path, source: Path) -> None:
    interactive = Experiment(ws, "cli").start_logging()
    result = invoke(tmp_path / "ws", "runs", "logs", interactive.id)
    assert result.exit_code == 1 and result.stderr == (
        f"Error: Run {interactive.id} has no driver log: it is not a job (its type is interactive).\n"
    )
    missing = invoke(tmp_path / "ws", "submit", "nope.py", "-e", "cli", "-s", str(source))
    assert missing.exit_code == 1
    assert missing.stderr == f"Error: The script 'nope.py' does not exist in the source directory {source}.\n"
    write_script(source, "train.py", "")
    unknown = invoke(tmp_path / "ws", "submit", "train.py", "-e", "cli", "-s", str(source), "-t", "gpu")
    assert unknown.exit_code == 1 and "Error: No compute target 'gpu'" in unknown.stderr
    no_experiment = invoke(tmp_path / "ws", "submit", "train.py", "-s", str(source))
    assert no_experiment.exit_code == 1 and "Missing option '--experiment'" in no_experiment.stderr
