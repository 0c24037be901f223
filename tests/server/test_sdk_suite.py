"""The SDK test suites of tests/sdk (metrics, runs, files), run again against a runhistory server.

Each test gets a fresh server on a fresh store, served in this process on a free port
(uvicorn in a thread: starting a process per test would take ~1.5 s each), and reaches it
over real HTTP through ``Workspace("http://...")``. Tests marked ``both_stores`` run on a
server backed by SQLite and a folder, and on one backed by PostgreSQL and S3 (SeaweedFS;
see tests/postgres.py and tests/s3.py).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Iterator

import pytest

from runhistory import Workspace
from runhistory.artifacts import open_artifact_store
from runhistory.backends import open_run_store
from runhistory.server.app import create_app

from tests.helpers import served
from tests.sdk import test_files, test_metrics, test_runs

# The suites' tests, collected here a second time (their fixtures come along with them).
for _module in (test_metrics, test_runs, test_files):
    for _name in dir(_module):
        if _name.startswith("test_"):
            globals()[_name] = getattr(_module, _name)
run = test_metrics.run  # the same fixture in test_metrics and test_files
pytestmark = test_metrics.pytestmark  # both_stores: behind the server, SQLite and PostgreSQL


@pytest.fixture(scope="module")
def empty_sqlite_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite store with the newest schema and nothing in it, copied by each test (migrating takes ~0.3 s)."""
    path = tmp_path_factory.mktemp("template") / "server.db"
    open_run_store(f"sqlite:///{path}").close()
    return path


@pytest.fixture
def ws(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Workspace]:
    """A workspace on a fresh runhistory server (SQLite and a folder, or PostgreSQL and S3 when
    parametrized so)."""
    monkeypatch.setenv("RUNHISTORY_SPOOL_DIR", str(tmp_path / "spool"))
    backend = getattr(request, "param", "sqlite")
    if backend == "postgresql":
        store_uri = request.getfixturevalue("postgres_uri")
        artifact_uri = request.getfixturevalue("s3_uri")
    else:
        shutil.copyfile(request.getfixturevalue("empty_sqlite_store"), tmp_path / "server.db")
        store_uri = f"sqlite:///{tmp_path / 'server.db'}"
        artifact_uri = str(tmp_path / "server-artifacts")
    store = open_run_store(store_uri)
    app = create_app(store, open_artifact_store(artifact_uri))
    with served(app, on_stopped=store.close) as url:
        yield Workspace(url)
