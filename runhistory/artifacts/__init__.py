"""Artifact stores: a run's files, behind one interface (:mod:`.base`)."""

from runhistory.artifacts.base import ArtifactStore, validate_artifact_name

__all__ = ["ArtifactStore", "validate_artifact_name"]
