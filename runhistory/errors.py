"""The exceptions runhistory raises: each says what went wrong and where, in one sentence."""

from __future__ import annotations


class RunHistoryError(Exception):
    """Base of every error runhistory raises on purpose."""


class InvalidNameError(RunHistoryError, ValueError):
    """A metric, tag, experiment or file name that runhistory cannot store."""


class MetricValueError(RunHistoryError, TypeError):
    """A metric value of a type that runhistory cannot store."""


class NotFoundError(RunHistoryError, LookupError):
    """A run, experiment or compute target that does not exist."""


class RunFinishedError(RunHistoryError):
    """Something was written to a run that has already ended."""


class StoreUnavailableError(RunHistoryError):
    """A store cannot be reached right now (its database or object store is down, restarting,
    locked too long); the same request may succeed later, so clients of a server retry it or spool it."""


class SchemaVersionError(RunHistoryError):
    """The workspace was written by a newer runhistory than this one."""


class ArtifactPathError(RunHistoryError, ValueError):
    """A file name that would escape its run's folder."""


class ArtifactNotFoundError(RunHistoryError, FileNotFoundError):
    """A file that is not among a run's files, or a local file that does not exist."""


class TensorboardError(RunHistoryError):
    """TensorBoard could not be started, or a log folder could not be served."""


class JobConfigError(RunHistoryError, ValueError):
    """A job configuration (ScriptRunConfig, Estimator, compute target) that cannot run."""


class SnapshotTooLargeError(RunHistoryError):
    """A job's source folder is larger than the snapshot limit."""


class RunFailedError(RunHistoryError):
    """A run that ``wait_for_completion`` waited for ended Failed."""


class WaitTimeoutError(RunHistoryError, TimeoutError):
    """A run did not reach a terminal status within the time given."""


class WorkspaceNotFoundError(NotFoundError):
    """No workspace where one was looked for (and none was to be created): says where it looked."""


class CorruptWorkspaceError(RunHistoryError):
    """The workspace's database file is damaged, empty or not a runhistory database; it is left as it is."""


class ArtifactConflictError(ArtifactPathError):
    """A file name that collides with a file or folder the run already has (``a/b`` after ``a``,
    ``c`` after ``c/d``); nothing is written."""


class ArtifactStorageError(RunHistoryError, OSError):
    """An artifact store could not keep a file (disk full, quota, file too large, no permission);
    the partial file is removed and the previous version, if any, is left as it was."""


class SnapshotLinkError(JobConfigError):
    """A symlink in a job's source folder that points outside it (or into the workspace), or a
    symlink loop: the snapshot would copy what is not the job's; nothing is submitted."""


class UnsafeSnapshotNameError(ArtifactPathError):
    """A name in a job's snapshot listing that would be written outside the job's working folder;
    the supervisor writes nothing."""
