"""The runhistory server: every :class:`RunStore` and :class:`ArtifactStore` method over HTTP.

Routes live under ``/api/v1`` (the OpenAPI schema at ``/openapi.json``, docs at ``/docs``).
JSON for records; metric points travel as packed binary (:mod:`.wire`), compressed on the
way in. Every request needs ``Authorization: Bearer <token>`` once a token exists or
existed, or when started with ``--require-tokens`` (:mod:`.auth`); ``GET /api/v1/health``
answers without one.

No client is trusted: every body is counted as it is read, whatever its framing
(Content-Length or chunked), and refused with 413 past its limit; request models bound
lengths, ranges and floats; what the store refuses is a 4xx with one sentence; no answer
ever echoes a request body or grows with one (:data:`MAX_DETAIL_CHARS`); files are read
and written only for runs that exist. Connection-level limits (header and body read
timeouts, a cap on open connections) are in :mod:`.connections`.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import re
import sys
import tempfile
from typing import Annotated, Any, Optional

import sqlalchemy as sa
from fastapi import BackgroundTasks, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field, StringConstraints
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from runhistory.core import errors
from runhistory.core.version import __version__
from runhistory.artifacts.base import ArtifactStore, validate_artifact_name
from runhistory.protocol import wire
from runhistory.server.auth import TokenGate
from runhistory.store.base import RunFilter, RunOwner, RunStatus, RunStore
from runhistory.store.sql.engine import unavailable_as_error
from runhistory.store.sql.schema import runs

API = "/api/v1"
BATCH_ID_HEADER = "X-Runhistory-Batch-Id"
_BATCH_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")

# Limits (bytes); each can be changed by an environment variable of the server.
MAX_REQUEST_BYTES = int(os.environ.get("RUNHISTORY_SERVER_MAX_REQUEST", 64 << 20))  # JSON, appends, batches
MAX_BATCH_BYTES = int(os.environ.get("RUNHISTORY_SERVER_MAX_BATCH", 256 << 20))  # a batch, decompressed
MAX_FILE_BYTES = int(os.environ.get("RUNHISTORY_SERVER_MAX_FILE", 8 << 30))  # one uploaded file
MAX_DETAIL_CHARS = 1000  # the longest error sentence the server answers: never a client's whole input


class TooLarge(StarletteHTTPException):
    """A request body past a limit: answered 413 with what the limit is (an HTTP exception, so
    that FastAPI passes it on when it is raised while a request model's body is read)."""

    def __init__(self, message: str) -> None:
        super().__init__(status_code=413, detail=message)

    def __str__(self) -> str:
        return str(self.detail)


def body_limit(method: str, path: str) -> int:
    """The most bytes a request body may have: a file upload's, or every other request's."""
    is_upload = method == "PUT" and path.startswith(f"{API}/runs/") and "/files/" in path
    return MAX_FILE_BYTES if is_upload else MAX_REQUEST_BYTES


class BodyLimit:
    """ASGI middleware: counts the bytes of each request body as the application reads them,
    whatever the framing (Content-Length or chunked), and raises :class:`TooLarge` at the
    first byte past :func:`body_limit`, so that no handler (nor FastAPI, reading a request
    model) ever holds more; a Content-Length past it is answered 413 before anything is read."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = body_limit(scope["method"], scope["path"])
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > limit:
            message = f"The request body ({int(length)} bytes) is larger than the server's limit of {limit} bytes."
            await _too_large(message)(scope, receive, send)
            return
        received = 0

        async def counted() -> dict[str, Any]:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise TooLarge(f"The request body is larger than the server's limit of {limit} bytes.")
            return message

        await self.app(scope, counted, send)


def json_response(content: Any, status_code: int = 200) -> Response:
    """JSON that keeps NaN and infinities (metric values may be any float)."""
    return Response(json.dumps(content, allow_nan=True), status_code=status_code, media_type="application/json")


def record(value: Any) -> Any:
    return None if value is None else dataclasses.asdict(value)


def error_response(status: int, error: str, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """An error answer: its class name and one sentence, cut to :data:`MAX_DETAIL_CHARS`."""
    if len(detail) > MAX_DETAIL_CHARS:
        detail = detail[: MAX_DETAIL_CHARS - 30] + f"... ({len(detail)} characters)"
    return JSONResponse({"error": error, "detail": detail}, status_code=status, headers=headers)


def validation_sentence(exc: RequestValidationError) -> str:
    """The first problem of a request that its models refuse: where and what, never the input."""
    problems = exc.errors()
    if not problems:
        return "The request is not valid."
    first = problems[0]
    where = ".".join(str(part)[:64] or "''" for part in first.get("loc", ())) or "the request"
    what = str(first.get("msg", "is not valid"))[:200]
    more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
    return f"The request is not valid at {where}: {what}{more}."


async def read_body(request: Request, limit: int, what: str) -> bytes:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"{what} is larger than the server's limit of {limit} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


# --- request bodies ---
# The models bound what a schema can (lengths, counts, ranges, finite floats); the store's own
# validation (runhistory.core.validation) decides the rest, and its refusals are answered 400.

ID = Field(ge=0, le=2**62)  # ids, numbers, counts: what every database stores as a 64-bit integer
LATEST_TIME = 253402300799.0  # 9999-12-31, the last wall time every reader can show
MAX_ENTRIES = 10_000  # tags, properties, config keys in one request
Name = Annotated[str, StringConstraints(min_length=1, max_length=255)]
RunId = Annotated[str, StringConstraints(min_length=1, max_length=512)]
Text = Annotated[str, StringConstraints(max_length=1 << 20)]
StatusName = Annotated[str, StringConstraints(min_length=1, max_length=32)]


class ExperimentIn(BaseModel):
    name: Name


class OwnerIn(BaseModel):
    """The process that started a run (see runhistory.liveness)."""

    host: Name
    machine: Optional[str] = Field(default=None, max_length=64)
    pid: int = Field(ge=0, le=2**31 - 1)
    start_time: float = Field(ge=0, le=LATEST_TIME, allow_inf_nan=False)


class RunIn(BaseModel):
    experiment_id: int = ID
    display_name: Optional[str] = Field(default=None, max_length=255)
    parent_id: Optional[RunId] = None
    status: StatusName = RunStatus.RUNNING
    run_type: str = Field(default="interactive", min_length=1, max_length=32)
    target: Optional[Name] = None
    owner: Optional[OwnerIn] = None


class RunFilterIn(BaseModel):
    experiment_id: Optional[int] = Field(default=None, ge=0, le=2**62)
    parent_id: Optional[RunId] = None
    top_level_only: bool = False
    status: Optional[StatusName] = None
    tags: dict[Name, Optional[Text]] = Field(default={}, max_length=100)
    target: Optional[Name] = None


class StatusIn(BaseModel):
    status: StatusName
    error: Optional[dict[Name, Any]] = Field(default=None, max_length=100)
    only_if_not_terminal: bool = True
    at: Optional[float] = Field(default=None, ge=0, le=LATEST_TIME, allow_inf_nan=False)


class ClaimIn(BaseModel):
    target: Name
    max_concurrent: int = ID


class ComputeTargetIn(BaseModel):
    kind: str = Field(min_length=1, max_length=32)
    config: dict[Name, Any] = Field(default={}, max_length=MAX_ENTRIES)


Tags = Annotated[dict[Name, Optional[Text]], Field(max_length=MAX_ENTRIES)]
Properties = Annotated[dict[Name, Text], Field(max_length=MAX_ENTRIES)]


def create_app(store: RunStore, artifacts: ArtifactStore, *, require_tokens: bool = False) -> FastAPI:
    """The ASGI application serving ``store`` and ``artifacts`` (every request needs a token
    when ``require_tokens``, or once the store has had one: see :mod:`.auth`)."""
    tokens = TokenGate(store.tokens(), require=require_tokens)
    app = FastAPI(
        title="runhistory server",
        description="Run history (experiments, runs, metrics, tags, properties, jobs) and run files over HTTP.",
        version="1",
    )
    # added first, so innermost of the middlewares: its TooLarge reaches the exception handlers
    # directly (raised through BaseHTTPMiddleware's receive, it would be an ExceptionGroup, a 500)
    app.add_middleware(BodyLimit)

    def existing_run(run_id: str) -> str:
        """``run_id``, checked as a name and as a run of the store (404 naming it when missing)."""
        validate_artifact_name(run_id)
        if not store.run_exists(run_id):
            raise errors.NotFoundError(f"No run with id {run_id[:100]!r}: files belong to an existing run.")
        return run_id

    @app.middleware("http")
    async def authenticate(request: Request, call_next):
        if request.url.path != f"{API}/health":
            header = request.headers.get("authorization", "")
            token = header[7:].strip() if header.lower().startswith("bearer ") else None
            try:
                allowed = await run_in_threadpool(tokens.check, token)
            except errors.StoreUnavailableError as exc:  # middleware errors bypass the exception handlers
                return _unavailable(exc)
            if not allowed:
                reason = "no token given" if not token else "the token is not valid (unknown or revoked)"
                return error_response(
                    401, "Unauthorized", f"This runhistory server needs an API token: {reason}.", {"WWW-Authenticate": "Bearer"}
                )
        return await call_next(request)

    @app.exception_handler(TooLarge)
    async def _on_too_large(_request: Request, exc: TooLarge):
        return _too_large(str(exc))

    @app.exception_handler(RequestValidationError)
    async def _on_invalid(_request: Request, exc: RequestValidationError):
        return error_response(422, "ValidationError", validation_sentence(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _on_http_error(request: Request, exc: StarletteHTTPException):
        detail = exc.detail if isinstance(exc.detail, str) else "The request cannot be served."
        return error_response(exc.status_code, "HTTPError", detail, getattr(exc, "headers", None))

    @app.exception_handler(OverflowError)
    async def _on_overflow(_request: Request, exc: OverflowError):
        return error_response(400, "RunHistoryError", f"A number in the request is out of the range the run history keeps: {exc}.")

    @app.exception_handler(UnicodeError)
    async def _on_unicode(_request: Request, exc: UnicodeError):
        detail = "The request holds text that is not valid Unicode (a lone surrogate?); send UTF-8 text."
        return error_response(400, "RunHistoryError", detail)

    @app.exception_handler(errors.RunHistoryError)
    async def _on_error(_request: Request, exc: errors.RunHistoryError):
        status = 400
        if isinstance(exc, (errors.NotFoundError, errors.ArtifactNotFoundError)):
            status = 404
        elif isinstance(exc, errors.RunFinishedError):
            status = 409
        elif isinstance(exc, errors.StoreUnavailableError):
            return _unavailable(exc)
        return error_response(status, type(exc).__name__, str(exc))

    @app.exception_handler(sa.exc.NoResultFound)
    async def _on_missing(_request: Request, exc: Exception):
        return error_response(404, "NotFoundError", "A record the request refers to does not exist.")

    @app.exception_handler(sa.exc.IntegrityError)
    async def _on_conflict(_request: Request, exc: Exception):
        detail = f"The request conflicts with the stored run history (a missing or duplicate reference): {exc.orig}"
        return error_response(409, "RunHistoryError", detail)

    @app.exception_handler(OSError)
    async def _on_os_error(_request: Request, exc: OSError):
        detail = f"The file cannot be stored: {exc.strerror or exc}"
        bad_name = exc.errno in (errno.ENAMETOOLONG, errno.EISDIR, errno.ENOTDIR, errno.EEXIST, errno.EINVAL)
        return error_response(400 if bad_name else 500, "RunHistoryError", detail)

    @app.exception_handler(wire.WireError)
    async def _on_wire_error(_request: Request, exc: wire.WireError):
        if isinstance(exc, wire.TooLargeError):
            return _too_large(f"The metric batch is too large: {exc}; send smaller batches.")
        return error_response(400, "BadBatch", f"Bad metric batch: {exc}")

    # --- health ---

    @app.get(f"{API}/health", tags=["server"])
    def health() -> dict[str, Any]:
        return {"status": "ok", "version": __version__}  # no token needed, so nothing about the store

    # --- experiments ---

    @app.post(f"{API}/experiments", tags=["experiments"])
    def get_or_create_experiment(body: ExperimentIn):
        return json_response(record(store.get_or_create_experiment(body.name)))

    @app.get(f"{API}/experiments", tags=["experiments"])
    def list_experiments():
        return json_response([record(found) for found in store.list_experiments()])

    @app.get(f"{API}/experiments/{{name}}", tags=["experiments"])
    def get_experiment(name: str):
        return found_record(store.get_experiment(name), f"No experiment {name!r}.")

    # --- runs ---

    @app.post(f"{API}/runs", tags=["runs"])
    def create_run(body: RunIn):
        created = store.create_run(
            body.experiment_id,
            display_name=body.display_name,
            parent_id=body.parent_id,
            status=body.status,
            run_type=body.run_type,
            target=body.target,
            owner=None if body.owner is None else RunOwner(**body.owner.model_dump()),
        )
        return json_response(record(created))

    @app.post(f"{API}/runs/search", tags=["runs"])
    def list_runs(body: RunFilterIn):
        found = store.list_runs(RunFilter(**body.model_dump()))
        return json_response([record(one) for one in found])

    @app.get(f"{API}/runs/by-number", tags=["runs"])
    def get_run_by_number(experiment_id: int = Query(ge=0, le=2**62), number: int = Query(ge=0, le=2**62)):
        return found_record(store.get_run_by_number(experiment_id, number), f"No run number {number} in experiment {experiment_id}.")

    @app.get(f"{API}/runs/{{run_id}}", tags=["runs"])
    def get_run(run_id: str):
        return found_record(store.get_run(run_id), f"No run with id {run_id!r}.")

    @app.post(f"{API}/runs/{{run_id}}/status", tags=["runs"])
    def set_status(run_id: str, body: StatusIn):
        if body.status not in RunStatus.ALL:
            raise errors.InvalidNameError(f"Unknown status {body.status!r}; one of {', '.join(RunStatus.ALL)}.")
        changed = store.set_status(
            run_id, body.status, error=body.error, only_if_not_terminal=body.only_if_not_terminal, at=body.at
        )
        return json_response(record(changed))

    # --- jobs ---

    @app.post(f"{API}/runs/{{run_id}}/heartbeat", tags=["jobs"])
    def heartbeat(run_id: str):
        return json_response({"status": store.heartbeat(run_id)})

    @app.post(f"{API}/runs/{{run_id}}/claim", tags=["jobs"])
    def claim_job_slot(run_id: str, body: ClaimIn):
        return json_response({"claimed": store.claim_job_slot(run_id, body.target, body.max_concurrent)})

    @app.get(f"{API}/compute-targets", tags=["jobs"])
    def list_compute_targets():
        return json_response([record(one) for one in store.list_compute_targets()])

    @app.get(f"{API}/compute-targets/{{name}}", tags=["jobs"])
    def get_compute_target(name: str):
        return found_record(store.get_compute_target(name), f"No compute target {name!r}.")

    @app.put(f"{API}/compute-targets/{{name}}", tags=["jobs"])
    def save_compute_target(name: str, body: ComputeTargetIn):
        return json_response(record(store.save_compute_target(name, body.kind, body.config)))

    # --- tags and properties ---

    @app.get(f"{API}/runs/{{run_id}}/tags", tags=["runs"])
    def get_tags(run_id: str):
        return json_response(store.get_tags(run_id))

    @app.patch(f"{API}/runs/{{run_id}}/tags", tags=["runs"])
    def set_tags(run_id: str, body: Tags):
        store.set_tags(run_id, body)
        return json_response({})

    @app.get(f"{API}/runs/{{run_id}}/properties", tags=["runs"])
    def get_properties(run_id: str):
        return json_response(store.get_properties(run_id))

    @app.patch(f"{API}/runs/{{run_id}}/properties", tags=["runs"])
    def add_properties(run_id: str, body: Properties):
        store.add_properties(run_id, body)
        return json_response({})

    # --- metrics ---

    @app.post(
        f"{API}/metrics",
        tags=["metrics"],
        openapi_extra={
            "requestBody": {"required": True, "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
            "parameters": [{"name": BATCH_ID_HEADER, "in": "header", "required": False, "schema": {"type": "string"}}],
        },
    )
    async def append_metrics(request: Request):
        """Append a zlib-compressed batch of points (see ``runhistory.protocol.wire``); the batch id
        header makes a retry of the same batch a no-op."""
        batch_id = request.headers.get(BATCH_ID_HEADER)
        if batch_id is not None and not _BATCH_ID.match(batch_id):
            raise errors.RunHistoryError(f"{BATCH_ID_HEADER} must be 1 to 64 letters, digits or '_.:-'.")
        body = await read_body(request, MAX_REQUEST_BYTES, "The metric batch")
        batches = await run_in_threadpool(wire.decode_batches, body, MAX_BATCH_BYTES)
        await run_in_threadpool(store.append_metrics, batches, batch_id)
        return json_response({"points": sum(len(batch.values) for batch in batches)})

    @app.get(
        f"{API}/runs/{{run_id}}/metrics",
        tags=["metrics"],
        responses={200: {"content": {wire.MEDIA_TYPE: {}}}},
    )
    def get_metrics(
        run_id: str,
        name: Optional[list[str]] = Query(default=None),
        start: int = Query(default=0, ge=0, le=2**62),
        starts: Optional[str] = Query(default=None, description="JSON object: the start of each series by name"),
    ):
        """Series as packed binary (see ``runhistory.protocol.wire.decode_series``)."""
        start_of: int | dict[str, int] = start
        if starts:
            try:
                start_of = {str(key): int(value) for key, value in json.loads(starts).items()}
            except (ValueError, AttributeError, TypeError, RecursionError):
                raise errors.RunHistoryError("starts must be a JSON object of series names to integers.") from None
            if any(not 0 <= value <= 2**62 for value in start_of.values()):
                raise errors.RunHistoryError("starts must hold integers from 0 to 2**62.")
        series = store.get_metrics(run_id, name, start_of)
        first = {key: (start_of.get(key, 0) if isinstance(start_of, dict) else start_of) for key in series}
        return Response(wire.encode_series(series, first), media_type=wire.MEDIA_TYPE)

    @app.get(f"{API}/runs/{{run_id}}/metric-summaries", tags=["metrics"])
    def get_metric_summaries(run_id: str):
        return json_response([record(one) for one in store.get_metric_summaries(run_id)])

    # --- files ---

    @app.get(f"{API}/runs/{{run_id}}/files", tags=["files"])
    def list_files(run_id: str, prefix: str = Query(default="", max_length=4096)):
        return json_response(artifacts.list(existing_run(run_id), prefix))

    @app.get(f"{API}/runs/{{run_id}}/file-size/{{name:path}}", tags=["files"])
    def file_size(run_id: str, name: str):
        return json_response({"size": artifacts.size(existing_run(run_id), validate_artifact_name(name, run_id))})

    @app.get(f"{API}/runs/{{run_id}}/files/{{name:path}}", tags=["files"])
    def read_file(
        run_id: str,
        name: str,
        offset: int = Query(default=0, ge=0, le=2**62),
        length: Optional[int] = Query(default=None, ge=0, le=MAX_REQUEST_BYTES),
    ):
        """Bytes of a file from ``offset``, at most ``length`` of them (the server's request limit)."""
        name = validate_artifact_name(name, run_id)
        data = artifacts.read(existing_run(run_id), name, offset, length if length is not None else MAX_REQUEST_BYTES)
        return Response(data, media_type="application/octet-stream")

    @app.put(
        f"{API}/runs/{{run_id}}/files/{{name:path}}",
        tags=["files"],
        openapi_extra={"requestBody": {"content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}},
    )
    async def write_file(run_id: str, name: str, request: Request):
        """Store (or replace) a whole file: readers see the old or the new file, never half of one."""
        name = validate_artifact_name(name, run_id)
        await run_in_threadpool(existing_run, run_id)
        with tempfile.SpooledTemporaryFile(max_size=8 << 20) as buffer:
            size = 0
            async for chunk in request.stream():
                size += len(chunk)
                if size > MAX_FILE_BYTES:
                    raise TooLarge(f"The file is larger than the server's limit of {MAX_FILE_BYTES} bytes.")
                buffer.write(chunk)
            buffer.seek(0)
            written = await run_in_threadpool(artifacts.write, run_id, name, buffer)
        return json_response({"size": written})

    @app.post(
        f"{API}/runs/{{run_id}}/files/{{name:path}}",
        tags=["files"],
        openapi_extra={"requestBody": {"content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}},
    )
    async def append_file(
        run_id: str, name: str, request: Request, offset: Optional[int] = Query(default=None, ge=0, le=2**62)
    ):
        """Append bytes (at ``offset`` when given, which must not pass the end)."""
        name = validate_artifact_name(name, run_id)
        await run_in_threadpool(existing_run, run_id)
        data = await read_body(request, MAX_REQUEST_BYTES, "The appended data")
        size = await run_in_threadpool(artifacts.append, run_id, name, data, offset)
        return json_response({"size": size})

    @app.post(f"{API}/runs/{{run_id}}/seal-files", tags=["files"], status_code=202)
    def seal_files(run_id: str, background: BackgroundTasks):
        """The run's files will not grow any more: lay them out for reading, after answering."""
        background.add_task(_seal_quietly, artifacts, existing_run(run_id))
        return json_response({"sealing": run_id}, status_code=202)

    return app


def _seal_quietly(artifacts: ArtifactStore, run_id: str) -> None:
    try:
        artifacts.seal(run_id)
    except Exception as exc:  # noqa: BLE001 - an optimisation; the files stay readable as they are
        print(f"runhistory server: could not seal the files of run {run_id}: {exc}", file=sys.stderr)


def found_record(found: Any, missing: str) -> Response:
    """The record as JSON, or 404 with ``missing`` when the store found none."""
    if found is None:
        raise errors.NotFoundError(missing)
    return json_response(record(found))


def _too_large(message: str) -> JSONResponse:
    # the rest of the body is not read: close the connection rather than drain it
    return error_response(413, "TooLarge", message, {"Connection": "close"})


def _unavailable(exc: Exception) -> JSONResponse:
    """503 for a store whose database is down: clients retry it (and spool metrics meanwhile)."""
    return error_response(503, "StoreUnavailableError", str(exc), {"Retry-After": "1"})
