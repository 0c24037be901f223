"""What routes are given (FastAPI dependencies on the app's state) and how they answer records."""

from __future__ import annotations

import dataclasses
import json
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import Response

from runhistory.artifacts.base import ArtifactStore, validate_artifact_name
from runhistory.core import errors
from runhistory.server.limits import RequestLimits
from runhistory.store.base import RunStore


async def run_store(request: Request) -> RunStore:
    """The store the app serves (``app.state.store``)."""
    return request.app.state.store


async def artifact_store(request: Request) -> ArtifactStore:
    """The artifact store the app serves (``app.state.artifacts``)."""
    return request.app.state.artifacts


async def request_limits(request: Request) -> RequestLimits:
    """The app's request-size limits (``app.state.limits``)."""
    return request.app.state.limits


Store = Annotated[RunStore, Depends(run_store)]
Artifacts = Annotated[ArtifactStore, Depends(artifact_store)]
Limits = Annotated[RequestLimits, Depends(request_limits)]


def json_response(content: Any, status_code: int = 200) -> Response:
    """JSON that keeps NaN and infinities (metric values may be any float); a store record
    (a dataclass) as its fields."""
    if dataclasses.is_dataclass(content) and not isinstance(content, type):
        content = dataclasses.asdict(content)
    return Response(json.dumps(content, allow_nan=True), status_code=status_code, media_type="application/json")


def records_response(found: list[Any]) -> Response:
    """A list of store records as JSON."""
    return json_response([dataclasses.asdict(one) for one in found])


def found_response(found: Any, missing: str) -> Response:
    """The record as JSON, or :class:`NotFoundError` saying ``missing`` when the store found none."""
    if found is None:
        raise errors.NotFoundError(missing)
    return json_response(found)


def existing_run(store: RunStore, run_id: str) -> str:
    """``run_id``, checked as a name and as a run of the store (404 naming it when missing)."""
    validate_artifact_name(run_id)
    if not store.run_exists(run_id):
        raise errors.NotFoundError(f"No run with id {run_id[:100]!r}: files belong to an existing run.")
    return run_id


async def read_body(request: Request, limit: int, what: str) -> bytes:
    """The whole request body; :class:`RequestTooLargeError` at the first byte past ``limit``."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise errors.RequestTooLargeError(f"{what} is larger than the server's limit of {limit} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)
