"""Workspace URIs: what each scheme means, their canonical form, and how they appear in messages.

- a folder, or ``sqlite:///FILE``: an embedded workspace (SQLite);
- ``postgresql://USER:PASSWORD@HOST:PORT/DATABASE``: a team database;
- ``http(s)://HOST:PORT``: a runhistory server;
- artifact URIs: a folder, ``s3://bucket/prefix``, or the server.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

from runhistory.core.errors import RunHistoryError

DB_FILE_NAME = "runhistory.db"
ARTIFACTS_FOLDER_NAME = "artifacts"

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
                    f"Tracking URI {redact_uri(canonical)!r} names no database; "
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


def redact_uri(uri: str) -> str:
    """A URI fit for messages and logs: its password, if any, replaced by ``***``."""
    if "://" not in uri or "@" not in uri:
        return uri
    # SQLAlchemy's own parser (imported here: it costs start-up time, and most URIs have no password)
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(uri)
    except (ArgumentError, ValueError):
        return uri.split("://", 1)[0] + "://***@" + uri.rsplit("@", 1)[1]
    return url.render_as_string(hide_password=True) if url.password is not None else uri



LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", ""})


def machine_local_uri(uri: str) -> bool:
    """Whether only this machine reaches what ``uri`` names: a file or folder (an embedded run
    history, a local artifact folder), or a server or database on a loopback address."""
    if uri.startswith("sqlite:///") or "://" not in uri or uri.startswith("file://"):
        return True
    host = (urlsplit(uri).hostname or "").lower()
    return host in LOOPBACK_HOSTS or host.startswith("127.")
