"""Artifact stores: a run's files, behind one interface (:mod:`.base`)."""

from __future__ import annotations

from runhistory.artifacts.base import ArtifactStore, validate_artifact_name
from runhistory.core.errors import RunHistoryError

__all__ = ["ArtifactStore", "open_artifact_store", "validate_artifact_name"]


def open_artifact_store(uri: str) -> ArtifactStore:
    """The artifact store at ``uri`` (a folder or ``s3://bucket/prefix``), without opening any run-history store."""
    if uri.startswith("s3://"):
        from runhistory.artifacts.s3 import S3ArtifactStore  # the [s3] extra's store: only its users load it

        return S3ArtifactStore(uri)
    if uri.startswith(("http://", "https://")):
        raise RunHistoryError(f"The files of a runhistory server ({uri}) are reached through its client, not as an artifact store.")
    if "://" in uri:
        scheme = uri.split("://", 1)[0]
        raise RunHistoryError(f"Artifact URI {uri!r} uses {scheme!r}, which this runhistory cannot reach yet; use a folder.")
    from runhistory.artifacts.local import LocalArtifactStore  # start-up speed: a job of S3 never loads it

    return LocalArtifactStore(uri)
