"""The exceptions runhistory raises: each says what went wrong and where, in one sentence.

Every class carries the HTTP status a server answers it with (``http_status``) and a stable
``code`` that travels on the wire, so that a client rebuilds the same class from the code
(:func:`error_for_code`), never from a Python class name::

    RunHistoryError (400)
    ├── InvalidNameError (400, also ValueError)
    ├── MetricValueError (400, also TypeError)
    ├── NotFoundError (404, also LookupError)
    │   └── WorkspaceNotFoundError (404)
    ├── RunFinishedError (409)
    ├── StoreUnavailableError (503)
    ├── SchemaVersionError (500)
    ├── ArtifactPathError (400, also ValueError)
    │   ├── ArtifactConflictError (409)
    │   └── UnsafeSnapshotNameError (400)
    ├── ArtifactNotFoundError (404, also FileNotFoundError)
    ├── ArtifactStorageError (507, also OSError)
    ├── TensorboardError (500)
    ├── JobConfigError (400, also ValueError)
    │   └── SnapshotLinkError (400)
    ├── ComputeUnavailableError (503): a compute target (a Ray cluster) that does not answer
    ├── SnapshotTooLargeError (413)
    ├── RunFailedError (500)
    ├── WaitTimeoutError (504, also TimeoutError)
    ├── CorruptWorkspaceError (500)
    ├── SettingError (400, also ValueError)
    ├── MissingExtraError (500, also ImportError)
    ├── ConflictError (409): a request that conflicts with what is stored
    ├── InvalidRequestError (422): a request the server's models refuse
    ├── InvalidBatchError (400): a metric batch that does not decode
    ├── UnauthorizedError (401): no active API token
    └── RequestTooLargeError (413)
"""


from __future__ import annotations


class RunHistoryError(Exception):
    """Base of every error runhistory raises on purpose."""

    http_status = 400
    code = "runhistory_error"


class InvalidNameError(RunHistoryError, ValueError):
    """A metric, tag, experiment or file name that runhistory cannot store."""

    http_status = 400
    code = "invalid_name"


class MetricValueError(RunHistoryError, TypeError):
    """A metric value of a type that runhistory cannot store."""

    http_status = 400
    code = "invalid_metric_value"


class NotFoundError(RunHistoryError, LookupError):
    """A run, experiment or compute target that does not exist."""

    http_status = 404
    code = "not_found"


class RunFinishedError(RunHistoryError):
    """Something was written to a run that has already ended."""

    http_status = 409
    code = "run_finished"


class StoreUnavailableError(RunHistoryError):
    """A store cannot be reached right now (its database or object store is down, restarting,
    locked too long); the same request may succeed later, so clients of a server retry it or spool it."""

    http_status = 503
    code = "store_unavailable"


class SchemaVersionError(RunHistoryError):
    """The workspace was written by a newer runhistory than this one."""

    http_status = 500
    code = "schema_version"


class ArtifactPathError(RunHistoryError, ValueError):
    """A file name that would escape its run's folder."""

    http_status = 400
    code = "invalid_artifact_path"


class ArtifactNotFoundError(RunHistoryError, FileNotFoundError):
    """A file that is not among a run's files, or a local file that does not exist."""

    http_status = 404
    code = "artifact_not_found"


class TensorboardError(RunHistoryError):
    """TensorBoard could not be started, or a log folder could not be served."""

    http_status = 500
    code = "tensorboard_error"


class JobConfigError(RunHistoryError, ValueError):
    """A job configuration (ScriptRunConfig, Estimator, compute target) that cannot run."""

    http_status = 400
    code = "invalid_job_config"


class ComputeUnavailableError(RunHistoryError):
    """A compute target that cannot take or report jobs now (a Ray cluster whose head does not
    answer); names the target's address."""

    http_status = 503
    code = "compute_unavailable"


class SnapshotTooLargeError(RunHistoryError):
    """A job's source folder is larger than the snapshot limit."""

    http_status = 413
    code = "snapshot_too_large"


class RunFailedError(RunHistoryError):
    """A run that ``wait_for_completion`` waited for ended Failed."""

    http_status = 500
    code = "run_failed"


class WaitTimeoutError(RunHistoryError, TimeoutError):
    """A run did not reach a terminal status within the time given."""

    http_status = 504
    code = "wait_timeout"


class WorkspaceNotFoundError(NotFoundError):
    """No workspace where one was looked for (and none was to be created): says where it looked."""

    http_status = 404
    code = "workspace_not_found"


class CorruptWorkspaceError(RunHistoryError):
    """The workspace's database file is damaged, empty or not a runhistory database; it is left as it is."""

    http_status = 500
    code = "corrupt_workspace"


class ArtifactConflictError(ArtifactPathError):
    """A file name that collides with a file or folder the run already has (``a/b`` after ``a``,
    ``c`` after ``c/d``); nothing is written."""

    http_status = 409
    code = "artifact_conflict"


class ArtifactStorageError(RunHistoryError, OSError):
    """An artifact store could not keep a file (disk full, quota, file too large, no permission);
    the partial file is removed and the previous version, if any, is left as it was."""

    http_status = 507
    code = "artifact_storage"


class SnapshotLinkError(JobConfigError):
    """A symlink in a job's source folder that points outside it (or into the workspace), or a
    symlink loop: the snapshot would copy what is not the job's; nothing is submitted."""

    http_status = 400
    code = "snapshot_link"


class UnsafeSnapshotNameError(ArtifactPathError):
    """A name in a job's snapshot listing that would be written outside the job's working folder;
    the supervisor writes nothing."""

    http_status = 400
    code = "unsafe_snapshot_name"


class SettingError(RunHistoryError, ValueError):
    """A ``RUNHISTORY_*`` environment variable whose value cannot be used; names the variable."""

    http_status = 400
    code = "invalid_setting"


class MissingExtraError(RunHistoryError, ImportError):
    """A feature whose optional dependencies are not installed; says which ``pip install`` to run."""

    http_status = 500
    code = "missing_extra"


class ConflictError(RunHistoryError):
    """A write that conflicts with the stored run history (a missing or duplicate reference)."""

    http_status = 409
    code = "conflict"


class InvalidRequestError(RunHistoryError):
    """A request to a runhistory server that its request models refuse (a missing or mistyped field)."""

    http_status = 422
    code = "invalid_request"


class InvalidBatchError(RunHistoryError):
    """A metric batch sent to a runhistory server that does not decode."""

    http_status = 400
    code = "invalid_batch"


class UnauthorizedError(RunHistoryError):
    """A request to a runhistory server without an active API token, where one is required."""

    http_status = 401
    code = "unauthorized"


class RequestTooLargeError(RunHistoryError):
    """A request body past a runhistory server's limits (see the RUNHISTORY_SERVER_* settings)."""

    http_status = 413
    code = "request_too_large"


def first_line(error: BaseException) -> str:
    """The first line of an exception's message (its class name when it has none)."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def _subclasses(root: type[RunHistoryError]) -> list[type[RunHistoryError]]:
    found = [root]
    for child in root.__subclasses__():
        found += _subclasses(child)
    return found


def error_for_code(code: object, status: int) -> type[RunHistoryError]:
    """The class whose stable ``code`` this is; for an unknown code (a newer server), the class
    of the HTTP ``status`` (404: :class:`NotFoundError`, 503: :class:`StoreUnavailableError`),
    else :class:`RunHistoryError`."""
    for cls in _subclasses(RunHistoryError):
        if cls.code == code and cls.__module__ == __name__:
            return cls
    return {404: NotFoundError, 503: StoreUnavailableError}.get(status, RunHistoryError)
