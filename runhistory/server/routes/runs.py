"""Runs: create, list (a page at a time), get by id or number, set the status; tags and properties."""

from __future__ import annotations

from typing import Annotated, Optional

from fastapi import APIRouter, Query, Response

from runhistory.protocol.routes import API_PREFIX
from runhistory.server.dependencies import Store, found_response, json_response, records_response
from runhistory.server.models import MAX_ID, MAX_RUNS_PAGE, CountOut, EmptyOut, Properties, RunFilterIn, RunIn, StatusIn, Tags
from runhistory.store.base import RunFilter, RunOwner, RunRecord

router = APIRouter(prefix=f"{API_PREFIX}/runs", tags=["runs"])


@router.post("", response_model=RunRecord)
def create_run(body: RunIn, store: Store) -> Response:
    """A new run of an experiment (numbered next in it)."""
    created = store.create_run(
        body.experiment_id,
        display_name=body.display_name,
        parent_id=body.parent_id,
        status=body.status,
        run_type=body.run_type,
        target=body.target,
        owner=None if body.owner is None else RunOwner(**body.owner.model_dump()),
    )
    return json_response(created)


@router.post("/search", response_model=list[RunRecord])
def list_runs(
    body: RunFilterIn,
    store: Store,
    limit: Annotated[Optional[int], Query(ge=1, le=MAX_RUNS_PAGE, description="At most this many runs, newest first")] = None,
    offset: Annotated[int, Query(ge=0, le=MAX_ID, description="After skipping this many")] = 0,
) -> Response:
    """The runs that pass the filter, one page of them when ``limit`` is given."""
    return records_response(store.list_runs(RunFilter(**body.model_dump(), limit=limit, offset=offset)))


@router.post("/count", response_model=CountOut)
def count_runs(body: RunFilterIn, store: Store) -> Response:
    """How many runs pass the filter (what a paged listing shows as its total)."""
    return json_response({"count": store.count_runs(RunFilter(**body.model_dump()))})


@router.get("/by-number", response_model=RunRecord)
def get_run_by_number(
    store: Store,
    experiment_id: Annotated[int, Query(ge=0, le=MAX_ID)],
    number: Annotated[int, Query(ge=0, le=MAX_ID)],
) -> Response:
    """The run numbered ``number`` in an experiment (404 when there is none)."""
    return found_response(store.get_run_by_number(experiment_id, number), f"No run number {number} in experiment {experiment_id}.")


@router.get("/{run_id}", response_model=RunRecord)
def get_run(run_id: str, store: Store) -> Response:
    """A run by id (404 when there is none)."""
    return found_response(store.get_run(run_id), f"No run with id {run_id!r}.")


@router.post("/{run_id}/status", response_model=RunRecord)
def set_status(run_id: str, body: StatusIn, store: Store) -> Response:
    """Change a run's status (a terminal one only when ``only_if_not_terminal`` is false)."""
    changed = store.set_status(run_id, body.status, error=body.error, only_if_not_terminal=body.only_if_not_terminal, at=body.at)
    return json_response(changed)


@router.get("/{run_id}/tags", response_model=dict[str, Optional[str]])
def get_tags(run_id: str, store: Store) -> Response:
    """A run's tags."""
    return json_response(store.get_tags(run_id))


@router.patch("/{run_id}/tags", response_model=EmptyOut)
def set_tags(run_id: str, body: Tags, store: Store) -> Response:
    """Set tags (a None value removes the tag)."""
    store.set_tags(run_id, body)
    return json_response({})


@router.get("/{run_id}/properties", response_model=dict[str, str])
def get_properties(run_id: str, store: Store) -> Response:
    """A run's properties."""
    return json_response(store.get_properties(run_id))


@router.patch("/{run_id}/properties", response_model=EmptyOut)
def add_properties(run_id: str, body: Properties, store: Store) -> Response:
    """Add properties (a property, once set, cannot change)."""
    store.add_properties(run_id, body)
    return json_response({})
