"""Opening a SQL database for the store: connection settings and schema migrations.

SQLite runs in WAL mode with a busy timeout, and every write transaction starts with
``BEGIN IMMEDIATE`` so that concurrent writers queue instead of failing half way.
PostgreSQL (psycopg 3) runs at READ COMMITTED with a small connection pool; the store
serializes what needs it with row locks and retries (see ``store.py``).
The schema is brought to the newest Alembic revision on open (under a file lock on SQLite,
a PostgreSQL advisory lock on PostgreSQL); a database written by a newer runhistory is
refused with a clear error instead of being misread.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit, urlunsplit

import sqlalchemy as sa
from filelock import FileLock
from sqlalchemy import event
from sqlalchemy.engine import Engine

from runhistory.errors import RunHistoryError, SchemaVersionError, StoreUnavailableError
from runhistory.store.sql.schema import SCHEMA_REVISION

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_S = 60.0
# pg_advisory_lock key held while migrating a PostgreSQL database ("rhmigrat" in ASCII).
POSTGRES_MIGRATION_LOCK = 0x72686D6967726174
POSTGRES_CONNECT_TIMEOUT_S = 10


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


def postgres_url(uri: str) -> str:
    """The SQLAlchemy URL (psycopg 3 driver) of a ``postgresql://`` tracking URI."""
    return "postgresql+psycopg://" + uri.split("://", 1)[1]


def redact_uri(uri: str) -> str:
    """A URI fit for messages: the password, if any, replaced by ``***``."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[1]}"))


# SQLSTATE classes of a database that cannot serve: connection exceptions, and operator
# intervention (admin or crash shutdown, cannot connect now, database dropped).
_POSTGRES_UNAVAILABLE = ("08", "57P")


def is_connection_failure(exc: sa.exc.DBAPIError) -> bool:
    """Whether the database was unreachable (refused, dropped, shutting down), not the request wrong."""
    if exc.connection_invalidated:
        return True
    state = getattr(exc.orig, "sqlstate", None)
    if state:
        return state.startswith(_POSTGRES_UNAVAILABLE)
    # psycopg reports a failed connect or a lost server without a SQLSTATE
    return isinstance(exc, (sa.exc.OperationalError, sa.exc.InterfaceError)) and type(exc.orig).__module__.startswith("psycopg")


@contextmanager
def unavailable_as_error(uri: str) -> Iterator[None]:
    """Turn a lost or refused database connection into :class:`StoreUnavailableError` (worth retrying)."""
    try:
        yield
    except sa.exc.DBAPIError as exc:
        if not is_connection_failure(exc):
            raise
        raise StoreUnavailableError(
            f"The database of the run history at {redact_uri(uri)} cannot be reached: {_first_line(exc.orig)}"
        ) from exc


def create_postgres_engine(uri: str) -> Engine:
    """An engine on a PostgreSQL database (psycopg 3), with a small pool checked before use.

    Packed metric chunks are large bytea values: PostgreSQL's default TOAST compression
    (pglz) costs ~0.5 s per million points written, lz4 (PostgreSQL 14+) ~0.05 s, so each
    connection asks for lz4 where the server has it.
    """
    engine = sa.create_engine(
        postgres_url(uri),
        pool_size=4,
        max_overflow=8,
        pool_pre_ping=True,
        pool_recycle=1800,
        connect_args={"connect_timeout": POSTGRES_CONNECT_TIMEOUT_S, "application_name": "runhistory"},
    )

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection, _record) -> None:
        try:
            with dbapi_connection.cursor() as cursor:
                cursor.execute("SET default_toast_compression = 'lz4'")
            dbapi_connection.commit()
        except Exception:  # a server before 14 or built without lz4 keeps pglz
            dbapi_connection.rollback()

    return engine


def open_postgres(uri: str) -> Engine:
    """Open (creating the tables or upgrading them as needed) the PostgreSQL database of a workspace.

    The database itself must exist; concurrent openers migrate one at a time under an advisory lock.
    """
    engine = create_postgres_engine(uri)
    where = redact_uri(uri)
    try:
        if _stored_revision(engine) != SCHEMA_REVISION:
            with engine.connect() as lock:
                lock.execute(sa.select(sa.func.pg_advisory_lock(POSTGRES_MIGRATION_LOCK)))
                lock.commit()
                try:
                    migrate(engine, where=where)
                finally:
                    lock.execute(sa.select(sa.func.pg_advisory_unlock(POSTGRES_MIGRATION_LOCK)))
                    lock.commit()
    except sa.exc.DatabaseError as exc:
        engine.dispose()
        raise RunHistoryError(f"Cannot open {where} as a runhistory workspace database: {_first_line(exc.orig)}") from exc
    except BaseException:
        engine.dispose()
        raise
    return engine


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


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
        raise RunHistoryError(f"Could not create or upgrade the workspace database {where}: {_first_line(exc.orig)}") from exc


def _stored_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        if not sa.inspect(connection).has_table("alembic_version"):
            return None
        return connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
