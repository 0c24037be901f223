"""``runhistory ui`` and ``runhistory server`` serve the web UI (real processes, real HTTP)."""

from __future__ import annotations

import contextlib
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import httpx

from runhistory import Experiment, Workspace

URL_LINE = re.compile(r"on (http://127\.0\.0\.1:\d+)")


@contextlib.contextmanager
def started(*args: str, cwd: Path) -> Iterator[str]:
    """Run ``runhistory ARGS`` until it prints its URL; yields the URL; stops it with Ctrl-C (SIGINT)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "runhistory.cli.main", *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        line = process.stdout.readline()
        found = URL_LINE.search(line)
        assert found, f"no URL in {line!r}; stderr: {process.stderr.read() if process.poll() is not None else ''}"
        yield found.group(1)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            assert process.wait(15) == 0 or process.returncode == -signal.SIGINT
        finally:
            if process.poll() is None:
                process.kill()
            process.stdout.close()
            process.stderr.close()


def workspace_with_a_run(folder: Path) -> str:
    """A default workspace (``folder/.runhistory``) with one finished run; its id."""
    ws = Workspace.create(folder)
    run = Experiment(ws, "cli-ui").start_logging(display_name="first")
    run.log("loss", 0.5)
    run.complete()
    return run.id


def test_runhistory_ui_serves_the_default_workspace_on_loopback(tmp_path: Path) -> None:
    run_id = workspace_with_a_run(tmp_path)
    with started("ui", "--port", "0", cwd=tmp_path) as url:
        home = httpx.get(f"{url}/", timeout=30)
        assert home.status_code == 200 and '<tr data-experiment="cli-ui">' in home.text
        runs = httpx.get(f"{url}/experiments/cli-ui", timeout=30)
        assert f'data-run-id="{run_id}"' in runs.text
        assert httpx.get(f"{url}/api/v1/health", timeout=30).status_code == 200


def test_runhistory_ui_takes_a_workspace_and_refuses_beyond_loopback(tmp_path: Path) -> None:
    workspace_with_a_run(tmp_path / "ws")
    with started("ui", "--workspace", str(tmp_path / "ws"), "--port", "0", cwd=tmp_path) as url:
        assert httpx.get(f"{url}/experiments/cli-ui", timeout=30).status_code == 200
    refused = subprocess.run(
        [sys.executable, "-m", "runhistory.cli.main", "ui", "-w", str(tmp_path / "ws"), "--host", "0.0.0.0", "--port", "0"],
        capture_output=True, text=True, timeout=60,
    )
    assert refused.returncode == 1 and "loopback only" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1


def test_runhistory_server_serves_the_ui_behind_its_tokens(tmp_path: Path) -> None:
    workspace_with_a_run(tmp_path)
    database = str(tmp_path / ".runhistory")
    with started("server", "--workspace", database, "--port", "0", "--require-tokens", cwd=tmp_path) as url:
        page = httpx.get(f"{url}/", timeout=30)
        assert page.status_code == 303 and page.headers["location"].startswith("/signin")
        assert httpx.get(f"{url}/signin", timeout=30).status_code == 200
        assert httpx.get(f"{url}/api/v1/experiments", timeout=30).status_code == 401
