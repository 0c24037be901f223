"""Opening a SQL database for the store: connection settings and schema migrations.

SQLite runs in WAL mode with a busy timeout, and every write transaction starts with
``BEGIN IMMEDIATE`` so that concurrent writers queue instead of failing half way.
The schema is brought to the newest Alembic revision on open; a database written by a
newer runhistory is refused with a clear error instead of being misread.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from filelock import FileLock
from sqlalchemy import event
from sqlalchemy.engine import Engine

from runhistory.errors import RunHistoryError, SchemaVersionError
from runhistory.store.sql.schema import SCHEMA_REVISION

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_S = 60.0


def head_revision() -> str:
    """The newest schema revision this runhistory knows."""
    return _script_directory().get_current_head()


def known_revisions() -> set[str]:
    """Every schema revision this runhistory knows."""
    return {rev.revision for rev in _script_directory().walk_revisions()}


def _script_directory():
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(MIGRATIONS_DIR))


def create_sqlite_engine(db_path: Path) -> Engine:
    """An engine on a SQLite file with WAL, busy timeout and foreign keys on."""
    engine = sa.create_engine(
        f"sqlite:///{db_path}",
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False},
    )

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None  # transactions are begun below, explicitly
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection) -> None:
        mode = "IMMEDIATE" if connection.get_execution_options().get("writing") else "DEFERRED"
        connection.exec_driver_sql(f"BEGIN {mode}")

    return engine


def open_sqlite(db_path: Path) -> Engine:
    """Open (creating or upgrading as needed) the SQLite database of a workspace."""
    db_path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_sqlite_engine(db_path)
    try:
        if _stored_revision(engine) != SCHEMA_REVISION:
            with FileLock(str(db_path) + ".lock", timeout=SQLITE_BUSY_TIMEOUT_S):
                migrate(engine, where=str(db_path))
    except sa.exc.DatabaseError as exc:
        engine.dispose()
        raise RunHistoryError(f"Cannot open {db_path} as a runhistory workspace database: {exc.orig}.") from exc
    return engine


def migrate(engine: Engine, where: str) -> None:
    """Bring the schema to the newest revision; refuse a schema newer than this code."""
    stored = _stored_revision(engine)
    if stored is not None and stored not in known_revisions():
        raise SchemaVersionError(
            f"The workspace database {where} has schema revision {stored!r}, written by a newer "
            f"runhistory than this one (newest known: {head_revision()!r}); upgrade runhistory."
        )
    if stored == head_revision():
        return
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    try:
        with engine.connect() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
            connection.commit()
    except sa.exc.OperationalError as exc:
        raise RunHistoryError(f"Could not create or upgrade the workspace database {where}: {exc.orig}") from exc


def _stored_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        if not sa.inspect(connection).has_table("alembic_version"):
            return None
        return connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
