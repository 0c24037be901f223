"""The runs table of an experiment: the view in the URL, one page of rows, and a run's children.

The whole view is in the URL: ``filter`` (the store's filter language), ``order_by`` (a column
key and ``asc``/``desc``), ``columns`` (comma-separated keys), ``parent`` (show that run's children
as the top level: a sweep), ``page`` (from 1, :data:`PAGE_SIZE` runs each) and ``selected``
(comma-separated run ids, kept across pages). The filter applies at the level shown: the
experiment's top-level runs, or the children of ``parent``; an expanded run's children are all
shown, sorted by the same order, so the tree keeps its nesting under any sort.
"""

from __future__ import annotations

import dataclasses
import re
import threading
import time
from dataclasses import dataclass
from typing import Any, Sequence
from urllib.parse import quote, urlencode

from runhistory.store.base import RunFilter, RunKeys, RunRecord, RunStore
from runhistory.ui import columns as cols
from runhistory.ui.columns import Column

PAGE_SIZE = 50
MAX_CHILDREN = 1000  # children shown under one expanded run
MAX_SELECTED = 200
_CHILDREN_ROUND = 200
_PLAIN_ID = re.compile(r"[A-Za-z0-9_.:-]+")


@dataclass(frozen=True)
class RunsView:
    """What the runs table shows, as its URL says."""

    experiment: str
    filter: str = ""
    order_by: str = ""
    columns: str = ""
    parent: str = ""
    page: int = 1
    selected: tuple[str, ...] = ()

    def url(self, **changes: Any) -> str:
        """This view's URL with ``changes`` (empty parameters left out)."""
        view = dataclasses.replace(self, **changes)
        params = {
            "filter": view.filter,
            "order_by": view.order_by,
            "columns": view.columns,
            "parent": view.parent,
            "page": "" if view.page == 1 else str(view.page),
            "selected": ",".join(view.selected),
        }
        query = urlencode({key: value for key, value in params.items() if value})
        return f"/experiments/{quote(view.experiment, safe='')}" + (f"?{query}" if query else "")

    def count_url(self) -> str:
        """The JSON URL of how many runs this view's level and filter match (see :func:`total_of`)."""
        params = {"experiment": self.experiment, "filter": self.filter, "parent": self.parent}
        return "/ui/api/runs-count?" + urlencode({key: value for key, value in params.items() if value})


@dataclass(frozen=True)
class Row:
    """One run of the table: its record, depth in the tree, whether it has children, its cells."""

    run: RunRecord
    depth: int
    has_children: bool
    cells: tuple[tuple[Column, Any], ...]


def run_filter(experiment_id: int, view: RunsView, order: tuple[str, ...]) -> RunFilter:
    """The store filter of the view's level (top-level runs, or the parent's children)."""
    return RunFilter(
        experiment_id=experiment_id,
        parent_id=view.parent or None,
        top_level_only=not view.parent,
        query=view.filter.strip() or None,
        order_by=order,
    )


def build_rows(store: RunStore, runs: Sequence[RunRecord], columns: Sequence[Column], depth: int = 0) -> list[Row]:
    """Rows for ``runs``: metric statistics, tags and properties (those only when shown) and which
    have children, in one query each."""
    groups = {column.group for column in columns}
    ids = [run.id for run in runs]
    stats = store.get_metric_stats(ids) if "metrics" in groups else {}
    tags = store.get_tags_of_runs(ids) if "tags" in groups else {}
    properties = store.get_properties_of_runs(ids) if "properties" in groups else {}
    parents = parents_among(store, runs)
    rows = []
    for run in runs:
        cells = tuple(
            (column, cols.cell(column, run, tags.get(run.id, {}), properties.get(run.id, {}), stats.get(run.id, {})))
            for column in columns
        )
        rows.append(Row(run, depth, run.id in parents, cells))
    return rows


