"""The Alembic migrations and the schema module describe the same database."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
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


def test_a_workspace_at_revision_0001_is_upgraded_in_place_on_open(tmp_path: Path) -> None:
    from alembic import command
    from alembic.config import Config

    from runhistory import Experiment, Workspace
    from runhistory.store.sql.engine import MIGRATIONS_DIR, create_sqlite_engine

    folder = tmp_path / "old"
    folder.mkdir()
    engine = create_sqlite_engine(folder / "runhistory.db")
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.connect() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
        connection.commit()
        # What runhistory 0001 wrote for an experiment with one completed run, a tag and a metric.
        connection.exec_driver_sql("INSERT INTO experiments (id, name, created_time) VALUES (1, 'old', 1.0)")
        connection.exec_driver_sql(
            "INSERT INTO runs (id, experiment_id, number, display_name, status, run_type, created_time, start_time,"
            " end_time) VALUES ('old_1', 1, 1, 'kept', 'Completed', 'interactive', 1.0, 1.0, 2.0)"
        )
        connection.exec_driver_sql("INSERT INTO tags (run_id, key, value) VALUES ('old_1', 'k', 'v')")
        connection.exec_driver_sql(
            "INSERT INTO metrics (id, run_id, name, kind, description, count, last_value)"
            " VALUES (1, 'old_1', 'loss', 'scalar', '', 2, '0.5')"
        )
        connection.exec_driver_sql(
            "INSERT INTO metric_chunks (metric_id, first_index, count, encoding, steps, vals, times)"
            " VALUES (1, 0, 2, 'f8', NULL, ?, ?)",
            (np.array([1.0, 0.5], "<f8").tobytes(), np.array([1.0, 2.0], "<f8").tobytes()),
        )
        connection.commit()
    engine.dispose()

    ws = Workspace(folder)
    run = ws.get_run("old_1")
    assert (run.display_name, run.status, run.get_tags()) == ("kept", "Completed", {"k": "v"})
    assert run.get_metrics() == {"loss": [1.0, 0.5]}
    assert run.get_details()["target"] is None
    new_run = Experiment(ws, "old").start_logging()
    assert new_run.number == 2
    with sqlite3.connect(folder / "runhistory.db") as connection:
        assert connection.execute("SELECT version_num FROM alembic_version").fetchone() == (SCHEMA_REVISION,)
        assert connection.execute("SELECT count(*) FROM compute_targets").fetchone() == (0,)
