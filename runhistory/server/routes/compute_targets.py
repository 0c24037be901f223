"""Compute targets, and what jobs do on them: claim a slot, wait in a target's queue, be admitted
from it, send heartbeats."""

from __future__ import annotations

from fastapi import APIRouter, Response

from runhistory.protocol.routes import API_PREFIX
from runhistory.server.dependencies import Store, found_response, json_response, records_response
from runhistory.server.models import AdmitIn, AdmitOut, ClaimIn, ClaimOut, ComputeTargetIn, HeartbeatOut, HoldOut
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


@router.post("/runs/{run_id}/hold", response_model=HoldOut)
def hold_in_queue(run_id: str, store: Store) -> Response:
    """Let a Queued job run wait in its target's queue with no process of its own (idempotent);
    answers the run's status."""
    return json_response({"status": store.hold_in_queue(run_id)})


@router.post("/compute-targets/{target}/admit", response_model=AdmitOut)
def admit_queued_jobs(target: str, body: AdmitIn, store: Store) -> Response:
    """Move the oldest held Queued jobs of the target to Starting, as many as fit under
    ``max_in_flight`` (at most ``limit``); not idempotent: the caller starts what it admitted."""
    return json_response({"admitted": store.admit_queued_jobs(target, body.max_in_flight, body.limit)})


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