def parents_among(store: RunStore, runs: Sequence[RunRecord]) -> set[str]:
    """The ids of those ``runs`` that have child runs, in a query or a few (each round asks only
    about the runs whose children have not shown up yet)."""
    remaining = {run.id for run in runs if _PLAIN_ID.fullmatch(run.id)}
    found = {run.id for run in runs if run.id not in remaining and has_children(store, run)}
    experiment_ids = {run.experiment_id for run in runs}
    while remaining:
        listed = ", ".join(f'"{run_id}"' for run_id in sorted(remaining))
        children = store.list_runs(
            RunFilter(
                experiment_id=experiment_ids.pop() if len(experiment_ids) == 1 else None,
                query=f"attributes.parent_id in ({listed})",
                limit=_CHILDREN_ROUND,
            )
        )
        parents = {child.parent_id for child in children if child.parent_id in remaining}
        found |= parents
        remaining -= parents
        if len(children) < _CHILDREN_ROUND or not parents:
            break
    return found


def has_children(store: RunStore, run: RunRecord) -> bool:
    """Whether a run has child runs."""
    return store.count_runs(RunFilter(experiment_id=run.experiment_id, parent_id=run.id)) > 0


def children_rows(store: RunStore, parent: RunRecord, columns: Sequence[Column], order: tuple[str, ...], depth: int) -> list[Row]:
    """The rows of a run's children (at most :data:`MAX_CHILDREN`), sorted by ``order``."""
    children = store.list_runs(
        RunFilter(experiment_id=parent.experiment_id, parent_id=parent.id, order_by=order, limit=MAX_CHILDREN)
    )
    return build_rows(store, children, columns, depth)


def total_of(store: RunStore, run_filter: RunFilter, page: int, shown: int, more: bool) -> int | None:
    """How many runs the view has, when that is cheap: known from the page itself when it is the
    last, counted when there is no filter; None otherwise (the page's script asks for the count
    after the page is shown, since counting thousands of runs a filter matches takes a while)."""
    if not more:
        return (page - 1) * PAGE_SIZE + shown if shown else store.count_runs(run_filter)
    return None if run_filter.query else store.count_runs(run_filter)


def page_info(page: int, shown: int, total: int | None) -> str:
    """``1–50 of N`` (``0 of 0`` for an empty table; ``of …`` while the count is not known yet)."""
    if not shown:
        return f"0 of {total}"
    first = (page - 1) * PAGE_SIZE + 1
    return f"{first}–{first + shown - 1} of {'…' if total is None else total}"


def breadcrumbs(store: RunStore, parent_id: str) -> list[RunRecord]:
    """The chain of runs from the top-level ancestor down to ``parent_id`` (for ``parent=`` views)."""
    chain: list[RunRecord] = []
    current = store.get_run(parent_id) if parent_id else None
    while current is not None and len(chain) < 32:
        chain.insert(0, current)
        current = store.get_run(current.parent_id) if current.parent_id else None
    return chain


class KeysCache:
    """Each experiment's :meth:`RunStore.run_keys` (the column picker's choices), read again at most
    every ``ttl_s`` seconds: finding them scans the experiment's series, and a page of the table
    must not wait for that each time (a new metric shows up in the picker a few seconds late)."""

    def __init__(self, store: RunStore, ttl_s: float = 10.0) -> None:
        self.store = store
        self.ttl_s = ttl_s
        self._found: dict[int, tuple[float, RunKeys]] = {}
        self._lock = threading.Lock()

    def get(self, experiment_id: int) -> RunKeys:
        """The experiment's keys, at most ``ttl_s`` seconds old."""
        now = time.monotonic()
        with self._lock:
            cached = self._found.get(experiment_id)
        if cached is not None and now - cached[0] < self.ttl_s:
            return cached[1]
        keys = self.store.run_keys(experiment_id)
        with self._lock:
            self._found[experiment_id] = (now, keys)
        return keys
