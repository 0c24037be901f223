"""The UI's pages, rendered on the server: experiments, an experiment's runs, a run, a comparison."""

from __future__ import annotations

import dataclasses
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from runhistory.core import errors
from runhistory.core.status import JOB_RUN_TYPE, RunStatus
from runhistory.store.base import ExperimentRecord, RunFilter, RunStore
from runhistory.store.query import QueryError
from runhistory.ui import columns as cols
from runhistory.ui import charts
from runhistory.ui import compare as comparing
from runhistory.ui import runs_view
from runhistory.ui.files import IMAGE_TYPES
from runhistory.ui.rendering import render
from runhistory.ui.runs_view import PAGE_SIZE, RunsView
from runhistory.ui.session import Session

router = APIRouter(include_in_schema=False)
Text = Annotated[str, Query(max_length=4096)]
MAX_FILES_SHOWN = 1000
IMAGE_SUFFIXES = frozenset(suffix.lstrip(".") for suffix in IMAGE_TYPES)


def store_of(request: Request) -> RunStore:
    """The app's store."""
    return request.app.state.store


def experiment_named(store: RunStore, name: str) -> ExperimentRecord:
    """The experiment called ``name``; NotFoundError naming it otherwise."""
    found = store.get_experiment(name)
    if found is None:
        raise errors.NotFoundError(f"No experiment called {name[:100]!r}.")
    return found


@router.get("/favicon.ico")
def favicon() -> Response:
    """No icon (an empty answer rather than a 404 in the browser's console)."""
    return Response(status_code=204)


@router.get("/")
def experiments_page(request: Request, _session: Session) -> Response:
    """Every experiment: its runs, how many are running, its last activity."""
    summaries = store_of(request).experiment_summaries()
    return render(request, "experiments.html", title="Experiments", experiments=summaries)


def split_ids(text: str, limit: int) -> tuple[str, ...]:
    """Run ids from a comma-separated list (at most ``limit``)."""
    ids = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    if len(ids) > limit:
        raise errors.InvalidRequestError(f"At most {limit} runs can be given at once, not {len(ids)}.")
    return ids


@router.get("/experiments/{name}")
def runs_page(
    request: Request,
    name: str,
    _session: Session,
    filter: Text = "",  # noqa: A002
    order_by: Text = "",
    columns: Text = "",
    parent: Annotated[str, Query(max_length=200)] = "",
    page: Annotated[int, Query(ge=1, le=10_000_000)] = 1,
    selected: Annotated[str, Query(max_length=20_000)] = "",
) -> Response:
    """The experiment's runs: one page of the table as the URL's view asks for it."""
    store = store_of(request)
    experiment = experiment_named(store, name)
    view = RunsView(name, filter, order_by, columns, parent, page, split_ids(selected, runs_view.MAX_SELECTED))
    keys = request.app.state.run_keys.get(experiment.id)
    shown = cols.parse_columns(columns) if columns.strip() else cols.default_columns(keys)
    order = cols.order_keys([order_by]) if order_by.strip() else ()
    run_filter = runs_view.run_filter(experiment.id, view, order)
    rows, total, more, filter_error = [], 0, False, None
    try:
        found = store.list_runs(dataclasses.replace(run_filter, limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE))
        more = len(found) > PAGE_SIZE
        rows = runs_view.build_rows(store, found[:PAGE_SIZE], shown)
        total = runs_view.total_of(store, run_filter, page, len(rows), more)
    except QueryError as exc:
        filter_error = str(exc)
    context = {
        "title": name,
        "experiment": experiment,
        "view": view,
        "columns": shown,
        "choices": cols.choices(keys),
        "rows": rows,
        "total": total,
        "filter_error": filter_error,
        "page_info": runs_view.page_info(page, len(rows), total),
        "count_url": None if total is not None else view.count_url(),
        "prev_url": view.url(page=page - 1) if page > 1 else None,
        "next_url": view.url(page=page + 1) if more else None,
        "crumbs": runs_view.breadcrumbs(store, parent),
        "page_data": {
            "experiment": name,
            "order_by": order_by,
            "columns": [column.key for column in shown],
            "selected": list(view.selected),
        },
    }
    return render(request, "runs.html", **context)


@router.get("/runs/{run_id}")
def run_page(request: Request, run_id: str, _session: Session) -> Response:
    """One run: status, metric charts, tags, properties, children, files and the driver log."""
    store = store_of(request)
    run = store.get_run(run_id)
    if run is None:
        raise errors.NotFoundError(f"No run with id {run_id[:100]!r}.")
    summaries = store.get_metric_summaries(run.id)
    charted = [summary.name for summary in summaries if charts.is_chartable(summary.kind, summary.last_value)]
    texts = [summary for summary in summaries if summary.name not in charted]
    children = store.list_runs(RunFilter(experiment_id=run.experiment_id, parent_id=run.id, limit=runs_view.MAX_CHILDREN))
    files = sorted(request.app.state.artifacts.list(run.id).items())
    is_open = run.status not in RunStatus.TERMINAL
    context = {
        "title": f"{run.experiment_name} #{run.number}",
        "run": run,
        "open": is_open,
        "cancellable": is_open and run.run_type == JOB_RUN_TYPE and run.status != RunStatus.CANCEL_REQUESTED,
        "charts": charted,
        "texts": texts,
        "tags": store.get_tags(run.id),
        "properties": store.get_properties(run.id),
        "children": children,
        "files": files[:MAX_FILES_SHOWN],
        "files_left": max(0, len(files) - MAX_FILES_SHOWN),
        "image_suffixes": IMAGE_SUFFIXES,
        "duration": cols.attribute_of(run, "duration"),
        "page_data": {"run_id": run.id, "open": is_open, "metrics": charted},
    }
    return render(request, "run.html", **context)


@router.get("/compare")
def compare_page(request: Request, _session: Session, runs: Annotated[str, Query(max_length=20_000)] = "") -> Response:
    """Selected runs side by side: curves per metric, parallel coordinates, what differs."""
    store = store_of(request)
    ids = split_ids(runs, comparing.MAX_COMPARED)
    if not ids:
        raise errors.InvalidRequestError("Choose the runs to compare: /compare?runs=ID,ID,...")
    comparison = comparing.compare(store, ids)
    context = {
        "title": "Compare",
        "comparison": comparison,
        "page_data": {"runs": list(ids), "metrics": comparison.metrics, "parallel": comparison.parallel},
    }
    return render(request, "compare.html", **context)
