"""The binary encoding of metric points between the client and the server.

A message is ``MAGIC | u32 header length | header (JSON) | payload``; the header lists
the series, each with the encoding of its values and steps (the packing of
:mod:`runhistory.store.codec`: int64, float64 or JSON) and the byte lengths of its parts in
the payload. Numbers travel as packed little-endian arrays, never as JSON lists, so that a
million points encode and decode in milliseconds. Writes are zlib-compressed as a whole
(``Content-Encoding`` is not used: the body of ``POST /api/v1/metrics`` is always compressed).
"""

from __future__ import annotations

import json
import struct
import zlib
from typing import Any, Sequence

import numpy as np

from runhistory.store import codec
from runhistory.store.base import MetricBatch, MetricSeries

MAGIC = b"RHW1"
MEDIA_TYPE = "application/x-runhistory-points"


class WireError(ValueError):
    """A message that is not a valid encoding of metric points."""


class TooLargeError(WireError):
    """A message that decompresses to more than the allowed size."""


MIN_STEP, MAX_STEP = -(2**63), 2**63 - 1  # what a step travels as (int64); the store may allow less


def _text(entry: dict[str, Any], key: str, *, optional: bool = False) -> str:
    """A string field of a batch entry (never the ``str()`` of something else)."""
    value = entry.get(key) if optional else entry[key]
    if optional and value is None:
        return ""
    if not isinstance(value, str):
        raise WireError(f"bad batch entry: {key} must be a string")
    return value


def _label(entry: dict[str, Any]) -> str:
    """The name of a series for an error message, cut short."""
    return repr(entry.get("name"))[:80]


