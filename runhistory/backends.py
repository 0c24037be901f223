"""Opening the store and artifact store behind a workspace URI (once per process), and closing
them all, in one ordered sequence, at interpreter exit.

Which package opens a URI is decided by its scheme, in one table each (:data:`STORE_OPENERS`,
:data:`ARTIFACT_OPENERS`): ``http(s)://`` a runhistory server (``runhistory.client``),
``sqlite:///`` and ``postgresql://`` ``runhistory.store.sql``, ``s3://`` and a folder
``runhistory.artifacts`` (``.s3``, ``.local``).

At exit: first the hooks given to :func:`add_exit_hook` (in the order added; the runs this
process started are ended there), then every metrics buffer is flushed, then every store is
closed (a SQLite store checkpoints its write-ahead log, so that the ``.db`` file alone holds
all the data). A server's store is not closed here: it drains its spool in its own exit handler
(``runhistory/client/store.py``), which runs after this sequence.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

from runhistory.artifacts import ArtifactStore, open_artifact_store
from runhistory.core.errors import RunHistoryError, WorkspaceNotFoundError
from runhistory.core.uris import HTTP_SCHEMES, default_artifact_uri, normalize_tracking_uri, redact_uri
from runhistory.metrics import MetricsBuffer, flush_all_buffers
from runhistory.store.base import RunStore

WORKSPACE_FOLDER_NAME = ".runhistory"  # the embedded default's folder, of the workspace alone
# What SQLite keeps beside a database file, and the lock runhistory migrates under.
SQLITE_COMPANION_SUFFIXES = ("-wal", "-shm", "-journal", ".lock")


@dataclass
class Backends:
    """What a workspace talks to: the run-history store, the artifact store, the metrics buffer."""

    store: RunStore
    artifacts: ArtifactStore
    buffer: MetricsBuffer

    def sqlite_file(self) -> Path | None:
        """The SQLite database file of an embedded workspace; None for PostgreSQL or a server."""
        uri = self.store.uri
        return Path(uri[len("sqlite:///") :]) if uri.startswith("sqlite:///") else None

    def local_paths(self) -> list[Path]:
        """The folders (or, for a database outside a folder of its own, files) on this machine
        that hold the workspace: its database and its runs' files."""
        paths: list[Path] = []
        db_file = self.sqlite_file()
        if db_file is not None:
            if db_file.parent.name == WORKSPACE_FOLDER_NAME:
                paths.append(db_file.parent)
            else:
                paths += [db_file, *(Path(str(db_file) + suffix) for suffix in SQLITE_COMPANION_SUFFIXES)]
        artifacts = self.artifacts.uri
        if "://" not in artifacts and not any(Path(artifacts).is_relative_to(path) for path in paths):
            paths.append(Path(artifacts))
        return paths

    def display_name(self) -> str:
        """A short name of the workspace: its folder's name, the database's name, or HOST:PORT."""
        db_file = self.sqlite_file()
        if db_file is not None:
            folder = db_file.parent
            if folder.name == WORKSPACE_FOLDER_NAME and folder.parent.name:
                folder = folder.parent
            return folder.name or str(folder)
        parts = urlsplit(self.store.uri)
        if self.store.uri.startswith(HTTP_SCHEMES):
            return parts.netloc.rsplit("@", 1)[-1]
        return parts.path.strip("/")


_opened: dict[tuple[str, ...], Backends] = {}  # (tracking, artifacts[, token])
_opening = threading.Lock()


def open_backends(
    tracking_uri: str, artifact_uri: str | None = None, token: str | None = None, *, create: bool = True
) -> Backends:
    """The (cached) backends of a workspace; creates an embedded workspace on first use.

    ``token`` is the API token of a runhistory server (``http(s)://`` URIs); by default
    ``$RUNHISTORY_TOKEN``, else the one ``runhistory login`` saved. With ``create`` False, a
    database that does not exist yet is :class:`WorkspaceNotFoundError`, and nothing is written.
    """
    tracking_uri = normalize_tracking_uri(tracking_uri)
    if not artifact_uri:
        artifact_uri = default_artifact_uri(tracking_uri)
    elif "://" not in artifact_uri:  # a folder; URIs (s3://...) stay as they are
        artifact_uri = str(Path(artifact_uri).expanduser().resolve())
    key = (tracking_uri, artifact_uri) if token is None else (tracking_uri, artifact_uri, token)
    with _opening:
        if key not in _opened:
            store = open_run_store(tracking_uri, token, create)
            artifacts = _opener_of(ARTIFACT_OPENERS, artifact_uri)(artifact_uri, token, store)
            _opened[key] = Backends(store, artifacts, MetricsBuffer(store))
            _register_exit_sequence_last()
        return _opened[key]


def open_run_store(tracking_uri: str, token: str | None = None, create: bool = True) -> RunStore:
    """A new run-history store for a tracking URI in canonical form (see
    :func:`~runhistory.core.uris.normalize_tracking_uri`), not cached and not closed at exit:
    the caller closes it. ``token`` and ``create`` as for :func:`open_backends`."""
    return _opener_of(STORE_OPENERS, tracking_uri)(tracking_uri, token, create)


