"""Metric batches cut into requests that a runhistory server takes whole."""

from __future__ import annotations

import dataclasses
import json
from typing import Iterable

import numpy as np

from runhistory.store.base import MetricBatch

MAX_POINTS_PER_REQUEST = 1_000_000
MAX_BYTES_PER_REQUEST = 32 << 20  # JSON-encoded values per request: half the server's default 64 MiB limit


def split_batches(batches: list[MetricBatch]) -> Iterable[list[MetricBatch]]:
    """Batches in groups of at most MAX_POINTS_PER_REQUEST points and about MAX_BYTES_PER_REQUEST
    bytes of JSON-encoded values (a long series cut in slices), so that no request passes the
    server's limits however long its strings are."""
    group: list[MetricBatch] = []
    points = size = 0
    for batch in batches:
        sizes = _json_point_sizes(batch)
        at = 0
        while at < len(batch.values):
            take = min(len(batch.values) - at, MAX_POINTS_PER_REQUEST - points)
            if sizes is not None:
                take = max(_fitting(sizes, at, take, MAX_BYTES_PER_REQUEST - size), 1 if not group else 0)
                if take == 0:  # this group is full: start the next one
                    yield group
                    group, points, size = [], 0, 0
                    continue
                size += sum(sizes[at : at + take])
            group.append(_slice(batch, at, take))
            points += take
            at += take
            if points >= MAX_POINTS_PER_REQUEST or size >= MAX_BYTES_PER_REQUEST:
                yield group
                group, points, size = [], 0, 0
    if group:
        yield group


def _slice(batch: MetricBatch, at: int, take: int) -> MetricBatch:
    if at == 0 and take == len(batch.values):
        return batch
    return dataclasses.replace(
        batch, values=batch.values[at : at + take], steps=batch.steps[at : at + take], times=batch.times[at : at + take]
    )


def _json_point_sizes(batch: MetricBatch) -> list[int] | None:
    """An upper bound of each point's size on the wire when its values go as JSON; None for numbers."""
    values = batch.values
    if isinstance(values, np.ndarray) and values.dtype.kind in "if":  # a buffer's packed numbers
        return None
    if set(map(type, values)) <= {int, float}:
        return None
    # ``json.dumps`` escapes every non-ASCII character: at most 12 bytes per character (a surrogate pair)
    return [32 + (12 * len(v) if isinstance(v, str) else len(json.dumps(v, allow_nan=True))) for v in values]


def _fitting(sizes: list[int], at: int, most: int, room: int) -> int:
    """How many points from ``at`` (at most ``most``) fit in ``room`` bytes."""
    taken = 0
    while taken < most and sizes[at + taken] <= room:
        room -= sizes[at + taken]
        taken += 1
    return taken
