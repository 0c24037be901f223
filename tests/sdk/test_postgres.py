"""The store on a real PostgreSQL: URIs, migrations, and the races SQLite's single writer hides.

The SDK contract itself (runs, metrics, files) runs on PostgreSQL too: see ``BACKENDS`` in
test_runs.py, test_metrics.py and test_files.py.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from runhistory import Experiment, Workspace
from runhistory.core.uris import default_artifact_uri, normalize_tracking_uri
from runhistory.core.errors import RunHistoryError, SchemaVersionError
from runhistory.store.base import MetricBatch, RunStatus
from runhistory.store.sql.engine import create_postgres_engine, head_revision, open_postgres
from runhistory.store.sql.schema import SCHEMA_REVISION, metadata
from tests.helpers import start_python
from tests.postgres import PostgresServer

PROCESSES = 8
POINTS = 20_000


def test_postgres_uris_are_normalized_and_get_a_default_artifact_folder() -> None:
    for uri in ("postgres://u:p@db.example:5433/team", "postgresql+psycopg://u:p@db.example:5433/team"):
        assert normalize_tracking_uri(uri) == "postgresql://u:p@db.example:5433/team"
    assert default_artifact_uri("postgresql://u:p@db.example:5433/team") == str(
        Path.home() / ".runhistory" / "artifacts" / "db.example_5433_team"
    )
    assert default_artifact_uri("postgresql://db.example/team").endswith("db.example_5432_team")
    with pytest.raises(RunHistoryError, match="names no database"):
        normalize_tracking_uri("postgresql://u:secret@db.example:5433/")


def test_an_unreachable_server_is_a_clear_error_that_hides_the_password(tmp_path: Path) -> None:
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(RunHistoryError, match=f"127.0.0.1:{port}/nowhere") as error:
        Workspace(f"postgresql://someone:s3cret@127.0.0.1:{port}/nowhere", tmp_path / "artifacts")
    assert "s3cret" not in str(error.value)


def test_migrations_build_exactly_the_schema_the_code_queries_on_postgres(postgres_server: PostgresServer) -> None:
    engine = open_postgres(postgres_server.create_database(migrated=False))
    try:
        with engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), metadata)
            revision = connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
    finally:
        engine.dispose()
    assert differences == []
    assert revision == head_revision() == SCHEMA_REVISION


def test_a_postgres_database_at_revision_0001_is_upgraded_in_place_on_open(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    from alembic import command
    from alembic.config import Config

    from runhistory.store.sql.engine import MIGRATIONS_DIR

    uri = postgres_server.create_database(migrated=False)
    engine = create_postgres_engine(uri)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.connect() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
        connection.commit()
        # What runhistory 0001 wrote for an experiment with one completed run, a tag and a metric.
        connection.execute(sa.text("INSERT INTO experiments (name, created_time) VALUES ('old', 1.0)"))
        connection.execute(
            sa.text(
                "INSERT INTO runs (id, experiment_id, number, display_name, status, run_type, created_time,"
                " start_time, end_time) VALUES ('old_1', 1, 1, 'kept', 'Completed', 'interactive', 1.0, 1.0, 2.0)"
            )
        )
        connection.execute(sa.text("INSERT INTO tags (run_id, key, value) VALUES ('old_1', 'k', 'v')"))
        connection.execute(
            sa.text(
                "INSERT INTO metrics (run_id, name, kind, description, count, last_value)"
                " VALUES ('old_1', 'loss', 'scalar', '', 2, '0.5')"
            )
        )
        connection.execute(
            sa.text(
                "INSERT INTO metric_chunks (metric_id, first_index, count, encoding, steps, vals, times)"
                " VALUES (1, 0, 2, 'f8', NULL, :vals, :times)"
            ),
            {"vals": np.array([1.0, 0.5], "<f8").tobytes(), "times": np.array([1.0, 2.0], "<f8").tobytes()},
        )
        connection.commit()
    engine.dispose()

    ws = Workspace(uri, tmp_path / "artifacts")
    try:
        run = ws.get_run("old_1")
        assert (run.display_name, run.status, run.get_tags()) == ("kept", "Completed", {"k": "v"})
        assert run.get_metrics() == {"loss": [1.0, 0.5]}
        assert run.get_details()["target"] is None
        assert Experiment(ws, "old").start_logging().number == 2
        with ws.store._engine.connect() as connection:
            assert connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == SCHEMA_REVISION
            assert connection.exec_driver_sql("SELECT count(*) FROM compute_targets").scalar() == 0
    finally:
        ws.store.close()


def test_a_postgres_database_written_by_a_newer_schema_is_refused(postgres_server: PostgresServer) -> None:
    uri = postgres_server.create_database()
    engine = create_postgres_engine(uri)
    with engine.begin() as connection:
        connection.exec_driver_sql("UPDATE alembic_version SET version_num = '9999_future'")
    engine.dispose()
    with pytest.raises(SchemaVersionError, match="newer runhistory"):
        open_postgres(uri)


LOGGER = """
    import sys
    from runhistory import Workspace, Experiment
    ws = Workspace({uri!r}, {artifacts!r})
    run = Experiment(ws, "shared").start_logging(display_name="worker")
    for i in range({points}):
        run.log("value", i)
        if i % 1000 == 0:
            run.log("marker", i)
            run.tag("progress", i)
    run.complete()
