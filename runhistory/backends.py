"""Opening the store and artifact store behind a workspace URI (once per process)."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

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


_opened: dict[tuple[str, str], Backends] = {}
_opening = threading.Lock()


def normalize_tracking_uri(uri: str | os.PathLike) -> str:
    """A tracking URI in its canonical form: ``sqlite:///<absolute path>`` for embedded stores."""
    text = os.fspath(uri)
    if text.startswith("sqlite:///"):
        return "sqlite:///" + str(Path(text[len("sqlite:///") :]).expanduser().resolve())
    if "://" in text:
        scheme = text.split("://", 1)[0]
        raise RunHistoryError(
            f"Tracking URI {text!r} uses {scheme!r}, which this runhistory cannot reach yet; "
            f"use a folder or sqlite:///FILE."
        )
    return "sqlite:///" + str(Path(text).expanduser().resolve() / DB_FILE_NAME)


def default_artifact_uri(tracking_uri: str) -> str:
    """Files live in ``artifacts/`` beside the SQLite file unless told otherwise."""
    return str(Path(tracking_uri[len("sqlite:///") :]).parent / ARTIFACTS_FOLDER_NAME)


def open_backends(tracking_uri: str, artifact_uri: str | None = None) -> Backends:
    """The (cached) backends of a workspace; creates an embedded workspace on first use."""
    tracking_uri = normalize_tracking_uri(tracking_uri)
    artifact_uri = str(Path(artifact_uri).expanduser().resolve()) if artifact_uri else default_artifact_uri(tracking_uri)
    key = (tracking_uri, artifact_uri)
    with _opening:
        if key not in _opened:
            store = _open_store(tracking_uri)
            _opened[key] = Backends(store, open_artifact_store(artifact_uri), MetricsBuffer(store))
        return _opened[key]


def _open_store(tracking_uri: str) -> RunStore:
    from runhistory.store.sql.engine import open_sqlite
    from runhistory.store.sql.store import SqlRunStore

    return SqlRunStore(open_sqlite(Path(tracking_uri[len("sqlite:///") :])), tracking_uri)


def _reset_after_fork() -> None:
    """A forked child must neither re-write its parent's pending points nor share its connections."""
    for backends in _opened.values():
        backends.buffer.discard_inherited()
        backends.store.after_fork()


os.register_at_fork(after_in_child=_reset_after_fork)
