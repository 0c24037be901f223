"""Fixtures of the server tests: a real server process per test, clients isolated from the user's home."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from runhistory import Experiment, Workspace

from tests.server.support import ServerProcess


@pytest.fixture(autouse=True)
def client_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The spool and credentials of this process under the test's folder, and no token from outside."""
    monkeypatch.setenv("RUNHISTORY_SPOOL_DIR", str(tmp_path / "server" / "spool"))
    monkeypatch.setenv("RUNHISTORY_CONFIG_DIR", str(tmp_path / "server" / "home"))
    monkeypatch.delenv("RUNHISTORY_TOKEN", raising=False)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A running server (SQLite store, artifact folder) on a free port."""
    process = ServerProcess(tmp_path / "server").start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server for a whole module (tests that only need some server; each uses its own experiment)."""
    process = ServerProcess(tmp_path_factory.mktemp("shared") / "server").start()
    yield process
    process.stop()


@pytest.fixture
def remote_ws(server: ServerProcess) -> Workspace:
    return Workspace(server.url)


@pytest.fixture
def remote_exp(remote_ws: Workspace) -> Experiment:
    return Experiment(remote_ws, "remote")
