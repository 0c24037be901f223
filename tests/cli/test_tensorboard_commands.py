"""``runhistory export`` and ``runhistory tensorboard``."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx

from runhistory import Experiment

from tests.cli.support import assert_fits, assert_one_line_error
from tests.helpers import port_is_free, python_env
from tests.tensorboard.conftest import poll


def test_export_runs_and_experiments(populated, invoke, tmp_path: Path) -> None:
    result = invoke("export", "mnist:1", str(tmp_path / "tb"), "--hparam", "loss", "-w", str(populated.path))
    assert result.exit_code == 0, result.output
    assert_fits(result.stdout)
    assert "Exported 4 run(s)" in result.stdout
    folders = sorted(p.parent.relative_to(tmp_path / "tb").as_posix() for p in (tmp_path / "tb").rglob("*tfevents*"))
    assert folders[0] == "baseline-1" and len(folders) == 4
    whole = invoke("export", "--experiment", "mnist", str(tmp_path / "all"), "--no-children", "-w", str(populated.path))
    assert whole.exit_code == 0, whole.output
    top_level = list(Experiment(populated.workspace, "mnist").get_runs())
    assert f"Exported {len(top_level)} run(s)" in whole.stdout
    assert (tmp_path / "all" / "baseline-1").is_dir() and not (tmp_path / "all" / "baseline-1" / "c1-2").exists()


def test_export_bad_input(populated, invoke, tmp_path: Path) -> None:
    ws = str(populated.path)
    assert_one_line_error(invoke("export", str(tmp_path / "x"), "-w", ws), "Name runs to export")
    assert_one_line_error(invoke("export", "nope:1", str(tmp_path / "x"), "-w", ws), "No run 'nope:1'")
    assert_one_line_error(invoke("export", "-e", "nope", str(tmp_path / "x"), "-w", ws), "No experiment 'nope'")
    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert_one_line_error(invoke("export", "mnist:1", str(a_file), "-w", ws), "is a file")


def test_tensorboard_serves_until_interrupted_then_stops_cleanly(populated) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "runhistory.cli.main", "tensorboard", "mnist:1", "--port", "0", "-w", str(populated.path)],
        env=python_env(COLUMNS="200"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        assert line.startswith("TensorBoard at http://127.0.0.1:"), line + process.stderr.read()
        url = line.split()[2]
        runs = poll(lambda: httpx.get(url + "data/runs").json(), lambda r: "baseline-1" in r, timeout=30)
        assert "baseline-1" in runs and "baseline-1/c1-2" in runs
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert "TensorBoard stopped." in out and "Traceback" not in err
    assert port_is_free(int(url.rsplit(":", 1)[1].strip("/")))


def test_tensorboard_bad_input(populated, invoke, tmp_path: Path) -> None:
    ws = str(populated.path)
    assert_one_line_error(invoke("tensorboard", "-w", ws), "Name runs")
    assert_one_line_error(invoke("tensorboard", "nope:3", "-w", ws), "No run 'nope:3'")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        assert_one_line_error(invoke("tensorboard", "mnist:1", "--port", port, "-w", ws), port)
