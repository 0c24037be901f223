"""The run-history store interface: the one narrow door between storage and the SDK.

Every consumer (SDK objects, CLI, TensorBoard export, later the server) talks to a
:class:`RunStore`; the embedded SQLite store, PostgreSQL and the HTTP client implement it.
Records are plain frozen dataclasses so that they travel unchanged over any transport.
"""

from __future__ import annotations

import abc
import dataclasses
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from runhistory.core import validation
from runhistory.core.errors import RunHistoryError
from runhistory.core.status import HEARTBEAT_INTERVAL_S, HEARTBEAT_TIMEOUT_S, JOB_RUN_TYPE, RunStatus
from runhistory.store.tokens import TokenStore


class MetricKind:
    """How a metric series was logged, which decides how it reads back."""

    SCALAR = "scalar"  # run.log: numbers or strings, a single value or a series
    LIST = "list"  # run.log_list: always read back as a list
    TABLE = "table"  # run.log_row / run.log_table: rows, read back as {column: [...]}
    IMAGE = "image"  # run.log_image: file names of PNGs among the run's files
    # A TensorBoard summary that stays in the run's event files (image, histogram, audio, pr_curves,
    # ...): one point per event (its step and wall time), each value the plugin's name ("images").
    SUMMARY = "summary"

    ALL = (SCALAR, LIST, TABLE, IMAGE, SUMMARY)


class MetricSource:
    """Where a metric series came from, which decides whether an export writes it again.

    ``SDK`` series were logged through the SDK (``run.log`` and its kin); ``EVENT_FILES`` series
    were read from the run's own TensorBoard event files (its ``logs/`` files), which TensorBoard
    shows as they are, so that an export never writes them a second time.
    """

    SDK = ""
    EVENT_FILES = "tensorboard"

    ALL = (SDK, EVENT_FILES)


@dataclass(frozen=True)
class ExperimentRecord:
    """An experiment as stored."""

    id: int
    name: str
    created_time: float


@dataclass(frozen=True)
class RunRecord:
    """A run as stored (without its metrics, tags and properties)."""

    id: str
    experiment_id: int
    experiment_name: str
    number: int
    display_name: str
    status: str
    parent_id: str | None
    created_time: float
    start_time: float | None
    end_time: float | None
    run_type: str
    error: dict[str, Any] | None = None
    target: str | None = None  # the compute target of a job run
    heartbeat_time: float | None = None  # the last heartbeat of a job's supervisor or of the run's owner
    # The process that started an interactive or child run (None for jobs and older runs).
    owner_host: str | None = None
    owner_machine: str | None = None
    owner_pid: int | None = None
    owner_start_time: float | None = None


@dataclass(frozen=True)
class RunOwner:
    """The process that started a run and heartbeats it until it ends (see :mod:`runhistory.liveness`).

    ``host`` is the host name; ``machine`` tells machines (and PID namespaces) that share a host
    name apart; ``pid`` and ``start_time`` (the process's creation time) identify the process.
    """

    host: str
    machine: str | None
    pid: int
    start_time: float


@dataclass(frozen=True)
class ComputeTargetRecord:
    """A registered compute target: its kind (``local``, ...) and its configuration."""

    name: str
    kind: str
    config: dict[str, Any]
    created_time: float


@dataclass(frozen=True)
class MetricBatch:
    """Points of one series of one run, as the client buffered them.

    ``steps`` holds ``None`` where the caller gave no step: the store then uses the
    point's index in the series, so the default is right across processes.
    """

    run_id: str
    name: str
    kind: str
    values: Sequence[Any]
    steps: Sequence[int | None]
    times: Sequence[float]
    description: str = ""
    source: str = MetricSource.SDK  # one of MetricSource.ALL; a series keeps the source it was created with


@dataclass(frozen=True)
class MetricSeries:
    """A whole series read back: numpy arrays for steps and times, values as a list (a numpy array
    for a series of numbers read with ``get_metrics_of_runs(numeric_arrays=True)``)."""

    name: str
    kind: str
    steps: np.ndarray
    values: list[Any]
    times: np.ndarray
    description: str = ""
    source: str = MetricSource.SDK


@dataclass(frozen=True)
class MetricSummary:
    """What ``runs show`` needs of a series without reading its points."""

    name: str
    kind: str
    count: int
    last_value: Any
    description: str = ""
    source: str = MetricSource.SDK


