"""Runs: one execution of an experiment, with its metrics, tags, properties, files and children."""

from __future__ import annotations

import contextlib
import io
import json
import os
import time
import traceback
import uuid
from pathlib import Path
from typing import Any, BinaryIO, Mapping

from runhistory import liveness
from runhistory.store import owners
from runhistory.artifacts.base import validate_artifact_name
from runhistory.backends import WORKSPACE_FOLDER_NAME
from runhistory.core import settings
from runhistory.core.paths import refuse_non_folder
from runhistory.core.errors import (
    ArtifactNotFoundError,
    ArtifactPathError,
    ArtifactStorageError,
    MetricValueError,
    NotFoundError,
    RunFinishedError,
    RunHistoryError,
)
from runhistory.experiment import Experiment
from runhistory.metrics import SeriesBuffer
from runhistory.core.metric_values import coerce_step, coerce_value
from runhistory.core.validation import INT64_MAX, INT64_MIN, validate_name, validate_text_value
from runhistory.store.base import JOB_RUN_TYPE, MetricKind, MetricSeries, RunFilter, RunRecord, RunStatus
from runhistory.watch import wait_for_run
from runhistory.workspace import Workspace


_now = time.time
_JOB_SPEC_FILE = "job.json"  # runhistory.jobs.spec.JOB_SPEC_FILE: the jobs layer sits above this one


