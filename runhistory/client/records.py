"""What the records of a spool (:mod:`runhistory.client.spool`) are as requests to a server.

A metric record is a batch message (:mod:`runhistory.protocol.wire`) with its batch id; a
status record is the JSON of a status change; a request record is an idempotent request
(tags, properties, a small file). ``runhistory sync`` sends the records of a spool file the
same way the process that wrote them would have.
"""

from __future__ import annotations

import json
from typing import Any, Sequence
from urllib.parse import quote

from runhistory.core import errors
from runhistory.client.spool import METRICS, REQUEST, STATUS, SpoolRecord
from runhistory.protocol.routes import BATCH_ID_HEADER
from runhistory.protocol.wire import MEDIA_TYPE, decode_batches, encode_batches
from runhistory.store.base import MetricBatch

_MAX_BATCH_ID = 64  # characters of a batch id; a part of a split record keeps room for ":<index>"


def quote_part(part: str) -> str:
    """One segment of a route (a run id, a name), quoted so that it stays one segment."""
    return quote(part, safe="")


def metrics_record(batch_id: str, batches: Sequence[MetricBatch]) -> SpoolRecord:
    """A record of metric batches sent as one request, under the batch id that makes a resend harmless."""
    return SpoolRecord(METRICS, batch_id, encode_batches(batches))


def status_record(run_id: str, body: dict[str, Any]) -> SpoolRecord:
    """A record of a run's status change (``body``: what the status route takes)."""
    return SpoolRecord(STATUS, "", json.dumps({"run_id": run_id, **body}).encode())


def request_record(method: str, path: str, *, body: Any = None, content: bytes = b"") -> SpoolRecord:
    """A spool record of an idempotent request: a JSON ``body``, or raw ``content`` (a small file)."""
    head: dict[str, Any] = {"method": method, "path": path}
    if body is not None:
        head["body"] = body
    return SpoolRecord(REQUEST, "", json.dumps(head).encode() + b"\n" + content)


def spooled_request(record: SpoolRecord) -> tuple[str, str, dict[str, Any]]:
    """The HTTP request (method, path under the API, httpx options) that sends a spooled record."""
    if record.kind == METRICS:
        headers = {BATCH_ID_HEADER: record.batch_id, "Content-Type": MEDIA_TYPE}
        return "POST", "/metrics", {"content": record.payload, "headers": headers}
    head, _, content = record.payload.partition(b"\n")  # status changes are JSON alone
    body = json.loads(head)
    if record.kind == STATUS:
        return "POST", f"/runs/{quote_part(body.pop('run_id'))}/status", {"json": body}
    if record.kind == REQUEST:
        return body["method"], body["path"], {"json": body["body"]} if "body" in body else {"content": content}
    raise errors.RunHistoryError(f"Unknown spool record type {record.kind}; a newer runhistory wrote this spool.")


def split_metrics_record(record: SpoolRecord) -> list[SpoolRecord]:
    """A metric record the server refused, as one record per series (each with its own id: the
    refused record was applied not at all); other records stay whole."""
    if record.kind != METRICS:
        return [record]
    batches = decode_batches(record.payload, 1 << 40)
    prefix = record.batch_id[: _MAX_BATCH_ID - 8]
    return [metrics_record(f"{prefix}:{index}", [batch]) for index, batch in enumerate(batches)]
