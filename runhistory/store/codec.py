"""Packing of metric points into compact byte blobs, and back.

A series is stored as chunks of consecutive points. Numbers pack as little-endian
int64 or float64 arrays (NaN and +-inf exactly as they are); anything else (strings,
table rows, a mix) as JSON. Steps that equal the points' indexes are not stored at all.
The same packing carries points between a client and a server (:mod:`runhistory.protocol.wire`).
"""

from __future__ import annotations

import json
from typing import Any, Sequence

import numpy as np

INT64 = "i8"
FLOAT64 = "f8"
JSON = "json"


def encode_values(values: Sequence[Any]) -> tuple[str, bytes]:
    """Pack values as int64, float64 or JSON, whichever holds them exactly (``values`` may
    already be an int64 or float64 array: the store's check leaves numbers so)."""
    try:
        array = values if isinstance(values, np.ndarray) else np.asarray(values)
    except (ValueError, OverflowError):
        array = None
    if array is not None and array.ndim == 1:
        if array.dtype == np.int64:
            return INT64, array.astype("<i8", copy=False).tobytes()
        if array.dtype == np.float64:
            return FLOAT64, array.astype("<f8", copy=False).tobytes()
    listed = values.tolist() if isinstance(values, np.ndarray) else list(values)
    return JSON, json.dumps(listed, allow_nan=True, separators=(",", ":")).encode()


def decode_values(encoding: str, blob: bytes, *, arrays: bool = False) -> list[Any] | np.ndarray:
    """The values of one chunk as Python objects (numbers as a read-only numpy array when ``arrays``)."""
    if encoding in (INT64, FLOAT64):
        values = np.frombuffer(blob, dtype="<i8" if encoding == INT64 else "<f8")
        return values if arrays else values.tolist()
    return json.loads(blob)


def resolve_steps(steps: Sequence[int | None] | np.ndarray, first_index: int) -> np.ndarray:
    """Steps as int64, a missing step (None) replaced by the point's index in the series."""
    if isinstance(steps, np.ndarray):
        return steps.astype(np.int64, copy=False)
    count = len(steps)
    if steps.count(None) == count:
        return np.arange(first_index, first_index + count, dtype=np.int64)
    return np.fromiter(
        (first_index + i if step is None else step for i, step in enumerate(steps)),
        dtype=np.int64,
        count=count,
    )


def encode_steps(steps: np.ndarray, first_index: int) -> bytes | None:
    """None when every step is its point's index (the common case), else int64 bytes."""
    if steps.size and steps[0] == first_index and steps[-1] == first_index + steps.size - 1:
        if np.array_equal(steps, np.arange(first_index, first_index + steps.size)):
            return None
    return steps.astype("<i8", copy=False).tobytes()


def decode_steps(blob: bytes | None, first_index: int, count: int) -> np.ndarray:
    """The steps of one chunk."""
    if blob is None:
        return np.arange(first_index, first_index + count, dtype=np.int64)
    return np.frombuffer(blob, dtype="<i8")


NO_STEPS = "none"  # every step of a batch is missing: each defaults to its point's index


def encode_optional_steps(steps: Sequence[int | None]) -> tuple[str, bytes]:
    """Steps of a batch, where a missing step is None: :data:`NO_STEPS` when every one is
    missing, :data:`INT64` when none is, else :data:`JSON` (a mix of steps and None)."""
    if isinstance(steps, np.ndarray) and steps.dtype == np.int64:  # a buffer's packed steps
        return INT64, steps.astype("<i8", copy=False).tobytes()
    steps = list(steps)
    missing = steps.count(None)
    if missing == len(steps):
        return NO_STEPS, b""
    if missing == 0:
        return INT64, np.asarray(steps, dtype="<i8").tobytes()
    return JSON, json.dumps(steps, separators=(",", ":")).encode()


def decode_optional_steps(encoding: str, blob: bytes, count: int) -> list[Any]:
    """The inverse of :func:`encode_optional_steps` (``count`` points); ValueError for an
    unknown encoding. What a JSON blob holds is the caller's to check."""
    if encoding == NO_STEPS:
        return [None] * count
    if encoding == INT64:
        return np.frombuffer(blob, dtype="<i8").tolist()
    if encoding == JSON:
        return json.loads(blob)
    raise ValueError(f"unknown step encoding {encoding!r}")


def encode_times(times: Sequence[float]) -> bytes:
    """Wall times (seconds since the epoch) as float64 bytes."""
    return np.asarray(times, dtype="<f8").tobytes()


def decode_times(blob: bytes) -> np.ndarray:
    """The wall times of one chunk."""
    return np.frombuffer(blob, dtype="<f8")


def encode_json_value(value: Any) -> str:
    """One value as JSON text, NaN and infinities included."""
    if isinstance(value, np.generic):  # an element of a checked batch's array
        value = value.item()
    return json.dumps(value, allow_nan=True)


def decode_json_value(text: str | None) -> Any:
    """The inverse of :func:`encode_json_value`."""
    return None if text is None else json.loads(text)

