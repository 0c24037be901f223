"""Experiments: named groups of runs in a workspace."""

from __future__ import annotations

import dataclasses
import os
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping, Protocol, runtime_checkable

from runhistory.core.errors import JobConfigError, RunHistoryError
from runhistory.store.base import ExperimentRecord, RunFilter, RunRecord, RunStatus, RunStore
from runhistory.store.query import parse_order_by, parse_query
from runhistory.core.validation import validate_experiment_name

if TYPE_CHECKING:
    from runhistory.run import Run
    from runhistory.workspace import Workspace


@runtime_checkable
class Submittable(Protocol):
    """What ``Experiment.submit`` takes: a config that knows how to start itself as a run of an
    experiment (``ScriptRunConfig`` and ``Estimator`` of :mod:`runhistory.jobs.config`)."""

    def submit_to(self, experiment: "Experiment", tags: Mapping[str, Any] | None = None) -> "Run":
        """Start the config as a new run of ``experiment`` and return the run."""


class Experiment:
    """A named group of runs. ``Experiment(ws, name)`` gets it, creating it when new."""

    def __init__(self, workspace: "Workspace", name: str) -> None:
        record = workspace.store.get_or_create_experiment(validate_experiment_name(name))
        self._init(workspace, record)

    def _init(self, workspace: "Workspace", record: ExperimentRecord) -> None:
        self.workspace = workspace
        self._record = record

    @classmethod
    def from_record(cls, workspace: "Workspace", record: ExperimentRecord) -> "Experiment":
        """The handle of an experiment the store returned."""
        experiment = cls.__new__(cls)
        experiment._init(workspace, record)
        return experiment

    @property
    def record(self) -> ExperimentRecord:
        """The experiment as the store returned it (a frozen :class:`~runhistory.store.base.ExperimentRecord`)."""
        return self._record

    @property
    def name(self) -> str:
        """The experiment's name."""
        return self._record.name

    @property
    def id(self) -> int:
        """The experiment's id in its workspace."""
        return self._record.id

    @staticmethod
    def list(workspace: "Workspace") -> list["Experiment"]:
        """Every experiment of a workspace, by name."""
        return list(workspace.experiments.values())

    def start_logging(
        self, display_name: str | None = None, snapshot_directory: str | os.PathLike | None = None
    ) -> "Run":
        """A new interactive run, Running; complete it (or use it as a context manager) when done."""
        from runhistory.run import Run  # runhistory.run imports this module (see workspace.py's note)

        run = Run.create_in(self, display_name=display_name, parent_id=None, run_type="interactive")
        if snapshot_directory is not None:
            run.upload_folder("snapshot", snapshot_directory)
        return run

    def submit(self, config: Submittable, tags: Mapping[str, Any] | None = None) -> "Run":
        """Run a config as a job, as azureml does: the config submits itself (its ``submit_to``).

        A ``ScriptRunConfig`` or ``Estimator`` snapshots its source folder into a new run (Queued),
        starts it on its compute target, and returns the run without waiting (see
        ``run.wait_for_completion``).
        """
        if not isinstance(config, Submittable):
            raise JobConfigError(
                f"Experiment.submit takes a ScriptRunConfig or an Estimator, got {type(config).__name__}."
            )
        return config.submit_to(self, tags=tags)

    def get_runs(
        self,
        include_children: bool = False,
        tags: str | Iterable[str] | Mapping[str, str | None] | None = None,
        status: str | None = None,
        filter: str | None = None,
        order_by: str | Iterable[str] | None = None,
    ) -> Iterator["Run"]:
        """The experiment's runs, newest first (top-level runs only unless ``include_children``).

        ``tags``: a tag name, a list of names (the runs must have them all) or a dict
        ``{name: value}`` (value None: any value). ``status``: one status name. ``filter``: an
        expression of the run query language (see :mod:`runhistory.store.query`), e.g.
        ``'metrics.mse < 3300 and tags.model = "ridge"'``; ``order_by``: a sort key such as
        ``"metrics.mse asc"`` or a list of them (runs lacking a key come last). The runs are read
        a page at a time as the iterator advances (see :func:`iter_runs`).
        """
        if status is not None and status not in RunStatus.ALL:
            raise RunHistoryError(f"Unknown run status {status!r}; use one of {', '.join(RunStatus.ALL)}.")
        run_filter = query_filter(
            RunFilter(experiment_id=self.id, top_level_only=not include_children, status=status, tags=_tag_filter(tags)),
            filter,
            order_by,
        )
        return self._runs_of(iter_runs(self.workspace.store, run_filter))

    def _runs_of(self, records: Iterator[RunRecord]) -> Iterator["Run"]:
        from runhistory.run import Run  # runhistory.run imports this module (see workspace.py's note)

        for record in records:
            yield Run.from_record(self.workspace, record, experiment=self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Experiment) and other.workspace == self.workspace and other.id == self.id

    def __hash__(self) -> int:
        return hash((self.workspace, self.id))

    def __repr__(self) -> str:
        return f"Experiment(name={self.name!r}, workspace={self.workspace.tracking_uri!r})"


