"""The job definition a supervisor reads from the run's files: what to run, and the limits."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from runhistory.watch import DRIVER_LOG

__all__ = ["DRIVER_LOG", "JOB_SPEC_FILE", "JobSpec", "LOGS_PREFIX", "OUTPUTS_PREFIX", "SNAPSHOT_PREFIX", "SUPERVISOR_LOG"]

JOB_SPEC_FILE = "job.json"
SNAPSHOT_PREFIX = "snapshot/"
SUPERVISOR_LOG = "system_logs/supervisor.log"
LOGS_PREFIX = "logs/"
OUTPUTS_PREFIX = "outputs/"


@dataclass(frozen=True)
class JobSpec:
    """Everything a supervisor needs besides the workspace URIs and the snapshot."""

    script: str  # relative to the snapshot's root, forward slashes
    arguments: list[str]
    target: str
    max_concurrent_runs: int | None = None  # the supervisor waits for one of this many slots
    admits_queue: bool = False  # the target keeps its own queue: the supervisor admits the next jobs at its end
    max_run_duration_seconds: float | None = None
    environment_variables: dict[str, str] = field(default_factory=dict)
    keep_working_folder: bool = False  # the target keeps job folders after the job ends (to debug)

    def to_json(self) -> bytes:
        """The spec as UTF-8 JSON."""
        return json.dumps(asdict(self), indent=2).encode()

    @classmethod
    def from_json(cls, data: bytes) -> "JobSpec":
        """The spec written by :meth:`to_json`."""
        fields: dict[str, Any] = json.loads(data)
        known = {name: value for name, value in fields.items() if name in cls.__dataclass_fields__}
        return cls(**known)  # a field written by a newer runhistory is not this one's business
