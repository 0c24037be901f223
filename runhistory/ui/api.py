"""The JSON the UI's pages fetch under ``/ui/api`` (session cookie; POSTs need the CSRF token)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from runhistory.core import errors
from runhistory.core.status import JOB_RUN_TYPE, RunStatus
from runhistory.server.dependencies import json_response
from runhistory.store.base import RunRecord, RunStore
from runhistory.ui import charts, columns as cols, compare as comparing, logs, runs_view
from runhistory.ui.downsample import DEFAULT_POINTS
from runhistory.ui.pages import experiment_named, split_ids, store_of
from runhistory.ui.rendering import plain_json, render_html
from runhistory.ui.session import Csrf, Session

router = APIRouter(prefix="/ui/api", include_in_schema=False)
Points = Annotated[int, Query(ge=1, le=1_000_000)]
Axis = Annotated[str, Query(max_length=10)]


def existing(store: RunStore, run_id: str) -> RunRecord:
    """The run of this id; NotFoundError naming it otherwise."""
    run = store.get_run(run_id)
    if run is None:
        raise errors.NotFoundError(f"No run with id {run_id[:100]!r}.")
    return run


def answer(content: object) -> Response:
    """JSON for a browser (non-finite floats as null)."""
    return json_response(plain_json(content))


@router.get("/runs/{run_id}")
def run_state(request: Request, run_id: str, _session: Session) -> Response:
    """A run's status and times, and each series' point count (what a page polls)."""
    store = store_of(request)
    run = existing(store, run_id)
    counts = {summary.name: summary.count for summary in store.get_metric_summaries(run.id)}
    return answer(
        {
            "id": run.id,
            "status": run.status,
            "open": run.status not in RunStatus.TERMINAL,
            "created_time": run.created_time,
            "start_time": run.start_time,
            "end_time": run.end_time,
            "duration": cols.attribute_of(run, "duration"),
            "metrics": counts,
        }
    )


@router.get("/runs/{run_id}/metrics/{name:path}")
def run_metric(
    request: Request, run_id: str, name: str, _session: Session, points: Points = DEFAULT_POINTS, x: Axis = "step"
) -> Response:
    """One series of a run, downsampled on the server to at most ``points`` points."""
    return answer(charts.run_series(store_of(request), run_id, name, points, x))


@router.get("/compare")
def compare_series(
    request: Request,
    _session: Session,
    runs: Annotated[str, Query(max_length=20_000)] = "",
    points: Points = DEFAULT_POINTS,
    x: Axis = "step",
    metric: Annotated[str, Query(max_length=1000, description="Only this metric (default: all)")] = "",
) -> Response:
    """Every numeric series of the given runs (or only those of ``metric``), downsampled."""
    ids = split_ids(runs, comparing.MAX_COMPARED)
    return answer(comparing.compare_series(store_of(request), ids, points, x, [metric] if metric else None))


@router.get("/runs/{run_id}/log")
def run_log(request: Request, run_id: str, _session: Session, offset: Annotated[int, Query(ge=0)] = 0) -> Response:
    """The job's driver log from ``offset`` on: ``{"text", "offset", "open"}`` (the next offset)."""
    run = existing(store_of(request), run_id)
    text, next_offset = logs.read_log(request.app.state.artifacts, run.id, offset)
    return answer({"text": text, "offset": next_offset, "open": run.status not in RunStatus.TERMINAL})


@router.get("/runs-count")
def runs_count(
    request: Request,
    _session: Session,
    experiment: Annotated[str, Query(min_length=1, max_length=4096)],
    filter: Annotated[str, Query(max_length=4096)] = "",  # noqa: A002
    parent: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    """How many runs a runs table's level and filter match (its page shows ``of …`` until then)."""
    store = store_of(request)
    found = experiment_named(store, experiment)
    view = runs_view.RunsView(experiment, filter, parent=parent)
    return answer({"count": store.count_runs(runs_view.run_filter(found.id, view, ()))})


@router.get("/runs/{run_id}/children")
def run_children(
    request: Request,
    run_id: str,
    _session: Session,
    order_by: Annotated[str, Query(max_length=4096)] = "",
    columns: Annotated[str, Query(max_length=4096)] = "",
    depth: Annotated[int, Query(ge=1, le=64)] = 1,
) -> Response:
    """A run's children as table rows (``html``, sorted like the table) at ``depth``."""
    store = store_of(request)
    parent = existing(store, run_id)
    if columns.strip():
        shown = cols.parse_columns(columns)
    else:
        shown = cols.default_columns(request.app.state.run_keys.get(parent.experiment_id))
    order = cols.order_keys([order_by]) if order_by.strip() else ()
    rows = runs_view.children_rows(store, parent, shown, order, depth)
    html = render_html("rows.html", {"rows": rows, "selected": ()})
    return answer({"html": html, "count": len(rows), "ids": [row.run.id for row in rows]})


@router.post("/runs/{run_id}/cancel")
def cancel_run(request: Request, run_id: str, _csrf: Csrf) -> Response:
    """Cancel a job run as ``Run.cancel()`` does (CancelRequested until its supervisor has ended the
    script; a queued one at once; a Ray job through Ray)."""
    run = existing(store_of(request), run_id)
    if run.run_type != JOB_RUN_TYPE:
        raise errors.InvalidRequestError(f"Run {run.id} is not a job run; only a job can be canceled from the UI.")
    if run.status in RunStatus.TERMINAL:
        raise errors.RunFinishedError(f"Run {run.id} has already ended ({run.status}).")
    job = request.app.state.workspace.get().get_run(run.id)
    job.cancel()
    return answer({"id": job.id, "status": job.get_status()})
