"""Opening a SQL database for the store: connection settings and schema migrations.

SQLite runs in WAL mode with a busy timeout, and every write transaction starts with
``BEGIN IMMEDIATE`` so that concurrent writers queue instead of failing half way.
PostgreSQL (psycopg 3) runs at READ COMMITTED with a small connection pool; the store
serializes what needs it with row locks and retries (see ``store.py``).
The schema is brought to the newest Alembic revision on open (under a file lock on SQLite,
a PostgreSQL advisory lock on PostgreSQL); a database written by a newer runhistory is
refused with a clear error instead of being misread.

A SQLite database is created whole (built beside, then linked into place), so a file that
exists is never initialised: an empty, foreign or damaged file is refused with
:class:`CorruptWorkspaceError` and left as it is. When the last connection of a process
closes, the write-ahead log is checkpointed into the ``.db`` file, so that the file alone
holds the data (a copy of it is a whole workspace).
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator
from urllib.parse import quote

import sqlalchemy as sa
from filelock import FileLock
from sqlalchemy import event
from sqlalchemy.engine import Engine

from runhistory.core import settings
from runhistory.core.extras import require
from runhistory.core.uris import redact_uri
from runhistory.core.errors import (
    first_line,
    CorruptWorkspaceError,
    RunHistoryError,
    SchemaVersionError,
    StoreUnavailableError,
    WorkspaceNotFoundError,
)
from runhistory.store.sql.schema import SCHEMA_REVISION

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_S = 60.0  # the default of $RUNHISTORY_SQLITE_BUSY_TIMEOUT (see busy_timeout())
# pg_advisory_lock key held while migrating a PostgreSQL database ("rhmigrat" in ASCII).
POSTGRES_MIGRATION_LOCK = 0x72686D6967726174
POSTGRES_CONNECT_TIMEOUT_S = 10
SQLITE_HEADER = b"SQLite format 3\x00"
# How long closing the last connection waits for other processes' readers before it leaves
# the write-ahead log to them (they checkpoint it when they close).
SQLITE_CHECKPOINT_WAIT_MS = 2000
# SQLite's primary result codes: a damaged file, a file it cannot open, a file that is not a database.
_SQLITE_CORRUPT, _SQLITE_CANTOPEN, _SQLITE_NOTADB = 11, 14, 26


def busy_timeout() -> float:
    """Seconds a SQLite statement waits for another process's lock (``$RUNHISTORY_SQLITE_BUSY_TIMEOUT``)."""
    return settings.SQLITE_BUSY_TIMEOUT.positive_number()


def head_revision() -> str:
    """The newest schema revision this runhistory knows."""
    return _script_directory().get_current_head()


def known_revisions() -> set[str]:
    """Every schema revision this runhistory knows."""
    return {rev.revision for rev in _script_directory().walk_revisions()}


def _script_directory():
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(MIGRATIONS_DIR))


def create_sqlite_engine(db_path: Path, *, must_exist: bool = False) -> Engine:
    """An engine on a SQLite file with WAL, busy timeout and foreign keys on.

    With ``must_exist``, a connection never creates the file (one deleted meanwhile is an
    error, not a new empty database). A damaged file raises :class:`CorruptWorkspaceError`
    from any query; the last connection of the process to close checkpoints the WAL.
    """
    target = f"file:{quote(str(db_path))}" + ("?mode=rw" if must_exist else "")

    def _connect() -> sqlite3.Connection:
        return sqlite3.connect(target, uri=True, timeout=busy_timeout(), check_same_thread=False)

    engine = sa.create_engine(f"sqlite:///{db_path}", creator=_connect, poolclass=sa.pool.QueuePool)
    open_connections = {"pid": os.getpid(), "count": 0}

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None  # transactions are begun below, explicitly
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout() * 1000)}")
        cursor.close()
        if open_connections["pid"] != os.getpid():  # a forked child inherited none of them
            open_connections.update(pid=os.getpid(), count=0)
        open_connections["count"] += 1

    @event.listens_for(engine.pool, "close")
    @event.listens_for(engine.pool, "close_detached")
    def _checkpoint_after_the_last(dbapi_connection, *_record) -> None:
        if open_connections["pid"] != os.getpid():
            return
        open_connections["count"] -= 1
        if open_connections["count"] <= 0:
            checkpoint_sqlite(dbapi_connection)

    @event.listens_for(engine, "begin")
    def _begin(connection) -> None:
        mode = "IMMEDIATE" if connection.get_execution_options().get("writing") else "DEFERRED"
        connection.exec_driver_sql(f"BEGIN {mode}")

    @event.listens_for(engine, "handle_error")
    def _file_errors_as_sentences(context) -> None:
        error = context.original_exception
        if is_corruption(error):
            raise CorruptWorkspaceError(corrupt_message(db_path, error)) from context.sqlalchemy_exception
        if must_exist and _sqlite_code(error) == _SQLITE_CANTOPEN:
            if not db_path.exists():
                raise WorkspaceNotFoundError(
                    f"The workspace database {db_path} was moved or deleted while in use; put it back "
                    f"(or restore a backup) and run again."
                ) from context.sqlalchemy_exception
            raise RunHistoryError(
                f"Cannot open the workspace database {db_path} ({error}): this user needs to read and "
                f"write it and its folder {db_path.parent}."
            ) from context.sqlalchemy_exception

    return engine