"""


def test_eight_processes_migrate_and_log_into_one_fresh_database_losing_and_duplicating_nothing(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    """Eight processes open one empty database at once (one migrates, under the advisory lock),
    create the same experiment at once, number their runs and log 20k points each."""
    uri = postgres_server.create_database(migrated=False)
    code = LOGGER.format(uri=uri, artifacts=str(tmp_path / "artifacts"), points=POINTS)
    processes = [start_python(code, RUNHISTORY_FLUSH_INTERVAL="0.05") for _ in range(PROCESSES)]
    for process in processes:
        _out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
    ws = Workspace(uri, tmp_path / "artifacts")
    try:
        runs = list(Experiment(ws, "shared").get_runs())
        assert len(runs) == PROCESSES
        assert sorted(run.number for run in runs) == list(range(1, PROCESSES + 1))
        assert len({run.id for run in runs}) == PROCESSES
        for run in runs:
            assert run.status == "Completed"
            assert run.get_metrics("value")["value"] == list(range(POINTS))
            assert run.get_metrics("marker")["marker"] == list(range(0, POINTS, 1000))
            assert run.get_tags()["progress"] == str(POINTS - 1000)
        assert [e.name for e in ws.store.list_experiments()] == ["shared"]
    finally:
        ws.store.close()


def _together(count: int, work) -> list:
    """``work(i)`` in ``count`` threads released at the same moment; their results in order."""
    barrier = threading.Barrier(count)
    results: list = [None] * count
    errors: list[BaseException] = []

    def body(i: int) -> None:
        try:
            barrier.wait()
            results[i] = work(i)
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    return results


def test_writers_appending_to_one_series_at_once_take_turns(ws_postgres: Workspace) -> None:
    store = ws_postgres.store
    run_id = Experiment(ws_postgres, "appends").start_logging().id

    def append(i: int) -> None:
        for k in range(10):
            values = [i * 1000 + k * 10 + j for j in range(10)]
            store.append_metrics(
                [MetricBatch(run_id, "shared", "scalar", values, [None] * 10, [time.time()] * 10)]
            )

    _together(6, append)
    series = store.get_metrics(run_id, ["shared"])["shared"]
    assert sorted(series.values) == sorted(i * 1000 + n for i in range(6) for n in range(100))
    assert list(series.steps) == list(range(600))  # every index once: no two batches got one start


def test_experiments_runs_and_tags_created_at_once_are_created_once(ws_postgres: Workspace) -> None:
    store = ws_postgres.store
    experiment_ids = _together(8, lambda i: store.get_or_create_experiment("raced").id)
    assert len(set(experiment_ids)) == 1
    records = _together(8, lambda i: store.create_run(experiment_ids[0]))
    assert sorted(record.number for record in records) == list(range(1, 9))
    parent = records[0].id
    children = _together(6, lambda i: store.create_run(experiment_ids[0], parent_id=parent))
    assert len({child.id for child in children}) == 6
    _together(6, lambda i: store.set_tags(parent, {"same": str(i)}))
    assert set(store.get_tags(parent)) == {"same"}
    _together(6, lambda i: store.add_properties(parent, {"fixed": "1"}))
    assert store.get_properties(parent) == {"fixed": "1"}


def test_job_slot_claims_at_once_never_exceed_the_limit(ws_postgres: Workspace) -> None:
    store = ws_postgres.store
    experiment = store.get_or_create_experiment("jobs")
    queued = [
        store.create_run(experiment.id, status=RunStatus.QUEUED, run_type="job", target="cpu").id for _ in range(8)
    ]
    granted = _together(8, lambda i: store.claim_job_slot(queued[i], "cpu", 2))
    assert granted.count(True) == 2


@pytest.fixture
def ws_postgres(postgres_uri: str, tmp_path: Path):
    workspace = Workspace(postgres_uri, tmp_path / "artifacts")
    yield workspace
    workspace.store.close()


def test_the_workspace_repr_hides_the_password(ws_postgres: Workspace) -> None:
    assert "postgres:***@" in repr(ws_postgres) and ws_postgres.tracking_uri.split("@")[0] not in repr(ws_postgres)


def test_a_job_on_a_postgres_workspace_reaches_its_database(
    ws_postgres: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The supervisor and the script open the database from the URI (password included) they are given."""
    from runhistory import ScriptRunConfig

    source = tmp_path / "src"
    source.mkdir()
    (source / "train.py").write_text(
        "from runhistory import Run\nrun = Run.get_context()\nfor i in range(3):\n    run.log('loss', 1.0 / (i + 1))\n"
    )
    monkeypatch.chdir(tmp_path)
    run = Experiment(ws_postgres, "jobs").submit(ScriptRunConfig("src", "train.py"))
    run.wait_for_completion()
    assert run.get_status() == "Completed"
    assert run.get_metrics() == {"loss": [1.0, 0.5, 1.0 / 3]}


def test_one_batch_id_applied_at_once_by_many_writers_is_applied_once(ws_postgres: Workspace) -> None:
    store = ws_postgres.store
    run_id = Experiment(ws_postgres, "retries").start_logging().id
    batch = MetricBatch(run_id, "x", "scalar", [1.0, 2.0, 3.0], [None] * 3, [time.time()] * 3)
    _together(6, lambda i: store.append_metrics([batch], batch_id="the-same-retried-batch"))
    assert store.get_metrics(run_id, ["x"])["x"].values == [1.0, 2.0, 3.0]
