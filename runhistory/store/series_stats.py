"""The numeric summary a store keeps per series: the last number, the smallest and the largest.

Only scalar and list series of numbers have one (strings, rows, images and summaries keep NULL).
A NaN is never a minimum or a maximum, and a NaN last value has no last number (NULL), so that
filters and sorts never meet a value that compares with nothing; infinities count as numbers.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from runhistory.store.base import MetricKind

NUMERIC_KINDS = (MetricKind.SCALAR, MetricKind.LIST)

Stats = tuple[float | None, float | None, float | None]  # (last number, min, max)


def numeric_stats(kind: str, values: Sequence[Any]) -> Stats:
    """``(last number, min, max)`` of these points of a series of ``kind`` (None where there is none)."""
    if kind not in NUMERIC_KINDS or len(values) == 0:
        return None, None, None
    if isinstance(values, np.ndarray) and values.dtype.kind in "if":
        numbers = values[~np.isnan(values)] if values.dtype.kind == "f" else values
        if len(numbers) == 0:
            return None, None, None
        return _number(values[-1]), float(numbers.min()), float(numbers.max())
    numbers = [float(value) for value in values if _is_number(value) and not math.isnan(value)]
    if not numbers:
        return None, None, None
    return _number(values[-1]), min(numbers), max(numbers)


def merge_stats(earlier: Stats, later: Stats) -> Stats:
    """The stats of two consecutive runs of points of one series (``later`` logged after ``earlier``)."""
    return later[0], _least(earlier[1], later[1]), _greatest(earlier[2], later[2])


def _number(value: Any) -> float | None:
    """A finite or infinite number as a float; None for NaN and anything that is not a number."""
    if not _is_number(value):
        return None
    number = float(value)
    return None if math.isnan(number) else number


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _least(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else min(a, b)


def _greatest(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)
