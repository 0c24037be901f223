"""The binary encoding of metric points between the client and the server.

A message is ``MAGIC | u32 header length | header (JSON) | payload``; the header lists
the series, each with the encoding of its values (:mod:`runhistory.store.codec`: int64,
float64 or JSON) and the byte lengths of its parts in the payload. Numbers travel as
packed little-endian arrays, never as JSON lists, so that a million points encode and
decode in milliseconds. Writes are zlib-compressed as a whole (``Content-Encoding``
is not used: the body of ``POST /api/v1/metrics`` is always compressed).
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
    if not isinstance(header, list):
        raise WireError("bad header: not a list")
    return header, memoryview(message)[8 + length :]


def _encode_steps(steps: Sequence[int | None]) -> tuple[str, bytes]:
    """``none`` (every step defaults to its index), ``i8`` or ``json`` (a mix of steps and None)."""
    steps = list(steps)
    nones = steps.count(None)
    if nones == len(steps):
        return "none", b""
    if nones == 0:
        return "i8", np.asarray(steps, dtype="<i8").tobytes()
    return "json", json.dumps(steps, separators=(",", ":")).encode()


def encode_batches(batches: Sequence[MetricBatch], level: int = 1) -> bytes:
    """Batches as one compressed message (the body of a metrics write)."""
    header, parts = [], []
    for batch in batches:
        encoding, values = codec.encode_values(batch.values)
        step_mode, steps = _encode_steps(batch.steps)
        times = codec.encode_times(batch.times)
        header.append(
            {
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
        )
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
            count = int(entry["n"])
            values_blob = bytes(payload[at : at + entry["values"]])
            at += entry["values"]
            steps_blob = bytes(payload[at : at + entry["steps"]])
            at += entry["steps"]
            times_blob = bytes(payload[at : at + entry["times"]])
            at += entry["times"]
            values = codec.decode_values(entry["enc"], values_blob)
            if entry["step_mode"] == "none":
                steps: list[int | None] = [None] * count
            elif entry["step_mode"] == "i8":
                steps = np.frombuffer(steps_blob, dtype="<i8").tolist()
            else:
                steps = json.loads(steps_blob)
            times = codec.decode_times(times_blob).tolist()
            if not (len(values) == len(steps) == len(times) == count):
                raise WireError(f"series {entry.get('name')!r}: values, steps and times differ in length")
            if any(step is not None and not isinstance(step, int) for step in steps):
                raise WireError(f"series {entry.get('name')!r}: steps must be integers")
            batches.append(
                MetricBatch(
                    str(entry["run_id"]),
                    str(entry["name"]),
                    str(entry["kind"]),
                    values,
                    steps,
                    times,
                    str(entry.get("description") or ""),
                )
            )
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, WireError):
            raise
        raise WireError(f"bad batch entry: {exc}") from None
    return batches


def encode_series(series: dict[str, MetricSeries], starts: dict[str, int]) -> bytes:
    """Series read back, as one uncompressed message (the body of a metrics read)."""
    header, parts = [], []
    for name, one in series.items():
        encoding, values = codec.encode_values(one.values)
        first = starts.get(name, 0)
        steps = codec.encode_steps(np.asarray(one.steps, dtype=np.int64), first) or b""
        times = np.asarray(one.times, dtype="<f8").tobytes()
        header.append(
            {
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
        )
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
        found[entry["name"]] = MetricSeries(entry["name"], entry["kind"], steps, values, times, entry["description"])
    return found