# The openers import their package when first called: SQLAlchemy (store.sql), httpx (client)
# and s3fs (artifacts.s3) cost start-up time that a process which never opens them must not pay.


def _open_server_store(uri: str, token: str | None, create: bool) -> RunStore:
    from runhistory.client.store import RemoteRunStore  # httpx: start-up speed

    return RemoteRunStore(uri, token)


def _open_sql_store(uri: str, token: str | None, create: bool) -> RunStore:
    from runhistory.store.sql.engine import open_postgres, open_sqlite  # SQLAlchemy: start-up speed
    from runhistory.store.sql.store import SqlRunStore

    if uri.startswith("postgresql://"):
        return SqlRunStore(open_postgres(uri, create=create), uri)
    db_file = Path(uri[len("sqlite:///") :])
    if not create and not db_file.exists():
        raise WorkspaceNotFoundError(f"No runhistory database at {db_file}.")
    return SqlRunStore(open_sqlite(db_file, create=create), uri)


def _open_server_artifacts(uri: str, token: str | None, store: RunStore) -> ArtifactStore:
    from runhistory.client.artifacts import RemoteArtifactStore  # httpx: start-up speed
    from runhistory.client.store import RemoteRunStore

    spool_with = store if isinstance(store, RemoteRunStore) else None  # small files wait in its spool
    return RemoteArtifactStore(uri, token, spool_with)


def _open_artifact_folder_or_bucket(uri: str, token: str | None, store: RunStore) -> ArtifactStore:
    return open_artifact_store(uri)  # s3:// -> artifacts.s3 (s3fs, imported there), a folder -> artifacts.local


StoreOpener = Callable[[str, "str | None", bool], RunStore]
ArtifactOpener = Callable[[str, "str | None", RunStore], ArtifactStore]

# scheme (the URI's text before "://"; "" for a folder) -> opener
STORE_OPENERS: dict[str, StoreOpener] = {
    "http": _open_server_store,
    "https": _open_server_store,
    "sqlite": _open_sql_store,
    "postgresql": _open_sql_store,
}
ARTIFACT_OPENERS: dict[str, ArtifactOpener] = {
    "http": _open_server_artifacts,
    "https": _open_server_artifacts,
    "s3": _open_artifact_folder_or_bucket,
    "": _open_artifact_folder_or_bucket,
}


def _opener_of(openers: dict[str, Callable], uri: str) -> Callable:
    """The opener of ``uri``'s scheme. An unknown scheme goes to the folder's opener where there
    is one (its own check says what this runhistory can reach), else is refused here."""
    scheme = uri.split("://", 1)[0] if "://" in uri else ""
    opener = openers.get(scheme) or openers.get("")
    if opener is None:
        raise RunHistoryError(
            f"Tracking URI {redact_uri(uri)!r} uses {scheme!r}, which this runhistory cannot reach yet; "
            f"use a folder, sqlite:///FILE, postgresql://USER:PASSWORD@HOST:PORT/DATABASE or http(s)://HOST:PORT."
        )
    return opener




_exit_hooks: list[Callable[[], None]] = []


def add_exit_hook(hook: Callable[[], None]) -> None:
    """Run ``hook()`` at interpreter exit, after the hooks added before it and before the last
    flush of metric buffers and the closing of stores. A hook that raises is reported on stderr
    and the exit sequence goes on."""
    if hook not in _exit_hooks:
        _exit_hooks.append(hook)


def _exit_sequence() -> None:
    """At interpreter exit: the hooks, then every buffer flushed, then every store closed."""
    for hook in list(_exit_hooks):
        _quietly(hook, f"exit hook {getattr(hook, '__qualname__', hook)!r}")
    _quietly(flush_all_buffers, "the last flush of metrics")
    for backends in list(_opened.values()):
        _quietly(lambda: _close_store(backends.store), f"closing {redact_uri(backends.store.uri)}")


def _close_store(store: RunStore) -> None:
    remote = sys.modules.get("runhistory.client.store")
    if remote is not None and isinstance(store, remote.RemoteRunStore):
        return  # a server's store drains its spool in its own exit handler, which runs after this one
    store.close()


def _quietly(step: Callable[[], None], what: str) -> None:
    try:
        step()
    except Exception as exc:  # noqa: BLE001 - one failed step must not stop the others at exit
        print(f"runhistory: {what} failed at exit: {exc}", file=sys.stderr)


def _register_exit_sequence_last() -> None:
    """(Re-)register the exit sequence, so that it runs before any atexit handler registered
    earlier (they run last-in, first-out), such as those of modules imported since."""
    atexit.unregister(_exit_sequence)
    atexit.register(_exit_sequence)


def _reset_after_fork() -> None:
    """A forked child must neither re-write its parent's pending points nor share its connections."""
    for backends in _opened.values():
        backends.buffer.discard_inherited()
        backends.store.after_fork()
        if hasattr(backends.artifacts, "after_fork"):
            backends.artifacts.after_fork()


os.register_at_fork(after_in_child=_reset_after_fork)
atexit.register(_exit_sequence)
