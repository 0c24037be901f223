"""The Alembic migrations and the schema module describe the same database."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from runhistory.store.sql.engine import head_revision, open_sqlite
from runhistory.store.sql.schema import SCHEMA_REVISION, metadata


def test_migrations_build_exactly_the_schema_the_code_queries(tmp_path: Path) -> None:
    engine = open_sqlite(tmp_path / "fresh.db")
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), metadata)
        revision = connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
    assert differences == []
    assert revision == head_revision() == SCHEMA_REVISION


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(tmp_path: Path) -> None:
    engine = open_sqlite(tmp_path / "wal.db")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 10_000
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