def checkpoint_sqlite(dbapi_connection: sqlite3.Connection) -> None:
    """Copy the write-ahead log into the database file and empty it (best effort: a damaged
    file, or readers of other processes holding on past a short wait, leave it as it is)."""
    try:
        dbapi_connection.execute(f"PRAGMA busy_timeout={SQLITE_CHECKPOINT_WAIT_MS}")
        dbapi_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    except sqlite3.Error:
        pass


def is_corruption(error: BaseException | None) -> bool:
    """Whether a DB-API error says the SQLite file is damaged or is not a database."""
    if not isinstance(error, sqlite3.DatabaseError):
        return False
    code = _sqlite_code(error)
    if code is not None:
        return code in (_SQLITE_CORRUPT, _SQLITE_NOTADB)
    text = str(error)
    return "malformed" in text or "not a database" in text


def _sqlite_code(error: BaseException | None) -> int | None:
    """The primary SQLite result code of a sqlite3 error (None for others)."""
    code = getattr(error, "sqlite_errorcode", None) if isinstance(error, sqlite3.Error) else None
    return None if code is None else code & 0xFF


def corrupt_message(db_path: Path, reason: object, *, foreign: bool = False) -> str:
    """The one sentence of a damaged (or, ``foreign``, an empty or not runhistory's) workspace database."""
    if foreign:
        advice = "put the workspace's backup there, or move the file away to start a new workspace"
    else:
        advice = (
            "restore it from a backup (`runhistory workspace backup DEST` makes one) "
            "and verify it with `runhistory workspace check`"
        )
    return f"The workspace database {db_path} cannot be used ({reason}) and was left as it is; {advice}."


def open_sqlite(db_path: Path, *, create: bool = True) -> Engine:
    """Open (creating or upgrading as needed) the SQLite database of a workspace.

    A new database is made only where no file exists (and ``create`` is true: else
    :class:`WorkspaceNotFoundError`); an existing file that is empty, not SQLite, or SQLite
    without runhistory's tables is refused with :class:`CorruptWorkspaceError`, unchanged.
    """
    if not db_path.exists():
        if not create:
            raise WorkspaceNotFoundError(f"No runhistory database at {db_path}.")
        _create_sqlite(db_path)
    refuse_unless_runhistory_sqlite(db_path)
    engine = create_sqlite_engine(db_path, must_exist=True)
    try:
        if _stored_revision(engine) != SCHEMA_REVISION:
            with FileLock(str(db_path) + ".lock", timeout=busy_timeout()):
                migrate(engine, where=str(db_path))
    except sa.exc.DatabaseError as exc:
        engine.dispose()
        raise RunHistoryError(f"Cannot open {db_path} as a runhistory workspace database: {exc.orig}.") from exc
    except BaseException:
        engine.dispose()
        raise
    return engine