def _length(entry: dict[str, Any], key: str) -> int:
    value = entry[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise WireError(f"bad batch entry: {key} must be a count of bytes or points")
    return value


def _pack(header: list[dict[str, Any]], parts: list[bytes]) -> bytes:
    head = json.dumps(header, separators=(",", ":"), allow_nan=True).encode()
    return b"".join([MAGIC, struct.pack("<I", len(head)), head, *parts])


def _unpack(message: bytes) -> tuple[list[dict[str, Any]], memoryview]:
    if len(message) < 8 or message[:4] != MAGIC:
        raise WireError("not a runhistory points message (bad magic)")
    (length,) = struct.unpack("<I", message[4:8])
    try:
        header = json.loads(message[8 : 8 + length])
    except ValueError as exc:
        raise WireError(f"bad header: {exc}") from None
    if not isinstance(header, list) or not all(isinstance(entry, dict) for entry in header):
        raise WireError("bad header: not a list of series")
    return header, memoryview(message)[8 + length :]


def encode_batches(batches: Sequence[MetricBatch], level: int = 1) -> bytes:
    """Batches as one compressed message (the body of a metrics write)."""
    header, parts = [], []
    for batch in batches:
        encoding, values = codec.encode_values(batch.values)
        step_mode, steps = codec.encode_optional_steps(batch.steps)
        times = codec.encode_times(batch.times)
        entry = {
            "run_id": batch.run_id,
            "name": batch.name,
            "kind": batch.kind,
            "description": batch.description,
            "n": len(batch.values),
            "enc": encoding,
            "values": len(values),
            "step_mode": step_mode,
            "steps": len(steps),
            "times": len(times),
        }
        header.append(_with_source(entry, batch.source))
        parts += [values, steps, times]
    return zlib.compress(_pack(header, parts), level)


def decode_batches(body: bytes, max_size: int) -> list[MetricBatch]:
    """The batches of a compressed message; :class:`TooLargeError` past ``max_size`` bytes."""
    inflater = zlib.decompressobj()
    try:
        message = inflater.decompress(body, max_size + 1)
    except zlib.error as exc:
        raise WireError(f"the body is not zlib-compressed: {exc}") from None
    if len(message) > max_size or inflater.unconsumed_tail:
        raise TooLargeError(f"the batch decompresses to more than {max_size} bytes")
    header, payload = _unpack(message)
    batches, at = [], 0
    try:
        for entry in header:
            count = _length(entry, "n")
            sizes = [_length(entry, "values"), _length(entry, "steps"), _length(entry, "times")]
            if at + sum(sizes) > len(payload):
                raise WireError(f"series {_label(entry)}: the payload is shorter than its header says")
            values_blob = bytes(payload[at : at + sizes[0]])
            at += sizes[0]
            steps_blob = bytes(payload[at : at + sizes[1]])
            at += sizes[1]
            times_blob = bytes(payload[at : at + sizes[2]])
            at += sizes[2]
            values, steps, times = _decoded_points(entry, values_blob, steps_blob, times_blob)
            if not (len(values) == len(steps) == len(times) == count):
                raise WireError(f"series {_label(entry)}: values, steps and times differ in length")
            batches.append(
                MetricBatch(
                    _text(entry, "run_id"),
                    _text(entry, "name"),
                    _text(entry, "kind"),
                    values,
                    steps,
                    times,
                    _text(entry, "description", optional=True),
                    _text(entry, "source", optional=True),
                )
            )
    except (KeyError, TypeError, ValueError, RecursionError) as exc:
        if isinstance(exc, WireError):
            raise
        raise WireError(f"bad batch entry: {exc}") from None
    return batches


def _decoded_points(entry: dict, values_blob: bytes, steps_blob: bytes, times_blob: bytes) -> tuple[Any, Any, np.ndarray]:
    """A batch's values, steps and times: numbers and steps as int64 / float64 arrays (what the
    store takes without converting), strings and mixed values and steps as checked lists."""
    encoding, step_mode = entry["enc"], entry["step_mode"]
    if encoding in (codec.INT64, codec.FLOAT64):
        if len(values_blob) % 8:
            raise WireError(f"series {_label(entry)}: packed values are not a whole number of 8-byte cells")
        values: Any = np.frombuffer(values_blob, dtype="<i8" if encoding == codec.INT64 else "<f8")
    else:
        values = codec.decode_values(encoding, values_blob)
        if not isinstance(values, list):
            raise WireError(f"series {_label(entry)}: values must be a list")
    if step_mode == codec.INT64:
        if len(steps_blob) % 8:
            raise WireError(f"series {_label(entry)}: packed steps are not a whole number of 8-byte cells")
        steps: Any = np.frombuffer(steps_blob, dtype="<i8")
    else:
        steps = codec.decode_optional_steps(step_mode, steps_blob, _length(entry, "n"))
        if not isinstance(steps, list):
            raise WireError(f"series {_label(entry)}: steps must be a list")
        if any(step is not None and (isinstance(step, bool) or not isinstance(step, int)) for step in steps):
            raise WireError(f"series {_label(entry)}: steps must be integers")
        if any(step is not None and not MIN_STEP <= step <= MAX_STEP for step in steps):
            raise WireError(f"series {_label(entry)}: a step is out of range (steps are 64-bit integers)")
    if len(times_blob) % 8:
        raise WireError(f"series {_label(entry)}: wall times are not a whole number of 8-byte cells")
    return values, steps, codec.decode_times(times_blob)


def encode_series(series: dict[str, MetricSeries], starts: dict[str, int]) -> bytes:
    """Series read back, as one uncompressed message (the body of a metrics read)."""
    header, parts = [], []
    for name, one in series.items():
        encoding, values = codec.encode_values(one.values)
        first = starts.get(name, 0)
        steps = codec.encode_steps(np.asarray(one.steps, dtype=np.int64), first) or b""
        times = codec.encode_times(one.times)
        entry = {
            "name": name,
            "kind": one.kind,
            "description": one.description,
            "n": len(one.values),
            "first": first,
            "enc": encoding,
            "values": len(values),
            "steps": len(steps),
            "times": len(times),
        }
        header.append(_with_source(entry, one.source))
        parts += [values, steps, times]
    return _pack(header, parts)


def decode_series(message: bytes) -> dict[str, MetricSeries]:
    """The inverse of :func:`encode_series`."""
    header, payload = _unpack(message)
    found, at = {}, 0
    for entry in header:
        count = entry["n"]
        values = codec.decode_values(entry["enc"], bytes(payload[at : at + entry["values"]]))
        at += entry["values"]
        steps_blob = bytes(payload[at : at + entry["steps"]])
        at += entry["steps"]
        steps = codec.decode_steps(steps_blob or None, entry["first"], count)
        times = codec.decode_times(bytes(payload[at : at + entry["times"]]))
        at += entry["times"]
        found[entry["name"]] = MetricSeries(
            entry["name"], entry["kind"], steps, values, times, entry["description"], entry.get("source", "")
        )
    return found


def _with_source(entry: dict[str, Any], source: str) -> dict[str, Any]:
    """The entry with its series' source, sent only when there is one (older peers know none)."""
    if source:
        entry["source"] = source
    return entry