@dataclass(frozen=True)
class RunFilter:
    """Which runs :meth:`RunStore.list_runs` returns."""

    experiment_id: int | None = None
    parent_id: str | None = None
    top_level_only: bool = False
    status: str | None = None
    tags: Mapping[str, str | None] = field(default_factory=dict)
    target: str | None = None
    limit: int | None = None  # at most this many runs (the newest first), None for all
    offset: int = 0  # after skipping this many (the next page starts at offset + limit)
    # The run query language (runhistory/store/query.py), e.g. 'metrics.mse < 3300 and tags.model = "ridge"'.
    query: str | None = None
    # Sort keys, e.g. ("metrics.mse asc", "attributes.created_time desc"); runs lacking a key sort last.
    order_by: tuple[str, ...] = ()
    experiment_ids: tuple[int, ...] = ()  # runs of any of these experiments (with experiment_id: of both)


@dataclass(frozen=True)
class MetricStats:
    """What a runs table shows of one series: its kind, count, last value and numeric extremes."""

    kind: str
    count: int
    last: Any
    min: float | None
    max: float | None


@dataclass(frozen=True)
class RunKeys:
    """The metric, tag and property names an experiment's runs have (a column picker's choices), sorted."""

    metrics: tuple[str, ...]
    tags: tuple[str, ...]
    properties: tuple[str, ...]


@dataclass(frozen=True)
class ExperimentSummary:
    """An experiment at a glance: how many runs, how many running, and its last activity (a Unix time,
    the newest of its runs' created, start, end and heartbeat times; None without runs)."""

    id: int
    name: str
    runs: int
    running: int
    last_activity: float | None


MAX_STATS_RUNS = 1000  # runs per get_metric_stats call, at most


