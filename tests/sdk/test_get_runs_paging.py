"""``Experiment.get_runs`` and ``iter_runs`` read runs a page at a time, as the iterator advances,
and give every run once, newest first, while runs are created or leave the filter meanwhile."""

from __future__ import annotations

from itertools import islice

import pytest

from runhistory import Experiment, Workspace
from runhistory.core.errors import RunHistoryError
from runhistory.experiment import RUNS_PAGE, iter_runs
from runhistory.store.base import RunFilter, RunRecord, RunStatus

PAGE = 7


def _create(ws: Workspace, exp: Experiment, count: int, status: str = RunStatus.COMPLETED) -> list[RunRecord]:
    """``count`` new runs of ``exp``, newest first (as the store lists them)."""
    created = [ws.store.create_run(exp.id, status=status) for _ in range(count)]
    return created[::-1]


def _ids(records) -> list[str]:
    return [record.id for record in records]


@pytest.mark.both_stores
def test_every_run_once_newest_first_across_pages(ws: Workspace, exp: Experiment) -> None:
    runs = _create(ws, exp, 3 * PAGE + 2)
    assert _ids(iter_runs(ws.store, RunFilter(experiment_id=exp.id), page_size=PAGE)) == _ids(runs)
    for count in (PAGE - 1, PAGE, PAGE + 1, 2 * PAGE):  # pages that end exactly, and one short
        listed = _ids(ws.store.list_runs(RunFilter(experiment_id=exp.id, limit=count)))
        assert _ids(islice(iter_runs(ws.store, RunFilter(experiment_id=exp.id), page_size=PAGE), count)) == listed


def test_no_runs_is_an_empty_iterator(ws: Workspace, exp: Experiment) -> None:
    assert list(iter_runs(ws.store, RunFilter(experiment_id=exp.id), page_size=PAGE)) == []
    assert list(exp.get_runs()) == []


@pytest.mark.both_stores
def test_runs_created_while_iterating_neither_repeat_nor_hide_older_ones(ws: Workspace, exp: Experiment) -> None:
    runs = _create(ws, exp, 5 * PAGE)
    walk = iter_runs(ws.store, RunFilter(experiment_id=exp.id), page_size=PAGE)
    seen = []
    for index, record in enumerate(walk):
        seen.append(record.id)
        if index == PAGE - 1:  # the next page is read after these new runs pushed the old ones down
            _create(ws, exp, 1)
        if index == 2 * PAGE:
            _create(ws, exp, 3 * PAGE)  # more than a page: the next pages hold seen runs only at first
    assert seen == _ids(runs)


@pytest.mark.both_stores
def test_runs_leaving_the_filter_while_iterating_hide_no_other_run(ws: Workspace, exp: Experiment) -> None:
    running = _create(ws, exp, 5 * PAGE, status=RunStatus.RUNNING)
    walk = iter_runs(ws.store, RunFilter(experiment_id=exp.id, status=RunStatus.RUNNING), page_size=PAGE)
    seen = []
    for index, record in enumerate(walk):
        seen.append(record.id)
        if index in (PAGE - 1, 3 * PAGE - 1):  # the runs seen so far end: the rest move up past the next offset
            for done in seen[-PAGE:]:
                ws.store.set_status(done, RunStatus.COMPLETED)
    assert seen == _ids(running)


def test_get_runs_reads_each_page_when_it_gets_there(ws: Workspace, exp: Experiment) -> None:
    running = _create(ws, exp, RUNS_PAGE + 30, status=RunStatus.RUNNING)
    walk = exp.get_runs(status=RunStatus.RUNNING)
    first = next(walk)
    assert first.id == running[0].id
    ws.store.set_status(running[-1].id, RunStatus.COMPLETED)  # on the second page, not read yet
    rest = list(walk)
    assert [first.id, *(run.id for run in rest)] == _ids(running[:-1])
    assert all(run.experiment is exp for run in rest)


def test_get_runs_of_many_runs_gives_each_once_newest_first(ws: Workspace, exp: Experiment) -> None:
    runs = _create(ws, exp, 2 * RUNS_PAGE + 5)
    parent = runs[0]
    children = [ws.store.create_run(exp.id, parent_id=parent.id, status=RunStatus.COMPLETED) for _ in range(3)]
    assert [run.id for run in exp.get_runs()] == _ids(runs)
    with_children = [run.id for run in exp.get_runs(include_children=True)]
    assert with_children == _ids(children[::-1]) + _ids(runs)


def test_a_page_of_one_run_is_refused(ws: Workspace, exp: Experiment) -> None:
    with pytest.raises(RunHistoryError, match="at least 2 a page"):
        list(iter_runs(ws.store, RunFilter(experiment_id=exp.id), page_size=1))
