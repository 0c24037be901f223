"""Opening the store and artifact store behind a workspace URI (once per process)."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from runhistory.artifacts import ArtifactStore, open_artifact_store
from runhistory.errors import RunHistoryError
from runhistory.metrics import MetricsBuffer
from runhistory.store.base import RunStore

DB_FILE_NAME = "runhistory.db"
ARTIFACTS_FOLDER_NAME = "artifacts"


@dataclass
class Backends:
    """What a workspace talks to: the run-history store, the artifact store, the metrics buffer."""

    store: RunStore
    artifacts: ArtifactStore
    buffer: MetricsBuffer


_opened: dict[tuple[str, ...], Backends] = {}  # (tracking, artifacts[, token])
_opening = threading.Lock()


HTTP_SCHEMES = ("http://", "https://")
POSTGRES_SCHEMES = ("postgresql://", "postgres://", "postgresql+psycopg://")
# Where the files of a PostgreSQL workspace go when no artifact URI is given: one folder per
# database under this one (a team sharing the database should pass a shared artifact URI).
DEFAULT_ARTIFACTS_HOME = Path("~/.runhistory/artifacts")


def normalize_tracking_uri(uri: str | os.PathLike) -> str:
    """A tracking URI in its canonical form: ``sqlite:///<absolute path>`` for embedded stores,
    ``postgresql://[user[:password]@]host[:port]/database[?options]`` for PostgreSQL."""
    text = os.fspath(uri)
    if text.startswith("sqlite:///"):
        return "sqlite:///" + str(Path(text[len("sqlite:///") :]).expanduser().resolve())
    for scheme in POSTGRES_SCHEMES:
        if text.startswith(scheme):
            canonical = "postgresql://" + text[len(scheme) :]
            if not urlsplit(canonical).path.strip("/"):
                raise RunHistoryError(
                    f"Tracking URI {_redacted(canonical)!r} names no database; "
                    f"use postgresql://USER:PASSWORD@HOST:PORT/DATABASE."
                )
            return canonical
    if text.startswith(HTTP_SCHEMES):  # a runhistory server
        return text.rstrip("/")
    if "://" in text:
        scheme = text.split("://", 1)[0]
        raise RunHistoryError(
            f"Tracking URI {text!r} uses {scheme!r}, which this runhistory cannot reach yet; "
            f"use a folder, sqlite:///FILE or postgresql://USER:PASSWORD@HOST:PORT/DATABASE."
        )
    return "sqlite:///" + str(Path(text).expanduser().resolve() / DB_FILE_NAME)


def default_artifact_uri(tracking_uri: str) -> str:
    """Files live in ``artifacts/`` beside the SQLite file unless told otherwise; for a PostgreSQL
    workspace in ``~/.runhistory/artifacts/HOST_PORT_DATABASE``; for a server, the server itself."""
    if tracking_uri.startswith(HTTP_SCHEMES):
        return tracking_uri
    if tracking_uri.startswith("postgresql://"):
        parts = urlsplit(tracking_uri)
        database = parts.path.strip("/")
        folder = f"{parts.hostname or 'localhost'}_{parts.port or 5432}_{database}"
        return str(DEFAULT_ARTIFACTS_HOME.expanduser() / folder)
    return str(Path(tracking_uri[len("sqlite:///") :]).parent / ARTIFACTS_FOLDER_NAME)


def _redacted(uri: str) -> str:
    from runhistory.store.sql.engine import redact_uri

    return redact_uri(uri)


def open_backends(tracking_uri: str, artifact_uri: str | None = None, token: str | None = None) -> Backends:
    """The (cached) backends of a workspace; creates an embedded workspace on first use.

    ``token`` is the API token of a runhistory server (``http(s)://`` URIs); by default
    ``$RUNHISTORY_TOKEN``, else the one ``runhistory login`` saved.
    """
    tracking_uri = normalize_tracking_uri(tracking_uri)
    if not artifact_uri:
        artifact_uri = default_artifact_uri(tracking_uri)
    elif "://" not in artifact_uri:  # a folder; URIs (s3://...) stay as they are
        artifact_uri = str(Path(artifact_uri).expanduser().resolve())
    key = (tracking_uri, artifact_uri) if token is None else (tracking_uri, artifact_uri, token)
    with _opening:
        if key not in _opened:
            store = _open_store(tracking_uri, token)
            if artifact_uri.startswith(HTTP_SCHEMES):
                from runhistory.artifacts.remote import RemoteArtifactStore
                from runhistory.store.remote import RemoteRunStore

                spool_with = store if isinstance(store, RemoteRunStore) else None  # small files wait in its spool
                artifacts: ArtifactStore = RemoteArtifactStore(artifact_uri, token, spool_with)
            else:
                artifacts = open_artifact_store(artifact_uri)
            _opened[key] = Backends(store, artifacts, MetricsBuffer(store))
        return _opened[key]


def _open_store(tracking_uri: str, token: str | None = None) -> RunStore:
    if tracking_uri.startswith(HTTP_SCHEMES):
        from runhistory.store.remote import RemoteRunStore

        return RemoteRunStore(tracking_uri, token)
    from runhistory.store.sql.engine import open_postgres, open_sqlite
    from runhistory.store.sql.store import SqlRunStore

    if tracking_uri.startswith("postgresql://"):
        return SqlRunStore(open_postgres(tracking_uri), tracking_uri)
    return SqlRunStore(open_sqlite(Path(tracking_uri[len("sqlite:///") :])), tracking_uri)


def _reset_after_fork() -> None:
    """A forked child must neither re-write its parent's pending points nor share its connections."""
    for backends in _opened.values():
        backends.buffer.discard_inherited()
        backends.store.after_fork()
        if hasattr(backends.artifacts, "after_fork"):
            backends.artifacts.after_fork()


os.register_at_fork(after_in_child=_reset_after_fork)
