"""Compute targets, and what jobs do on them: claim a slot, send heartbeats."""

from __future__ import annotations

from fastapi import APIRouter, Response

from runhistory.protocol.routes import API_PREFIX
from runhistory.server.dependencies import Store, found_response, json_response, records_response
from runhistory.server.models import ClaimIn, ClaimOut, ComputeTargetIn, HeartbeatOut
from runhistory.store.base import ComputeTargetRecord

router = APIRouter(prefix=API_PREFIX, tags=["jobs"])


@router.post("/runs/{run_id}/heartbeat", response_model=HeartbeatOut)
def heartbeat(run_id: str, store: Store) -> Response:
    """Record that a job's supervisor (or a run's owner) is alive; answers the run's status."""
    return json_response({"status": store.heartbeat(run_id)})


@router.post("/runs/{run_id}/claim", response_model=ClaimOut)
def claim_job_slot(run_id: str, body: ClaimIn, store: Store) -> Response:
    """Take one of a target's ``max_concurrent`` job slots for the run, when one is free."""
    return json_response({"claimed": store.claim_job_slot(run_id, body.target, body.max_concurrent)})


@router.get("/compute-targets", response_model=list[ComputeTargetRecord])
def list_compute_targets(store: Store) -> Response:
    """Every compute target."""
    return records_response(store.list_compute_targets())


@router.get("/compute-targets/{name}", response_model=ComputeTargetRecord)
def get_compute_target(name: str, store: Store) -> Response:
    """A compute target by name (404 when there is none)."""
    return found_response(store.get_compute_target(name), f"No compute target {name!r}.")


@router.put("/compute-targets/{name}", response_model=ComputeTargetRecord)
def save_compute_target(name: str, body: ComputeTargetIn, store: Store) -> Response:
    """Create or replace a compute target."""
    return json_response(store.save_compute_target(name, body.kind, body.config))
