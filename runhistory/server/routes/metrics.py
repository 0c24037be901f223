"""Metrics: append packed batches of points, read series (of one run or many) as packed binary, summaries as JSON."""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Annotated, Optional

from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from runhistory.core import errors
from runhistory.protocol import series_of_runs, wire
from runhistory.protocol.routes import API_PREFIX, BATCH_ID_HEADER
from runhistory.server.dependencies import Limits, Store, json_response, read_body
from runhistory.server.models import MAX_ID, MetricsOfRunsIn, PointsOut
from runhistory.store.base import MetricSummary

router = APIRouter(prefix=API_PREFIX, tags=["metrics"])

_BATCH_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_BINARY_BODY = {"required": True, "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}


@router.post(
    "/metrics",
    response_model=PointsOut,
    openapi_extra={
        "requestBody": _BINARY_BODY,
        "parameters": [{"name": BATCH_ID_HEADER, "in": "header", "required": False, "schema": {"type": "string"}}],
    },
)
async def append_metrics(request: Request, store: Store, limits: Limits) -> Response:
    """Append a zlib-compressed batch of points (see ``runhistory.protocol.wire``); the batch id
    header makes a retry of the same batch a no-op."""
    batch_id = request.headers.get(BATCH_ID_HEADER)
    if batch_id is not None and not _BATCH_ID.match(batch_id):
        raise errors.RunHistoryError(f"{BATCH_ID_HEADER} must be 1 to 64 letters, digits or '_.:-'.")
    body = await read_body(request, limits.max_request, "The metric batch")
    batches = await run_in_threadpool(wire.decode_batches, body, limits.max_batch)
    await run_in_threadpool(store.append_metrics, batches, batch_id)
    return json_response({"points": sum(len(batch.values) for batch in batches)})


def series_starts(start: int, starts: Optional[str]) -> int | dict[str, int]:
    """Where to start reading: ``start`` for every series, or each series' own from ``starts`` (JSON)."""
    if not starts:
        return start
    try:
        start_of = {str(key): int(value) for key, value in json.loads(starts).items()}
    except (ValueError, AttributeError, TypeError, RecursionError):
        raise errors.RunHistoryError("starts must be a JSON object of series names to integers.") from None
    if any(not 0 <= value <= MAX_ID for value in start_of.values()):
        raise errors.RunHistoryError("starts must hold integers from 0 to 2**62.")
    return start_of


@router.get("/runs/{run_id}/metrics", responses={200: {"content": {wire.MEDIA_TYPE: {}}}})
def get_metrics(
    run_id: str,
    store: Store,
    name: Annotated[Optional[list[str]], Query()] = None,
    start: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    starts: Annotated[Optional[str], Query(description="JSON object: the start of each series by name")] = None,
) -> Response:
    """Series as packed binary (see ``runhistory.protocol.wire.decode_series``)."""
    start_of = series_starts(start, starts)
    series = store.get_metrics(run_id, name, start_of)
    first = {key: (start_of.get(key, 0) if isinstance(start_of, dict) else start_of) for key in series}
    return Response(wire.encode_series(series, first), media_type=wire.MEDIA_TYPE)


@router.get("/runs/{run_id}/metric-summaries", response_model=list[MetricSummary])
def get_metric_summaries(run_id: str, store: Store) -> Response:
    """Each series' kind, count, last value and description, and its source where it has one."""
    return json_response([_summary_json(summary) for summary in store.get_metric_summaries(run_id)])


def _summary_json(summary: MetricSummary) -> dict:
    """A summary as JSON; ``source`` only when the series has one, so that an older client (which
    knows no source and takes every field it is given) reads the series logged through the SDK."""
    found = dataclasses.asdict(summary)
    if not summary.source:
        del found["source"]
    return found


@router.post("/metrics/of-runs", responses={200: {"content": {series_of_runs.MEDIA_TYPE: {}}}})
def get_metrics_of_runs(body: MetricsOfRunsIn, store: Store) -> Response:
    """The series of many runs at once (all, or those named), as packed binary (see
    ``runhistory.protocol.series_of_runs``); a run that does not exist is left out. An answer
    holds about ``POINTS_PER_ANSWER`` points at most and says how many runs it leaves unread."""
    run_ids = list(dict.fromkeys(body.run_ids))
    found: series_of_runs.SeriesOfRuns = {}
    asked = 0
    parts = series_of_runs.read_in_parts(
        lambda part: store.get_metrics_of_runs(part, names=body.names), run_ids, _POINTS_PER_PART, _RUNS_PER_PART
    )
    for count, part in parts:
        found.update(part)
        asked += count
        if series_of_runs.points_of(found) >= series_of_runs.POINTS_PER_ANSWER:
            break
    answer = series_of_runs.encode_series_of_runs(found, unread=len(run_ids) - asked)
    return Response(answer, media_type=series_of_runs.MEDIA_TYPE)


_POINTS_PER_PART = series_of_runs.POINTS_PER_ANSWER // 4  # an answer past its bound overshoots by a part at most
_RUNS_PER_PART = 100