class RunStore(abc.ABC):
    """Run history: experiments, runs, their tags, properties and metrics."""

    uri: str

    # experiments
    @abc.abstractmethod
    def get_or_create_experiment(self, name: str) -> ExperimentRecord:
        """The experiment called ``name``, created if it does not exist."""

    @abc.abstractmethod
    def get_experiment(self, name: str) -> ExperimentRecord | None:
        """The experiment called ``name``, or None."""

    @abc.abstractmethod
    def list_experiments(self) -> list[ExperimentRecord]:
        """All experiments, by name."""

    # runs
    @abc.abstractmethod
    def create_run(
        self,
        experiment_id: int,
        *,
        display_name: str | None = None,
        parent_id: str | None = None,
        status: str = RunStatus.RUNNING,
        run_type: str = "interactive",
        target: str | None = None,
        owner: RunOwner | None = None,
    ) -> RunRecord:
        """A new run with the next number of its experiment (a job run names its compute ``target``).

        ``owner`` is the process that started an interactive or child run: a reader marks the run
        Failed once that process is gone (same machine) or NotResponding once it stops heartbeating.
        """

    @abc.abstractmethod
    def get_run(self, run_id: str) -> RunRecord | None:
        """The run with this id, or None.

        A job run whose supervisor stopped heartbeating (see ``HEARTBEAT_TIMEOUT_S``) is
        marked Failed when read, here and in :meth:`list_runs`; a run with an ``owner`` is
        marked Failed when its owner process is known to be gone, NotResponding while its
        heartbeat is silent, and Running again when it beats again.
        """

    def run_exists(self, run_id: str) -> bool:
        """Whether the store has this run, read without :meth:`get_run`'s liveness checks (a
        replayed spool must not mark its ended run Failed before the Completed that follows)."""
        return self.get_run(run_id) is not None

    @abc.abstractmethod
    def get_run_by_number(self, experiment_id: int, number: int) -> RunRecord | None:
        """The run with this number in this experiment, or None."""

    @abc.abstractmethod
    def list_runs(self, run_filter: RunFilter) -> list[RunRecord]:
        """Runs matching the filter, newest (latest created, then highest number) first, or in the
        order of ``run_filter.order_by`` (ties newest first); ``run_filter.query`` is an expression of
        :mod:`runhistory.store.query` (a bad one raises its :class:`QueryError`).

        With ``run_filter.limit`` / ``offset`` only that page is read (and only its runs' liveness
        is checked); a limit or offset below 0 raises :class:`RunHistoryError`.
        """

    def count_runs(self, run_filter: RunFilter) -> int:
        """How many runs :meth:`list_runs` returns for this filter without its limit and offset."""
        return len(self.list_runs(dataclasses.replace(run_filter, limit=None, offset=0)))

    @abc.abstractmethod
    def set_status(
        self,
        run_id: str,
        status: str,
        *,
        error: dict[str, Any] | None = None,
        only_if_not_terminal: bool = True,
        at: float | None = None,
    ) -> RunRecord:
        """Move a run to ``status`` (stamping start/end times); returns the run as stored.

        With ``only_if_not_terminal`` a run that has already ended keeps its status. ``at``
        is when the change happened (default: now), e.g. when a job's script really started.
        """

    # jobs
    @abc.abstractmethod
    def heartbeat(self, run_id: str) -> str:
        """Record that the supervisor of a job run (or the owner of a run) is alive; returns the
        run's status. A NotResponding run is Running again."""

    @abc.abstractmethod
    def claim_job_slot(self, run_id: str, target: str, max_concurrent: int) -> bool:
        """Move a Queued job run to Starting if its target runs fewer than ``max_concurrent``
        jobs and no older queued job of the target is waiting; atomically. True when claimed."""

    @abc.abstractmethod
    def hold_in_queue(self, run_id: str) -> str:
        """Let a Queued job run wait in its target's queue with no process of its own: its heartbeat
        time is cleared, so that it never reads Failed for silence, and :meth:`admit_queued_jobs`
        may admit it. A run that is not a Queued job is left as it is. Returns the run's status
        afterwards; :class:`NotFoundError` for an unknown run."""

    @abc.abstractmethod
    def admit_queued_jobs(self, target: str, max_in_flight: int, limit: int | None = None) -> list[str]:
        """Move the oldest held Queued job runs of ``target`` (see :meth:`hold_in_queue`) to
        Starting, as many as fit beside the target's jobs in flight (Starting, Running or
        CancelRequested, and not silent) under ``max_in_flight``, and at most ``limit``; atomically
        and one admitter of a target at a time, so that no run is admitted twice and the room is
        never exceeded. The admitted runs keep no heartbeat time until their supervisor beats.
        Returns their ids, oldest first (the caller starts them); a bad argument raises
        :class:`RunHistoryError` and changes nothing."""

    @abc.abstractmethod
    def save_compute_target(self, name: str, kind: str, config: Mapping[str, Any]) -> ComputeTargetRecord:
        """Register a compute target, or replace the one of that name."""

    @abc.abstractmethod
    def get_compute_target(self, name: str) -> ComputeTargetRecord | None:
        """The compute target called ``name``, or None."""

    @abc.abstractmethod
    def list_compute_targets(self) -> list[ComputeTargetRecord]:
        """Every registered compute target, by name."""

    # tags and properties
    @abc.abstractmethod
    def set_tags(self, run_id: str, tags: Mapping[str, str | None]) -> None:
        """Add or overwrite tags."""

    @abc.abstractmethod
    def get_tags(self, run_id: str) -> dict[str, str | None]:
        """The run's tags."""

    @abc.abstractmethod
    def add_properties(self, run_id: str, properties: Mapping[str, str]) -> None:
        """Add properties; a property, once set, cannot change its value."""

    @abc.abstractmethod
    def get_properties(self, run_id: str) -> dict[str, str]:
        """The run's properties."""

    def get_tags_of_runs(self, run_ids: Sequence[str]) -> dict[str, dict[str, str | None]]:
        """``{run_id: tags}`` of a page of runs (a run with none, or unknown, maps to ``{}``); stores
        override it to read them in one query rather than one per run."""
        return {run_id: self.get_tags(run_id) if self.run_exists(run_id) else {} for run_id in check_stats_run_ids(run_ids, "Tags of runs")}

    def get_properties_of_runs(self, run_ids: Sequence[str]) -> dict[str, dict[str, str]]:
        """``{run_id: properties}`` of a page of runs, as :meth:`get_tags_of_runs`."""
        return {
            run_id: self.get_properties(run_id) if self.run_exists(run_id) else {}
            for run_id in check_stats_run_ids(run_ids, "Properties of runs")
        }

    # metrics
    @abc.abstractmethod
    def append_metrics(self, batches: Iterable[MetricBatch], batch_id: str | None = None) -> None:
        """Append points to series, atomically for the whole call.

        ``batch_id`` (optional, at most 64 characters) makes the call idempotent: a call with
        an id already applied changes nothing, so a client may retry a batch whose reply it lost.
        """

    @abc.abstractmethod
    def get_metrics(
        self, run_id: str, names: Sequence[str] | None = None, start: int | Mapping[str, int] = 0
    ) -> dict[str, MetricSeries]:
        """Series of one run by name (all when ``names`` is None), from point ``start`` on.

        ``start`` (one index, or one per series name) lets a follower read only what is
        new since its last read.
        """

    @abc.abstractmethod
    def get_metric_summaries(self, run_id: str) -> list[MetricSummary]:
        """Kind, count and last value of each series of a run, by name."""

    def get_metrics_of_runs(
        self, run_ids: Sequence[str], *, names: Sequence[str] | None = None, numeric_arrays: bool = False
    ) -> dict[str, dict[str, MetricSeries]]:
        """``{run_id: {name: series}}`` for many runs at once (a run that does not exist is left
        out); stores override it to read them in a few queries rather than one per run.
        ``numeric_arrays``: a store may give a series of numbers its values as a numpy array
        instead of a list (what a chart reads; the SQL store does)."""
        found: dict[str, dict[str, MetricSeries]] = {}
        for run_id in dict.fromkeys(run_ids):
            if self.run_exists(run_id):
                found[run_id] = self.get_metrics(run_id, names)
        return found

    @abc.abstractmethod
    def get_metric_stats(self, run_ids: Sequence[str]) -> dict[str, dict[str, MetricStats]]:
        """``{run_id: {name: stats}}`` of every series of these runs (at most :data:`MAX_STATS_RUNS`;
        a run that does not exist is left out), read at once for a page of a runs table."""

    @abc.abstractmethod
    def run_keys(self, experiment_id: int) -> RunKeys:
        """The metric, tag and property names of the experiment's runs."""

    @abc.abstractmethod
    def experiment_summaries(self) -> list[ExperimentSummary]:
        """Every experiment with its run counts and last activity, by name."""

    def compact_metrics(self, run_id: str | None = None) -> int:
        """Merge the small stored pieces of a run's series (of every run when None) into few
        large ones; returns how many pieces were merged away. Stores that keep series whole
        have nothing to do."""
        return 0

    # tokens
    def tokens(self) -> TokenStore:
        """The API tokens kept with this run history, for a team server; a store that keeps none raises."""
        raise RunHistoryError(f"The store at {self.uri} keeps no API tokens; give the server a SQL store.")

    def after_fork(self) -> None:
        """In a forked child: drop connections inherited from the parent; the default has none."""

    def close(self) -> None:
        """Release connections; the default has none."""


