"""Series downsampled for a chart: at most N points, the min and the max of each bucket.

A chart has a few thousand pixels across; it never needs more points than that. Each bucket of
consecutive points gives its lowest and its highest point (in x order), so a one-point spike
stays visible, and the first and last points are always kept. Non-finite values (NaN, infinity)
are left out, since a chart cannot draw them. Vectorised with numpy: a million points take a few
milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

DEFAULT_POINTS = 2000
MAX_POINTS = 4000
MIN_POINTS = 4


@dataclass(frozen=True)
class Downsampled:
    """A series ready for a chart: ``x`` and ``y`` of at most the asked number of points, and
    ``count``, how many points the whole series has."""

    x: np.ndarray
    y: np.ndarray
    count: int

    def as_json(self) -> dict[str, Any]:
        """``{"x": [...], "y": [...], "count": N}`` with plain Python numbers."""
        return {"x": self.x.tolist(), "y": self.y.tolist(), "count": self.count}


def numeric_values(values: Sequence[Any]) -> np.ndarray | None:
    """The values as a float array, or None when they are not all numbers (text metrics)."""
    if isinstance(values, np.ndarray) and values.dtype.kind in "fiub":
        return values.astype(np.float64, copy=False)
    if any(isinstance(value, (str, bytes, list, dict)) for value in values[:64]):
        return None
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        return None


def downsample(x: np.ndarray, y: np.ndarray, points: int = DEFAULT_POINTS) -> Downsampled:
    """``(x, y)`` cut to at most ``points`` points (at least :data:`MIN_POINTS`): the first and last
    points, and the min and max of each of ``(points - 2) // 2`` buckets between them, in x order."""
    x = np.asarray(x)  # steps stay whole numbers (shorter JSON); times are floats
    if x.dtype.kind not in "iuf":
        x = x.astype(np.float64)
    y = np.asarray(y, dtype=np.float64)
    count = len(y)
    finite = np.isfinite(y) & (np.isfinite(x) if x.dtype.kind == "f" else True)
    if not finite.all():
        x, y = x[finite], y[finite]
    points = max(int(points), MIN_POINTS)
    if len(y) <= points:
        return Downsampled(x, y, count)
    kept = _bucket_extremes(y[1:-1], (points - 2) // 2) + 1
    index = np.concatenate(([0], kept, [len(y) - 1]))
    return Downsampled(x[index], y[index], count)


def _bucket_extremes(y: np.ndarray, buckets: int) -> np.ndarray:
    """Indices of the min and the max of each of ``buckets`` runs of consecutive points of ``y``
    (the last bucket may be shorter), each pair in index order."""
    size = -(-len(y) // buckets)
    rows = -(-len(y) // size)
    padded_low = np.full(rows * size, np.inf)
    padded_low[: len(y)] = y
    padded_high = np.full(rows * size, -np.inf)
    padded_high[: len(y)] = y
    starts = np.arange(rows) * size
    low = padded_low.reshape(rows, size).argmin(axis=1) + starts
    high = padded_high.reshape(rows, size).argmax(axis=1) + starts
    pairs = np.sort(np.stack([low, high], axis=1), axis=1).ravel()
    # a flat bucket has its min and max at the same index: keep it once
    return pairs[np.concatenate(([True], pairs[1:] != pairs[:-1]))]
