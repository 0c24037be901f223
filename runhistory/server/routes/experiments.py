"""Experiments: find or create one by name, list them, get one."""

from __future__ import annotations

from fastapi import APIRouter, Response

from runhistory.protocol.routes import API_PREFIX
from runhistory.server.dependencies import Store, found_response, json_response, records_response
from runhistory.server.models import ExperimentIn
from runhistory.store.base import ExperimentRecord

router = APIRouter(prefix=f"{API_PREFIX}/experiments", tags=["experiments"])


@router.post("", response_model=ExperimentRecord)
def get_or_create_experiment(body: ExperimentIn, store: Store) -> Response:
    """The experiment called ``name``, created when it does not exist."""
    return json_response(store.get_or_create_experiment(body.name))


@router.get("", response_model=list[ExperimentRecord])
def list_experiments(store: Store) -> Response:
    """Every experiment."""
    return records_response(store.list_experiments())


@router.get("/{name}", response_model=ExperimentRecord)
def get_experiment(name: str, store: Store) -> Response:
    """The experiment called ``name`` (404 when there is none)."""
    return found_response(store.get_experiment(name), f"No experiment {name!r}.")