def check_stats_run_ids(run_ids: Any, what: str = "Metric stats") -> list[str]:
    """The distinct run ids of a page read (:meth:`RunStore.get_metric_stats`, ``get_tags_of_runs``,
    ...), at most :data:`MAX_STATS_RUNS`; one sentence naming ``what`` for a bad list."""
    if isinstance(run_ids, str) or not isinstance(run_ids, Sequence):
        raise RunHistoryError(f"{what} take a list of run ids, not {type(run_ids).__name__}.")
    wanted = list(dict.fromkeys(run_ids))
    if len(wanted) > MAX_STATS_RUNS:
        raise RunHistoryError(f"{what} are read for at most {MAX_STATS_RUNS} runs at a time, not {len(wanted)}: ask a page at a time.")
    for run_id in wanted:
        if not isinstance(run_id, str) or not run_id or len(run_id) > 512:
            raise RunHistoryError(f"A run id for {what.lower()} must be a string of 1 to 512 characters, not {run_id!r:.40}.")
    return wanted


def check_admission(target: Any, max_in_flight: Any, limit: Any) -> None:
    """Refuse, in one sentence, arguments of :meth:`RunStore.admit_queued_jobs` that are not a
    target name, a whole number from 0 and None or a whole number from 0."""
    validation.validate_target_name(target)
    for name, value in (("max_in_flight", max_in_flight), ("limit", limit)):
        if name == "limit" and value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= validation.INT64_MAX:
            raise RunHistoryError(
                f"The {name} of an admission to compute target {target!r} must be a whole number "
                f"from 0 to {validation.INT64_MAX}{' or None' if name == 'limit' else ''}, not {value!r:.40}."
            )