def refuse_unless_runhistory_sqlite(db_path: Path) -> None:
    """Raise :class:`CorruptWorkspaceError` unless ``db_path`` is a SQLite file with runhistory's
    tables; reads only (a check before anything could write to a file that is not ours)."""
    try:
        with open(db_path, "rb") as file:
            header = file.read(len(SQLITE_HEADER))
    except OSError as exc:
        raise RunHistoryError(f"Cannot read the workspace database {db_path}: {exc.strerror or exc}.") from exc
    if not header:
        raise CorruptWorkspaceError(corrupt_message(db_path, "the file is empty: 0 bytes", foreign=True))
    if header != SQLITE_HEADER:
        raise CorruptWorkspaceError(corrupt_message(db_path, "the file is not a SQLite database", foreign=True))
    try:
        probe = sqlite3.connect(f"file:{quote(str(db_path))}?mode=rw", uri=True, timeout=busy_timeout())
        try:
            tables = {row[0] for row in probe.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            probe.close()
    except sqlite3.DatabaseError as exc:
        if is_corruption(exc):
            raise CorruptWorkspaceError(corrupt_message(db_path, exc)) from exc
        raise RunHistoryError(f"Cannot open {db_path} as a runhistory workspace database: {exc}.") from exc
    if "alembic_version" not in tables:
        raise CorruptWorkspaceError(corrupt_message(db_path, "a SQLite database without runhistory's tables", foreign=True))


def _reclaim_freed_pages(building: Path) -> None:
    """Make a new database file able to give pages back (``auto_vacuum=INCREMENTAL``, settable only
    before the first table): compaction frees the pages of the pieces it merges, and
    :func:`release_free_pages` returns them to the file system when a run ends."""
    connection = sqlite3.connect(building)
    try:
        connection.execute("PRAGMA auto_vacuum=INCREMENTAL")
    finally:
        connection.close()


def release_free_pages(engine: Engine, most: int = 4096) -> None:
    """Give up to ``most`` free pages of a SQLite file back, best effort (nothing for a file made
    without incremental auto-vacuum, or for PostgreSQL, whose autovacuum keeps its own free space)."""
    if engine.dialect.name != "sqlite":
        return
    with engine.connect() as connection:
        try:
            # executescript steps the pragma to its end (execute() would free one page); in its
            # own short write transaction
            connection.connection.driver_connection.executescript(f"PRAGMA incremental_vacuum({int(most)});")
        except sqlite3.Error:
            pass  # busy or read-only: the pages are reused by the next writes anyway


def _create_sqlite(db_path: Path) -> None:
    """Make a new workspace database at ``db_path`` whole: built beside it, then linked into
    place only if no file appeared there meanwhile (so other openers never see it half made)."""
    try:
        db_path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunHistoryError(f"Cannot create the workspace folder {db_path.parent}: {exc.strerror or exc}.") from exc
    with FileLock(str(db_path) + ".lock", timeout=busy_timeout()):
        if db_path.exists():
            return
        building = db_path.with_name(f".{db_path.name}.new-{os.getpid()}")
        try:
            _reclaim_freed_pages(building)
            engine = create_sqlite_engine(building)
            try:
                migrate(engine, where=str(db_path))
            finally:
                engine.dispose()
            # everything into the one file before it gets its name: a -wal left beside the
            # temporary name would not follow it
            settle = sqlite3.connect(building)
            try:
                settle.execute("PRAGMA journal_mode=DELETE").fetchall()
            finally:
                settle.close()
            try:
                os.link(building, db_path)  # fails if a file is there: what is there is kept
            except FileExistsError:
                pass
            except OSError:  # a file system without hard links
                if not db_path.exists():
                    os.replace(building, db_path)
        finally:
            for leftover in (building, *(Path(f"{building}{suffix}") for suffix in ("-wal", "-shm", "-journal"))):
                leftover.unlink(missing_ok=True)


def postgres_url(uri: str) -> str:
    """The SQLAlchemy URL (psycopg 3 driver) of a ``postgresql://`` tracking URI."""
    return "postgresql+psycopg://" + uri.split("://", 1)[1]


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
            f"The database of the run history at {redact_uri(uri)} cannot be reached: {first_line(exc.orig)}"
        ) from exc


def create_postgres_engine(uri: str) -> Engine:
    """An engine on a PostgreSQL database (psycopg 3), with a small pool checked before use.

    Packed metric chunks are large bytea values: PostgreSQL's default TOAST compression
    (pglz) costs ~0.5 s per million points written, lz4 (PostgreSQL 14+) ~0.05 s, so each
    connection asks for lz4 where the server has it. Without psycopg (the ``[postgres]`` extra)
    this raises :class:`MissingExtraError` naming the ``pip install`` to run.
    """
    require("psycopg", extra="postgres", feature="a PostgreSQL store")  # imported when a PostgreSQL store opens, not before
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


def open_postgres(uri: str, *, create: bool = True) -> Engine:
    """Open (creating the tables or upgrading them as needed) the PostgreSQL database of a workspace.

    The database itself must exist; concurrent openers migrate one at a time under an advisory lock.
    With ``create`` False, a database without runhistory's tables is :class:`WorkspaceNotFoundError`.
    """
    engine = create_postgres_engine(uri)
    where = redact_uri(uri)
    try:
        stored = _stored_revision(engine)
        if stored is None and not create:
            raise WorkspaceNotFoundError(f"The PostgreSQL database {where} holds no runhistory workspace yet.")
        if stored != SCHEMA_REVISION:
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
        raise RunHistoryError(f"Cannot open {where} as a runhistory workspace database: {first_line(exc.orig)}") from exc
    except BaseException:
        engine.dispose()
        raise
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
        raise RunHistoryError(f"Could not create or upgrade the workspace database {where}: {first_line(exc.orig)}") from exc


def _stored_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        if not sa.inspect(connection).has_table("alembic_version"):
            return None
        return connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