RUNS_PAGE = 100  # runs read at a time by iter_runs


def iter_runs(store: RunStore, run_filter: RunFilter, page_size: int = RUNS_PAGE) -> Iterator[RunRecord]:
    """The runs ``run_filter`` matches, newest first, each once, read ``page_size`` (at least 2) at
    a time as the iterator advances (``run_filter``'s own limit and offset are ignored).

    Pages are asked by offset, each starting at the last run of the page before, and a run is
    yielded only when it sorts after the last one yielded, as keyset paging does: runs created
    meanwhile (newer than all yielded) push seen runs into the next page, where they are
    skipped; runs that leave the filter meanwhile (a status filter while runs end) pull the
    next page past the last run yielded, and it is asked again from further back.
    """
    if page_size < 2:
        raise RunHistoryError(
            f"Runs are read at least 2 a page (each page starts at the last run of the one before), not {page_size}."
        )
    if run_filter.order_by:
        yield from _iter_sorted_runs(store, run_filter, page_size)
        return
    last: tuple[float, int] | None = None  # the sort key of the last run yielded
    offset, back = 0, page_size
    while True:
        page = store.list_runs(dataclasses.replace(run_filter, limit=page_size, offset=offset))
        if last is not None and offset > 0 and (not page or _sort_key(page[0]) < last):
            offset, back = max(0, offset - back), back * 2  # unseen runs may lie before this page
            continue
        back = page_size
        unseen = [record for record in page if last is None or _sort_key(record) < last]
        yield from unseen
        if unseen:
            last = _sort_key(unseen[-1])
        if len(page) < page_size:
            return
        offset += len(page) - 1


def query_filter(run_filter: RunFilter, query: str | None, order_by: str | Iterable[str] | None) -> RunFilter:
    """``run_filter`` with a filter expression and sort keys, both checked now (a bad one raises
    :class:`QueryError` here, not when the runs are first read)."""
    if query is not None:
        parse_query(query)
    keys = (order_by,) if isinstance(order_by, str) else tuple(order_by or ())
    parse_order_by(keys)
    return dataclasses.replace(run_filter, query=query, order_by=keys)


def _iter_sorted_runs(store: RunStore, run_filter: RunFilter, page_size: int) -> Iterator[RunRecord]:
    """Runs in the filter's own order, a page at a time by offset, each yielded once (a run whose
    sort key changes meanwhile may move past the pages read: sorted listings are a snapshot per page)."""
    seen: set[str] = set()
    offset = 0
    while True:
        page = store.list_runs(dataclasses.replace(run_filter, limit=page_size, offset=offset))
        for record in page:
            if record.id not in seen:
                seen.add(record.id)
                yield record
        if len(page) < page_size:
            return
        offset += len(page)


def _sort_key(record: RunRecord) -> tuple[float, int]:
    """Where a run sorts in :meth:`RunStore.list_runs` (newest first: the larger key first)."""
    return (record.created_time, record.number)


def _tag_filter(tags: str | Iterable[str] | Mapping[str, str | None] | None) -> dict[str, str | None]:
    if tags is None:
        return {}
    if isinstance(tags, str):
        return {tags: None}
    if isinstance(tags, Mapping):
        return {key: None if value is None else str(value) for key, value in tags.items()}
    return {key: None for key in tags}
