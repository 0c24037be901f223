"""The UI's workspace through the SDK, for what only the SDK does: TensorBoard over runs, and a
job's cancel, which goes through its compute target (a Ray job is stopped through Ray)."""

from __future__ import annotations

import threading

from runhistory.workspace import Workspace


class LazyWorkspace:
    """The workspace of ``tracking_uri`` and ``artifact_uri``, opened on first use (never created)."""

    def __init__(self, tracking_uri: str, artifact_uri: str | None) -> None:
        self.tracking_uri = tracking_uri
        self.artifact_uri = artifact_uri
        self._workspace: Workspace | None = None
        self._lock = threading.Lock()

    def get(self) -> Workspace:
        """The workspace, opened once."""
        with self._lock:
            if self._workspace is None:
                self._workspace = Workspace(self.tracking_uri, self.artifact_uri, create=False)
            return self._workspace
