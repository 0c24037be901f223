"""A real PostgreSQL server for the tests, and a fresh database per test.

``RUNHISTORY_TEST_POSTGRES_URI`` names a server to use (any database on it; the tests create
their own databases, so the user needs CREATEDB). Without it the session starts a throw-away
cluster itself with ``scripts/postgres.sh`` (initdb + pg_ctl in a temporary folder, as the
``postgres`` user when run as root) and stops it at the end. Where PostgreSQL is not installed
the PostgreSQL tests fail with a message that says how to get it: they are never skipped.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

ENV_URI = "RUNHISTORY_TEST_POSTGRES_URI"
SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "postgres.sh"
TEMPLATE = "runhistory_template"

# ``pytestmark = BACKENDS``: each test of the module that uses ``ws`` (also through ``exp``,
# ``run``...) runs on SQLite and on PostgreSQL (see ``pytest_generate_tests`` in conftest.py).
BACKENDS = pytest.mark.both_stores
STORES = ("sqlite", "postgresql")


class PostgresServer:
    """A PostgreSQL server the tests may create databases on."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self._numbers = itertools.count(1)
        self._prefix = f"rh_test_{os.getpid()}_"
        self._template_ready = False
        self.created: list[str] = []

    def uri_of(self, database: str) -> str:
        return urlunsplit(urlsplit(self.uri)._replace(path="/" + database))

    def admin(self):
        import psycopg

        return psycopg.connect(self.uri_of(urlsplit(self.uri).path.strip("/") or "postgres"), autocommit=True)

    def create_database(self, migrated: bool = True) -> str:
        """The URI of a new, empty database; ``migrated`` ones already hold the newest schema
        (copied from a template database migrated once per session, which is ~10x faster)."""
        if migrated and not self._template_ready:
            self._create(TEMPLATE + f"_{os.getpid()}", template="template0")
            from runhistory.store.sql.engine import open_postgres

            open_postgres(self.uri_of(TEMPLATE + f"_{os.getpid()}")).dispose()
            self._template_ready = True
        name = f"{self._prefix}{next(self._numbers)}"
        self._create(name, template=TEMPLATE + f"_{os.getpid()}" if migrated else "template0")
        return self.uri_of(name)

    def _create(self, name: str, template: str) -> None:
        with self.admin() as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
            connection.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        self.created.append(name)

    def drop_created(self) -> None:
        """Drop every database this session created (on a server the session did not start)."""
        with self.admin() as connection:
            for name in reversed(self.created):
                connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.created.clear()


def start_server() -> tuple[PostgresServer, object]:
    """The server to test against and a function that stops it (when this session started it)."""
    if os.environ.get(ENV_URI):
        server = PostgresServer(os.environ[ENV_URI])
        return server, server.drop_created
    cluster = PostgresCluster()
    return PostgresServer(cluster.uri), cluster.stop


class PostgresCluster:
    """A throw-away PostgreSQL cluster of this session (scripts/postgres.sh), which a test may
    also shut down and start again on the same port."""

    def __init__(self) -> None:
        self.folder = tempfile.mkdtemp(prefix="runhistory-postgres-")
        started = self._script("start")
        if started.returncode != 0:
            self.stop()
            pytest.fail(
                f"no PostgreSQL for the tests: {started.stderr.strip()} "
                f"(install postgresql — `make test` does as root — or set {ENV_URI})"
            )
        self.uri = started.stdout.strip().splitlines()[-1]

    def _script(self, command: str) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", str(SCRIPT), command, self.folder], capture_output=True, text=True, timeout=120)

    def pause(self) -> None:
        """Shut the server down (its clients are disconnected); the data stays."""
        done = self._script("pause")
        assert done.returncode == 0, done.stderr

    def resume(self) -> None:
        done = self._script("resume")
        assert done.returncode == 0, done.stderr

    def stop(self) -> None:
        self._script("stop")
