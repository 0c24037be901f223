"""A run's files: list, size, ranged reads, whole-file uploads, appends, sealing (only for runs that exist)."""

from __future__ import annotations

import sys
import tempfile
from typing import Annotated, Optional

from fastapi import APIRouter, BackgroundTasks, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from runhistory.artifacts.base import ArtifactStore, validate_artifact_name
from runhistory.core import errors
from runhistory.protocol.routes import API_PREFIX
from runhistory.server.dependencies import Artifacts, Limits, Store, existing_run, json_response, read_body
from runhistory.server.models import MAX_ID, SealOut, SizeOut

router = APIRouter(prefix=f"{API_PREFIX}/runs/{{run_id}}", tags=["files"])

_BINARY_BODY = {"requestBody": {"content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}}
_SPOOL_IN_MEMORY = 8 << 20  # an upload up to this size stays in memory before it is stored


@router.get("/files", response_model=dict[str, int])
def list_files(run_id: str, store: Store, artifacts: Artifacts, prefix: Annotated[str, Query(max_length=4096)] = "") -> Response:
    """The run's files under ``prefix``, with their sizes."""
    return json_response(artifacts.list(existing_run(store, run_id), prefix))


@router.get("/file-size/{name:path}", response_model=SizeOut)
def file_size(run_id: str, name: str, store: Store, artifacts: Artifacts) -> Response:
    """A file's size (None when the run has no such file)."""
    return json_response({"size": artifacts.size(existing_run(store, run_id), validate_artifact_name(name, run_id))})


@router.get("/files/{name:path}", responses={200: {"content": {"application/octet-stream": {}}}})
def read_file(
    run_id: str,
    name: str,
    store: Store,
    artifacts: Artifacts,
    limits: Limits,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    length: Annotated[Optional[int], Query(ge=0, le=MAX_ID, description="At most the server's request limit")] = None,
) -> Response:
    """Bytes of a file from ``offset``, at most ``length`` of them (the server's request limit)."""
    if length is not None and length > limits.max_request:
        raise errors.InvalidRequestError(f"length must be at most the server's request limit of {limits.max_request} bytes.")
    name = validate_artifact_name(name, run_id)
    data = artifacts.read(existing_run(store, run_id), name, offset, limits.max_request if length is None else length)
    return Response(data, media_type="application/octet-stream")


@router.put("/files/{name:path}", response_model=SizeOut, openapi_extra=_BINARY_BODY)
async def write_file(run_id: str, name: str, request: Request, store: Store, artifacts: Artifacts, limits: Limits) -> Response:
    """Store (or replace) a whole file: readers see the old or the new file, never half of one."""
    name = validate_artifact_name(name, run_id)
    await run_in_threadpool(existing_run, store, run_id)
    with tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY) as buffer:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limits.max_file:
                raise errors.RequestTooLargeError(f"The file is larger than the server's limit of {limits.max_file} bytes.")
            buffer.write(chunk)
        buffer.seek(0)
        written = await run_in_threadpool(artifacts.write, run_id, name, buffer)
    return json_response({"size": written})


@router.post("/files/{name:path}", response_model=SizeOut, openapi_extra=_BINARY_BODY)
async def append_file(
    run_id: str,
    name: str,
    request: Request,
    store: Store,
    artifacts: Artifacts,
    limits: Limits,
    offset: Annotated[Optional[int], Query(ge=0, le=MAX_ID)] = None,
) -> Response:
    """Append bytes (at ``offset`` when given, which must not pass the end)."""
    name = validate_artifact_name(name, run_id)
    await run_in_threadpool(existing_run, store, run_id)
    data = await read_body(request, limits.max_request, "The appended data")
    size = await run_in_threadpool(artifacts.append, run_id, name, data, offset)
    return json_response({"size": size})


@router.post("/seal-files", response_model=SealOut, status_code=202)
def seal_files(run_id: str, background: BackgroundTasks, store: Store, artifacts: Artifacts) -> Response:
    """The run's files will not grow any more: lay them out for reading, after answering."""
    background.add_task(seal_quietly, artifacts, existing_run(store, run_id))
    return json_response({"sealing": run_id}, status_code=202)


def seal_quietly(artifacts: ArtifactStore, run_id: str) -> None:
    """Seal a run's files, reporting a failure on stderr (sealing is an optimisation: the files
    stay readable as they are)."""
    try:
        artifacts.seal(run_id)
    except Exception as exc:  # noqa: BLE001 - an optimisation; the files stay readable as they are
        print(f"runhistory server: could not seal the files of run {run_id}: {exc}", file=sys.stderr)