class Run:
    """A run of an experiment. Get one from ``Experiment.start_logging``, ``child_run``,
    ``Experiment.submit``, ``Run.get_context()`` or ``Run(experiment, run_id)``."""

    def __init__(self, experiment: "Experiment", run_id: str) -> None:
        record = experiment.workspace.store.get_run(run_id)
        if record is None or record.experiment_id != experiment.id:
            raise NotFoundError(f"No run {run_id!r} in experiment {experiment.name!r}.")
        self._init(experiment.workspace, record, experiment)

    def _init(self, workspace: "Workspace", record: RunRecord, experiment: "Experiment | None") -> None:
        self._workspace = workspace
        self._backends = workspace.backends
        self._record = record
        self._experiment = experiment
        self._scalar_series: dict[str, SeriesBuffer] = {}  # series name -> the buffer's series for it
        self._ended = record.status in RunStatus.TERMINAL  # a fresh handle of an ended run logs nothing

    @classmethod
    def from_record(
        cls, workspace: "Workspace", record: RunRecord, experiment: "Experiment | None" = None
    ) -> "Run":
        """The handle of a run the store returned (``experiment``: its experiment, when known)."""
        run = cls.__new__(cls)
        run._init(workspace, record, experiment)
        return run

    @classmethod
    def create_in(
        cls,
        experiment: "Experiment",
        *,
        display_name: str | None,
        parent_id: str | None,
        run_type: str,
        status: str = RunStatus.RUNNING,
        target: str | None = None,
    ) -> "Run":
        """A new run of ``experiment`` in the store, and its handle: what ``start_logging``,
        ``child_run`` and ``Experiment.submit`` create. A Running run of an owned type
        (interactive, child) is heartbeated by this process and ended at its exit."""
        if display_name is not None:
            validate_name(display_name, "display", f"a new run of experiment {experiment.name!r}")
        owned = run_type in owners.OWNED_RUN_TYPES and status == RunStatus.RUNNING
        record = experiment.workspace.store.create_run(
            experiment.id,
            display_name=display_name,
            parent_id=parent_id,
            status=status,
            run_type=run_type,
            target=target,
            owner=owners.this_process() if owned else None,
        )
        run = cls.from_record(experiment.workspace, record, experiment)
        if owned:  # this process heartbeats it and ends it at exit
            liveness.own(run)
        return run

    @classmethod
    def get_context(cls, allow_offline: bool = True) -> "Run":
        """Inside a job: the job's own run. Elsewhere: an offline run that prints its metrics."""
        run_id = settings.RUN_ID.text() or None
        if run_id:
            return Workspace.from_config().get_run(run_id)
        if not allow_offline:
            raise NotFoundError(
                f"Run.get_context(allow_offline=False) found no run: ${settings.RUN_ID.name} is not set "
                f"(this process was not started as a runhistory job)."
            )
        from runhistory.offline import OfflineRun  # a subclass of Run: its module imports this one

        return OfflineRun.create()

    # identity
    @property
    def id(self) -> str:
        """The run's unique, stable id."""
        return self._record.id

    @property
    def record(self) -> RunRecord:
        """The run as the store last returned it (status as of the last read: ``get_status()``
        reads again); a frozen :class:`~runhistory.store.base.RunRecord`."""
        return self._record

    @property
    def workspace(self) -> "Workspace":
        """The workspace the run lives in."""
        return self._workspace

    @property
    def number(self) -> int:
        """The run's number in its experiment (1, 2, ...)."""
        return self._record.number

    @property
    def display_name(self) -> str:
        """The run's human-readable name."""
        return self._record.display_name

    @property
    def experiment(self) -> "Experiment":
        """The experiment the run belongs to."""
        if self._experiment is None:
            self._experiment = Experiment(self._workspace, self._record.experiment_name)
        return self._experiment

    @property
    def parent(self) -> "Run | None":
        """The parent run, or None for a top-level run."""
        parent_id = self._record.parent_id
        return None if parent_id is None else self._workspace.get_run(parent_id)

    @property
    def status(self) -> str:
        """The run's current status (read from the store)."""
        return self.get_status()

    def get_status(self) -> str:
        """The run's current status (read from the store)."""
        self.refresh()
        return self._record.status

    def refresh(self) -> None:
        """Read the run again from the store (``record`` then shows its current state)."""
        record = self._backends.store.get_run(self.id)
        if record is not None:
            self._record = record

    def _where(self) -> str:
        return f"run {self.id}"

    # metrics
    def log(self, name: str, value: Any, description: str = "", step: int | None = None) -> None:
        """Log a number (int, float, numpy scalar, bool as 0/1) or a string (azureml's order:
        ``run.log("acc", 0.9, "accuracy")``; give a step as ``step=``).

        Logging a name again appends to its series. ``step`` defaults to the point's
        index in the series. The call only validates and buffers; writing happens in
        the background. What no store could keep (an int or step outside int64, a string
        over 1 MiB, a name that is not valid Unicode) is refused here, at once.
        """
        series = self._scalar_series.get(name)
        if series is None:
            series = self._open_scalar_series(name, description)
        elif description and type(description) is not str:
            self._check_description(name, description)
        kind = type(value)
        if kind is not float and (kind is not int or not INT64_MIN <= value <= INT64_MAX):
            value = coerce_value(name, value, self._where())
        if step is not None and (type(step) is not int or not INT64_MIN <= step <= INT64_MAX):
            step = coerce_step(name, step, self._where())
        series.add(value, step, _now())

    def _open_scalar_series(self, name: str, description: str) -> SeriesBuffer:
        series = self._series(name, MetricKind.SCALAR, description)
        self._scalar_series[name] = series
        return series

    def _series(self, name: str, kind: str, description: str = "") -> SeriesBuffer:
        """The buffer's series of ``name`` (points go in with ``series.add(value, step, time)``)."""
        self._check_active(f"log metric {name!r}")
        validate_name(name, "metric", self._where())
        self._check_description(name, description)
        validate_text_value(name, description or "", "the description of metric", self._where())
        return self._backends.buffer.series(self.id, name, kind, description or "")

    def _check_description(self, name: str, description: Any) -> None:
        if description and not isinstance(description, str):  # run.log(name, value, 5): a step given in azureml's description place
            raise MetricValueError(
                f"Metric {name!r} of {self._where()}: the description must be a string, got "
                f"{type(description).__name__} {description!r:.40}; give a step as step=."
            )

    def _check_active(self, action: str) -> None:
        if self._ended:
            raise RunFinishedError(f"Cannot {action}: run {self.id} has ended ({self._record.status}).")

    def log_list(self, name: str, values: Any, description: str = "") -> None:
        """Log a list of numbers or strings; reads back as a list."""
        if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
            raise MetricValueError(
                f"Metric {name!r} of {self._where()}: log_list takes a list of values, got {type(values).__name__}."
            )
        checked = [coerce_value(name, value, self._where()) for value in values]
        series = self._series(name, MetricKind.LIST, description)
        now = _now()
        for value in checked:
            series.add(value, None, now)

    def log_row(self, name: str, description: str = "", **columns: Any) -> None:
        """Log one row of a table: ``run.log_row("roc", fpr=0.1, tpr=0.7)``."""
        row = self._checked_row(name, columns)
        self._series(name, MetricKind.TABLE, description).add(row, None, _now())

    def log_table(self, name: str, value: Mapping[str, list], description: str = "") -> None:
        """Log a table given as ``{column: [values...]}`` (all columns of one length)."""
        if not isinstance(value, Mapping):
            raise MetricValueError(
                f"Metric {name!r} of {self._where()}: log_table takes a dict of columns, got {type(value).__name__}."
            )
        for column, cells in value.items():
            if isinstance(cells, (str, bytes, Mapping)) or not hasattr(cells, "__len__") or not hasattr(cells, "__getitem__"):
                raise MetricValueError(
                    f"Metric {name!r} of {self._where()}: column {column!r} of a table must be a list of values, "
                    f"got {type(cells).__name__} {cells!r:.40}; for one row, use run.log_row(name, **columns)."
                )
        lengths = {column: len(cells) for column, cells in value.items()}
        if len(set(lengths.values())) > 1:
            raise MetricValueError(f"Metric {name!r} of {self._where()}: columns differ in length: {lengths}.")
        count = next(iter(lengths.values()), 0)
        rows = [self._checked_row(name, {col: cells[i] for col, cells in value.items()}) for i in range(count)]
        series = self._series(name, MetricKind.TABLE, description)
        now = _now()
        for row in rows:
            series.add(row, None, now)

    def _checked_row(self, name: str, columns: Mapping[str, Any]) -> dict[str, Any]:
        for column in columns:
            validate_name(column, f"column of metric {name!r},", self._where())
        return {column: coerce_value(f"{name}.{column}", cell, self._where()) for column, cell in columns.items()}

    def log_image(
        self,
        name: str,
        path: str | os.PathLike | None = None,
        plot: Any = None,
        description: str = "",
        step: int | None = None,
    ) -> None:
        """Log an image: a PNG or JPEG file (``path``; its type is read from its first bytes),
        or a matplotlib Figure or ``matplotlib.pyplot`` (``plot``, saved as PNG).

        Kept among the run's files as ``images/NAME/ID.png`` or ``images/NAME/ID.jpg``. Any
        other file (empty, missing, another format) is refused with one sentence and nothing
        is stored.
        """
        where = f"Image {name!r} of {self._where()}"
        if (path is None) == (plot is None):
            raise MetricValueError(f"{where}: give exactly one of path= or plot=.")
        if plot is not None and not callable(getattr(plot, "savefig", None)):
            raise MetricValueError(
                f"{where}: plot= takes a matplotlib Figure or matplotlib.pyplot (anything with savefig), "
                f"got {type(plot).__name__}; give a file with path= instead."
            )
        self._check_active(f"log image {name!r}")
        if step is not None:
            step = coerce_step(name, step, self._where())
        if path is not None:
            source: str | os.PathLike | BinaryIO = path
            extension = _image_file_extension(Path(path), where)
        else:
            source = _plot_png(plot, where)
            extension = "png"
        series = self._series(name, MetricKind.IMAGE, description)
        file_name = self.upload_file(f"images/{name}/{uuid.uuid4().hex[:12]}.{extension}", source)
        series.add(file_name, step, _now())

    def flush(self) -> None:
        """Write every buffered metric now (reads and ``complete()`` do this themselves)."""
        self._backends.buffer.flush()

    def get_metrics(self, name: str | None = None, recursive: bool = False) -> dict[str, Any]:
        """``{name: value}`` for single values, ``{name: [..]}`` for series; rows and tables
        as ``{column: values}``. With ``recursive``, ``{run_id: {...}}`` over the run and its
        descendants."""
        self.flush()
        names = None if name is None else [name]
        if recursive:  # every run's series in one read (a few queries, or one request to a server)
            ids = [self.id, *(child.id for child in self.get_children(recursive=True))]
            found = self._backends.store.get_metrics_of_runs(ids, names=names)
            return {run_id: {key: _metric_value(s) for key, s in found.get(run_id, {}).items()} for run_id in ids}
        return {key: _metric_value(series) for key, series in self.get_metric_series(names).items()}

    def get_metric_series(self, names: list[str] | None = None, start: int = 0) -> dict[str, MetricSeries]:
        """Series with their steps and wall times (what TensorBoard export needs)."""
        self.flush()
        return self._backends.store.get_metrics(self.id, names, start)

    # children
    def child_run(self, name: str | None = None) -> "Run":
        """A new child run, Running; as a context manager it completes, or fails on an exception."""
        self._check_active(f"start a child run {name!r}")
        return Run.create_in(self.experiment, display_name=name, parent_id=self.id, run_type="child")

    def get_children(self, recursive: bool = False) -> list["Run"]:
        """Child runs, oldest first; with ``recursive``, all descendants (depth first)."""
        records = self._backends.store.list_runs(RunFilter(parent_id=self.id))
        children = [Run.from_record(self._workspace, record) for record in reversed(records)]
        if not recursive:
            return children
        return [descendant for child in children for descendant in [child, *child.get_children(recursive=True)]]

    # end
    def complete(self) -> None:
        """Mark the run Completed, after writing its buffered metrics (waiting at most
        ``$RUNHISTORY_COMPLETE_TIMEOUT`` seconds for a stalled store: then what is still pending
        waits in a spill file, and a warning says how many points and where)."""
        self._end(RunStatus.COMPLETED)

    def fail(self, error_details: BaseException | str | None = None, error_code: str | None = None) -> None:
        """Mark the run Failed, recording the error (an exception or a message)."""
        self._end(RunStatus.FAILED, _error_record(error_details, error_code))

    def cancel(self) -> None:
        """Cancel the run. An interactive or child run is Canceled at once. A job run reads
        CancelRequested until its supervisor has ended the script's whole process tree, then
        Canceled; a job whose script has not started yet never starts it (one still queued on a
        Ray target is Canceled at once; a running Ray job is stopped through Ray's ``stop_job``)."""
        record = self._backends.store.get_run(self.id) or self._record
        if record.run_type != JOB_RUN_TYPE or record.status in RunStatus.TERMINAL:
            self._end(RunStatus.CANCELED)
            return
        self._record = self._backends.store.set_status(self.id, RunStatus.CANCEL_REQUESTED)
        if self._record.status != RunStatus.CANCEL_REQUESTED:
            return  # it had ended, or was still held in its target's queue (Canceled at once)
        target = self._workspace.find_compute_target(record.target)
        if target is not None:  # a Ray job is stopped through Ray; a local one's supervisor sees the request
            target.cancel_job(self)
            self.refresh()

    def _end(self, status: str, error: dict[str, Any] | None = None) -> None:
        # Bounded ($RUNHISTORY_COMPLETE_TIMEOUT): a stalled store leaves the points in the spill
        # file, said in one sentence, rather than holding the run's end.
        self._backends.buffer.settle(f"run {self.id}")
        self._record = self._backends.store.set_status(self.id, status, error=error)
        self._ended = True
        self._scalar_series = {}
        self._backends.buffer.forget_run(self.id)
        liveness.release(self)

    def wait_for_completion(
        self,
        show_output: bool = False,
        wait_post_processing: bool = False,
        raise_on_error: bool = True,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """Block until the run ends; returns :meth:`get_details`.

        ``show_output`` prints ``RunId:``, then the job's driver log (its stdout and
        stderr) as it grows, then an execution summary. A Failed run raises
        :class:`~runhistory.core.errors.RunFailedError` with its error when ``raise_on_error``.
        ``wait_post_processing`` is accepted for compatibility: a job's outputs are
        uploaded before its status becomes terminal, so there is nothing more to wait for.
        ``timeout`` (seconds) raises :class:`~runhistory.core.errors.WaitTimeoutError` when passed.
        """
        return wait_for_run(self, show_output=show_output, raise_on_error=raise_on_error, timeout=timeout)

    def __enter__(self) -> "Run":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc is None:
            self.complete()
        elif isinstance(exc, KeyboardInterrupt):
            self.cancel()
        else:
            self.fail(exc)

    # tags and properties
    def tag(self, key: str, value: Any = None) -> None:
        """Set one tag (a tag without a value has the value ``""``)."""
        self.set_tags({key: value})

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Add or overwrite tags; values are stored as strings."""
        where = self._where()
        checked = {
            validate_name(key, "tag", where): validate_text_value(key, "" if v is None else str(v), "tag", where)
            for key, v in tags.items()
        }
        self._backends.store.set_tags(self.id, checked)

    def get_tags(self) -> dict[str, str]:
        """The run's tags."""
        return self._backends.store.get_tags(self.id)

    def add_properties(self, properties: Mapping[str, Any]) -> None:
        """Add properties (values as strings); a property cannot change once set."""
        where = self._where()
        checked = {
            validate_name(key, "property", where): validate_text_value(key, str(v), "property", where) for key, v in properties.items()
        }
        self._backends.store.add_properties(self.id, checked)

    def get_properties(self) -> dict[str, str]:
        """The run's properties."""
        return self._backends.store.get_properties(self.id)

    # files
    def upload_file(self, name: str, path_or_stream: str | os.PathLike | BinaryIO) -> str:
        """Store a local file (or a binary stream) among the run's files as ``name``."""
        name = validate_artifact_name(name, self.id)
        if hasattr(path_or_stream, "read"):
            self._backends.artifacts.write(self.id, name, path_or_stream)
            return name
        local = Path(path_or_stream)
        if not local.is_file():
            raise ArtifactNotFoundError(f"Cannot upload {name!r} to {self._where()}: {local} is not a file.")
        with open(local, "rb") as source:
            self._backends.artifacts.write(self.id, name, source)
        return name

    def upload_folder(self, name: str, path: str | os.PathLike) -> list[str]:
        """Store every file under a local folder as ``name/<relative path>``; returns the names.

        Left out: the workspace itself (what ``Workspace.local_folders()`` names: its
        ``.runhistory/`` folder, or its SQLite database with the ``-wal``/``-shm``/``-journal``
        files beside it, and its local artifact folder) and every folder named ``.runhistory``,
        so that ``upload_folder("folder", ".")`` never copies a run history into a run. Symlinked
        folders are not followed.
        """
        name = validate_artifact_name(name.rstrip("/") if isinstance(name, str) else name, self.id)  # "outputs/" too
        folder = Path(path)
        if not folder.is_dir():
            raise ArtifactNotFoundError(f"Cannot upload folder {name!r} to {self._where()}: {folder} is not a folder.")
        excluded = [Path(os.path.realpath(entry)) for entry in self._workspace.local_folders()]
        real = Path(os.path.realpath(folder))
        if real.name == WORKSPACE_FOLDER_NAME or _is_inside_any(real, excluded):
            raise ArtifactPathError(
                f"Cannot upload folder {name!r} to {self._where()}: {folder} holds a workspace's own files "
                f"(its database or run files); upload the folder your files are in."
            )
        uploaded = []
        for local in _files_to_upload(folder, excluded):
            uploaded.append(self.upload_file(f"{name}/{local.relative_to(folder).as_posix()}", local))
        return uploaded

    def get_file_names(self) -> list[str]:
        """Names of the run's files, sorted."""
        return list(self._backends.artifacts.list(self.id))

    def download_file(self, name: str, output_file_path: str | os.PathLike | None = None) -> Path:
        """Copy one of the run's files to ``output_file_path`` (a file or a folder; default: here).

        The copy is written beside the target and renamed into place when whole: a failed
        download leaves no half-written file, and an existing file stays as it was.
        """
        name = validate_artifact_name(name, self.id)
        if self._backends.artifacts.size(self.id, name) is None:
            raise ArtifactNotFoundError(f"Run {self.id} has no file {name!r}.")
        target = Path(output_file_path) if output_file_path is not None else Path(Path(name).name)
        what = f"Cannot download {name!r} of {self._where()} to {target}"
        partial = None
        try:
            if target.is_dir():
                target = target / Path(name).name
            _prepare_folder(target.parent, what)
            partial = target.parent / f".{target.name[:64]}.{uuid.uuid4().hex[:12]}.part"
            # mode 0o666 as open() gives: the umask decides, as for any file the user writes
            with os.fdopen(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), "wb") as out:
                self._backends.artifacts.download(self.id, name, out)
            os.replace(partial, target)
            partial = None
        except RunHistoryError:
            raise
        except OSError as exc:
            raise ArtifactStorageError(f"{what}: {exc.strerror or exc}.") from None
        finally:
            if partial is not None:
                with contextlib.suppress(OSError):
                    os.unlink(partial)
        return target

    def download_files(
        self, prefix: str | None = None, output_directory: str | os.PathLike | None = None
    ) -> list[Path]:
        """Copy the run's files whose names start with ``prefix`` under ``output_directory``, keeping paths."""
        root = Path(output_directory) if output_directory is not None else Path.cwd()
        refuse_non_folder(root, f"Cannot download the files of {self._where()} into", ArtifactStorageError)
        names = list(self._backends.artifacts.list(self.id, prefix or ""))
        if names:
            _prepare_folder(root, f"Cannot download the files of {self._where()} into {root}")
        return [self.download_file(name, root / name) for name in names]

    # details
    def get_details(self) -> dict[str, Any]:
        """Status, times, tags, properties, error and files of the run, as a dict."""
        self.refresh()
        record = self._record
        details: dict[str, Any] = {
            "runId": record.id,
            "runNumber": record.number,
            "displayName": record.display_name,
            "experiment": record.experiment_name,
            "parentRunId": record.parent_id,
            "runType": record.run_type,
            "target": record.target,
            "status": record.status,
            "createdTimeUtc": _iso(record.created_time),
            "startTimeUtc": _iso(record.start_time),
            "endTimeUtc": _iso(record.end_time),
            "tags": self.get_tags(),
            "properties": self.get_properties(),
            "logFiles": {name: name for name in self._backends.artifacts.list(self.id, "system_logs/")},
        }
        if record.error is not None:
            details["error"] = record.error
        definition = self._run_definition()
        if definition is not None:
            details["runDefinition"] = definition
        return details

    def _run_definition(self) -> dict[str, Any] | None:
        """A job's script, arguments and target, as azureml's ``runDefinition`` (None for other runs)."""
        if self._record.run_type != JOB_RUN_TYPE:
            return None
        try:
            spec = json.loads(self._backends.artifacts.read(self.id, _JOB_SPEC_FILE))
        except (RunHistoryError, OSError, ValueError):  # still uploading, or gone
            return None
        return {
            "script": spec.get("script"),
            "arguments": list(spec.get("arguments") or []),
            "target": spec.get("target"),
            "environmentVariables": dict(spec.get("environment_variables") or {}),
        }

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Run) and other.id == self.id and other.workspace == self._workspace

    def __hash__(self) -> int:
        return hash(self.id)

    def __repr__(self) -> str:
        return (
            f"Run(experiment={self._record.experiment_name!r}, id={self.id!r}, number={self.number}, "
            f"display_name={self.display_name!r}, status={self._record.status!r})"
        )


