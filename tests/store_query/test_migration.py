"""Migration 0009 fills in the stats of the series a 0008 run history already holds."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from runhistory.store.base import MetricStats
from runhistory.store.sql.engine import MIGRATIONS_DIR, create_postgres_engine, create_sqlite_engine, migrate
from runhistory.store.sql.frames import FrameBuilder
from runhistory.store.sql.schema import metric_frames
from runhistory.store.sql.store import SqlRunStore

from tests.postgres import PostgresServer


def _at_0008(engine: sa.Engine) -> None:
    """The schema of revision 0008 holding one run with a series in two chunks and a frame, a
    string series, a NaN-ended series and a table series."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.connect() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0008")
        def run(sql: str, **values) -> None:
            connection.execute(sa.text(sql), values)

        run("INSERT INTO experiments (id, name, created_time) VALUES (1, 'old', 1.0)")
        run(
            "INSERT INTO runs (id, experiment_id, number, display_name, status, run_type, created_time, start_time,"
            " end_time) VALUES ('old_1', 1, 1, 'kept', 'Running', 'interactive', 1.0, 1.0, NULL)"
        )
        series = {1: ("loss", "scalar", 5, "0.25"), 2: ("word", "scalar", 1, '"done"'), 3: ("nan", "scalar", 2, "NaN"), 4: ("rows", "table", 1, '{"a": 1}')}
        for metric_id, (name, kind, count, last) in series.items():
            run(
                "INSERT INTO metrics (id, run_id, name, kind, description, count, last_value, source)"
                " VALUES (:id, 'old_1', :name, :kind, '', :count, :last, '')",
                id=metric_id, name=name, kind=kind, count=count, last=last,
            )
        f8 = lambda *values: np.array(values, "<f8").tobytes()  # noqa: E731
        for metric_id, first, count, encoding, vals, times in (
            (1, 0, 2, "f8", f8(3.0, -2.0), f8(1.0, 2.0)),
            (1, 2, 2, "f8", f8(8.0, 1.0), f8(3.0, 4.0)),
            (2, 0, 1, "json", json.dumps(["done"]).encode(), f8(1.0)),
            (3, 0, 2, "f8", f8(4.0, math.nan), f8(1.0, 2.0)),
            (4, 0, 1, "json", json.dumps([{"a": 1}]).encode(), f8(1.0)),
        ):
            run(
                "INSERT INTO metric_chunks (metric_id, first_index, count, encoding, steps, vals, times)"
                " VALUES (:id, :first, :count, :encoding, NULL, :vals, :times)",
                id=metric_id, first=first, count=count, encoding=encoding, vals=vals, times=times,
            )
        frame = FrameBuilder("old_1")
        frame.add(1, 4, np.array([0.25]), [None], np.array([5.0]))
        connection.execute(sa.insert(metric_frames), [frame.row()])
        connection.commit()


def _check_upgraded(engine: sa.Engine, uri: str) -> None:
    migrate(engine, uri)
    store = SqlRunStore(engine, uri)
    try:
        stats = store.get_metric_stats(["old_1"])["old_1"]
        assert stats["loss"] == MetricStats("scalar", 5, 0.25, -2.0, 8.0)
        assert stats["word"] == MetricStats("scalar", 1, "done", None, None)
        assert (stats["nan"].min, stats["nan"].max) == (4.0, 4.0)
        assert (stats["rows"].min, stats["rows"].max) == (None, None)
        with engine.connect() as connection:
            lasts = dict(connection.exec_driver_sql("SELECT name, last_number FROM metrics").all())
        assert lasts == {"loss": 0.25, "word": None, "nan": None, "rows": None}
    finally:
        store.close()


def test_a_0008_sqlite_history_gets_its_series_stats(tmp_path: Path) -> None:
    engine = create_sqlite_engine(tmp_path / "old.db")
    _at_0008(engine)
    _check_upgraded(engine, str(tmp_path / "old.db"))


def test_a_0008_postgresql_history_gets_its_series_stats(postgres_server: PostgresServer) -> None:
    uri = postgres_server.create_database(migrated=False)
    engine = create_postgres_engine(uri)
    _at_0008(engine)
    _check_upgraded(engine, uri)
