"""Run statuses and job heartbeat timing: plain constants, importable without numpy or SQLAlchemy.

A job's supervisor imports this before anything heavier, so that its script starts fast.
"""

from __future__ import annotations


class RunStatus:
    """The statuses a run moves through (Azure ML v1 names)."""

    NOT_STARTED = "NotStarted"
    QUEUED = "Queued"
    STARTING = "Starting"
    RUNNING = "Running"
    NOT_RESPONDING = "NotResponding"  # its process stopped heartbeating, and whether it died is not known
    CANCEL_REQUESTED = "CancelRequested"  # cancel() was called; the job's processes are still ending
    COMPLETED = "Completed"
    FAILED = "Failed"
    CANCELED = "Canceled"

    ALL = (NOT_STARTED, QUEUED, STARTING, RUNNING, NOT_RESPONDING, CANCEL_REQUESTED, COMPLETED, FAILED, CANCELED)
    TERMINAL = frozenset({COMPLETED, FAILED, CANCELED})


# A job's supervisor writes a heartbeat this often; a job run that is not terminal and whose
# last heartbeat is older than HEARTBEAT_TIMEOUT_S reads as Failed (its supervisor is gone).
HEARTBEAT_INTERVAL_S = 1.0
HEARTBEAT_TIMEOUT_S = 6.0
JOB_RUN_TYPE = "job"

__all__ = ["HEARTBEAT_INTERVAL_S", "HEARTBEAT_TIMEOUT_S", "JOB_RUN_TYPE", "RunStatus"]