def _metric_value(series: MetricSeries) -> Any:
    values = series.values
    if series.kind == MetricKind.SUMMARY:  # its payloads stay in the run's event files
        return {"kind": values[-1] if values else None, "count": len(values)}
    if series.kind == MetricKind.LIST:
        return list(values)
    if series.kind == MetricKind.TABLE:
        columns = list(dict.fromkeys(column for row in values for column in row))
        if len(values) == 1:
            return {column: values[0].get(column) for column in columns}
        return {column: [row.get(column) for row in values] for column in columns}
    return values[0] if len(values) == 1 else list(values)


def _error_record(error: BaseException | str | None, code: str | None) -> dict[str, Any]:
    if isinstance(error, BaseException):
        return {
            "message": f"{type(error).__name__}: {error}",
            "type": type(error).__name__,
            "code": code or "UserError",
            "traceback": "".join(traceback.format_exception(type(error), error, error.__traceback__)),
        }
    return {"message": "" if error is None else str(error), "code": code or "UserError"}


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_SIGNATURE = b"\xff\xd8\xff"


def _image_file_extension(path: Path, where: str) -> str:
    """``png`` or ``jpg`` by the file's first bytes; MetricValueError for anything else."""
    try:
        if not path.exists():
            raise ArtifactNotFoundError(f"{where}: {path} does not exist; give a PNG or JPEG file.")
        if not path.is_file():  # a folder, a pipe, a device: opening some of them would block
            kind = "a folder" if path.is_dir() else "not a regular file"
            raise MetricValueError(f"{where}: {path} is {kind}; give a PNG or JPEG file.")
        with open(path, "rb") as image:
            head = image.read(len(_PNG_SIGNATURE))
    except RunHistoryError:
        raise
    except OSError as exc:
        raise MetricValueError(f"{where}: {path} cannot be read ({exc.strerror or exc}).") from None
    if head.startswith(_PNG_SIGNATURE):
        return "png"
    if head.startswith(_JPEG_SIGNATURE):
        return "jpg"
    what = "is empty" if not head else "is neither a PNG nor a JPEG image (by its first bytes)"
    raise MetricValueError(f"{where}: {path} {what}; give a PNG or JPEG file.")


