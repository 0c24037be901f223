"""Fixtures shared by every test: each test gets its own working folder and workspace."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from runhistory import Experiment, Workspace
from runhistory import liveness

from tests.helpers import ENV_VARS
from tests.postgres import STORES, PostgresServer, start_server
from tests.ray_cluster import RayCluster, start_ray_cluster
from tests.s3 import s3_env, s3_server, s3_uri  # noqa: F401 - fixtures for every test folder


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "both_stores: run each test using `ws` on SQLite and on PostgreSQL")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.definition.get_closest_marker("both_stores") and "ws" in metafunc.fixturenames:
        metafunc.parametrize("ws", STORES, indirect=True)


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run each test in an empty working folder, with no workspace named by the environment."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    return work


@pytest.fixture(autouse=True)
def open_runs_are_let_go() -> Iterator[None]:
    """Runs a test leaves open are neither heartbeaten by later tests nor ended when pytest exits
    (their workspaces are gone by then)."""
    yield
    liveness.release_all()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A real PostgreSQL server for the session (see tests/postgres.py)."""
    server, stop = start_server()
    yield server
    stop()


@pytest.fixture
def postgres_uri(postgres_server: PostgresServer) -> str:
    """The URI of a fresh PostgreSQL database holding the newest schema, for this test alone."""
    return postgres_server.create_database()


@pytest.fixture
def ws(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Workspace]:
    """A fresh embedded workspace in a temporary folder; parametrized indirectly with
    ``"postgresql"`` (``tests.postgres.BACKENDS``), a workspace on a fresh PostgreSQL database instead."""
    backend = getattr(request, "param", "sqlite")
    if backend == "sqlite":
        yield Workspace.create(tmp_path / "ws")
        return
    workspace = Workspace(request.getfixturevalue("postgres_uri"), tmp_path / "ws" / "artifacts")
    yield workspace
    workspace.store.close()  # gives its connections back; the database goes with the cluster


@pytest.fixture
def exp(ws: Workspace) -> Experiment:
    """An experiment in the fresh workspace."""
    return Experiment(ws, "unit")


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[RayCluster]:
    """A Ray head with 2 CPUs, for the session; stopped at its end, also when the session is
    interrupted (a watchdog process stops it should this process be killed outright)."""
    cluster = start_ray_cluster(num_cpus=2)
    try:
        yield cluster
    finally:
        cluster.stop()