def _plot_png(plot: Any, where: str) -> io.BytesIO:
    """The figure saved as PNG, in memory."""
    picture = io.BytesIO()
    try:
        plot.savefig(picture, format="png")
    except Exception as exc:  # a figure that cannot be drawn: say so, store nothing
        raise MetricValueError(f"{where}: saving the plot as PNG failed ({type(exc).__name__}: {exc}).") from None
    if not picture.getvalue().startswith(_PNG_SIGNATURE):
        raise MetricValueError(f"{where}: the plot's savefig wrote no PNG image; give a matplotlib Figure or pyplot.")
    picture.seek(0)
    return picture


def _is_inside_any(real: Path, entries: list[Path]) -> bool:
    """Whether the resolved path ``real`` is one of ``entries`` (files or folders) or inside one."""
    return any(real == entry or real.is_relative_to(entry) for entry in entries)


def _files_to_upload(folder: Path, excluded: list[Path]) -> list[Path]:
    """The files under ``folder``, sorted, without the workspace's own folders and files."""

    def is_excluded(path: Path) -> bool:
        return _is_inside_any(Path(os.path.realpath(path)), excluded)

    found = []
    for parent, folders, files in os.walk(folder):
        here = Path(parent)
        folders[:] = [f for f in folders if f != WORKSPACE_FOLDER_NAME and not is_excluded(here / f)]
        found += [here / f for f in files if (here / f).is_file() and not is_excluded(here / f)]
    return sorted(found)


def _prepare_folder(folder: Path, what: str) -> None:
    """Create ``folder`` (and its parents) to write into; one sentence when it cannot be."""
    blocking = next((p for p in [folder, *folder.parents] if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise ArtifactStorageError(f"{what}: {blocking} is a file, not a folder.")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ArtifactStorageError(f"{what}: the folder {folder} cannot be created ({exc.strerror or exc}).") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ArtifactStorageError(f"{what}: the folder {folder} is not writable.")


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(timestamp)) + f".{int(timestamp % 1 * 1000):03d}Z"
