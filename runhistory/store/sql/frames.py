"""Frames: the recent flushes of a run, each one row holding the points of all its series.

A flush of a thousand series of one point each would be a thousand chunk rows (several
milliseconds even as one ``executemany``); as a frame it is one row of a few packed arrays.
A frame holds *pieces*, one per series it touched: the series' id, the index of its first
point, how many points and how they are encoded. The points themselves are concatenated in
piece order: 8-byte cells for numbers (float64 or int64 bit patterns), one JSON list of
lists for the pieces that are not numbers, int64 steps (left out when every step is its
point's index), float64 wall times. Compaction (:mod:`runhistory.store.sql.compaction`)
turns a run's frames into per-series chunks; readers read both.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from runhistory.store import codec

FLOAT_CODE, INT_CODE, JSON_CODE = 0, 1, 2
CODE_OF_ENCODING = {codec.FLOAT64: FLOAT_CODE, codec.INT64: INT_CODE, codec.JSON: JSON_CODE}


@dataclass(frozen=True)
class Piece:
    """Consecutive points of one series, as a frame or a chunk holds them."""

    metric_id: int
    first_index: int
    encoding: str  # codec.FLOAT64, codec.INT64 or codec.JSON
    values: Any  # a float64 / int64 array, or a list for JSON
    steps: np.ndarray | None  # int64; None when each step is the point's index
    times: np.ndarray  # float64

    @property
    def count(self) -> int:
        return len(self.times)

    def resolved_steps(self) -> np.ndarray:
        if self.steps is not None:
            return self.steps
        return np.arange(self.first_index, self.first_index + self.count, dtype=np.int64)


class FrameBuilder:
    """The pieces of one flush of one run, gathered one by one, then packed as its frame row."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self._ids: list[int] = []
        self._firsts: list[int] = []
        self._counts: list[int] = []
        self._codes: list[int] = []
        self._cells: list[np.ndarray] = []
        self._json: list[list] = []
        self._steps: list[np.ndarray | None] = []
        self._times: list[np.ndarray] = []
        self._with_steps = False

    def add(self, metric_id: int, first_index: int, values: Any, steps: Any, times: np.ndarray) -> None:
        """One series' points: ``values`` an int64/float64 array or a sequence (kept as JSON);
        ``steps`` an int64 array or a list of steps where None is the point's index."""
        count = len(times)
        self._ids.append(metric_id)
        self._firsts.append(first_index)
        self._counts.append(count)
        self._times.append(times)
        dtype = values.dtype if type(values) is np.ndarray else None
        if dtype is _F8:
            self._codes.append(FLOAT_CODE)
            self._cells.append(values.view("<i8"))
        elif dtype is _I8:
            self._codes.append(INT_CODE)
            self._cells.append(values)
        else:
            self._add_other(values)
        if type(steps) is not np.ndarray and steps.count(None) != count:  # some steps given, some not
            steps = codec.resolve_steps(steps, first_index)
        if type(steps) is np.ndarray:
            self._steps.append(steps)
            self._with_steps = True
        else:
            self._steps.append(None)

    def _add_other(self, values: Any) -> None:
        encoding, _ = codec.encode_values(values)
        if encoding == codec.JSON:
            self._codes.append(JSON_CODE)
            self._json.append(values.tolist() if isinstance(values, np.ndarray) else list(values))
        else:
            dtype = "<f8" if encoding == codec.FLOAT64 else "<i8"
            self._codes.append(CODE_OF_ENCODING[encoding])
            self._cells.append(np.asarray(values, dtype=dtype).view("<i8"))

    def row(self) -> dict[str, Any]:
        """The ``metric_frames`` row."""
        firsts = np.array(self._firsts, dtype="<i8")
        counts = np.array(self._counts, dtype="<i8")
        steps = None
        if self._with_steps:
            indexes = index_steps(firsts, counts)
            given = [s if s is not None else indexes[a : a + n] for s, a, n in zip(self._steps, _starts(counts).tolist(), self._counts)]
            joined = np.concatenate(given).astype("<i8", copy=False)
            steps = None if np.array_equal(joined, indexes) else joined.tobytes()
        return {
            "run_id": self.run_id,
            "created_time": time.time(),
            "points": int(counts.sum()),
            "metric_ids": np.array(self._ids, dtype="<i8").tobytes(),
            "first_indexes": firsts.tobytes(),
            "counts": counts.tobytes(),
            "encodings": np.array(self._codes, dtype=np.uint8).tobytes(),
            "cells": np.concatenate(self._cells).tobytes() if self._cells else b"",
            "json_values": json.dumps(self._json, allow_nan=True, separators=(",", ":")).encode() if self._json else None,
            "steps": steps,
            "times": np.concatenate(self._times).astype("<f8", copy=False).tobytes(),
        }


_F8, _I8 = np.dtype(np.float64), np.dtype(np.int64)


@dataclass
class FrameTable:
    """The pieces of many frames, concatenated in frame order, as parallel numpy arrays.

    ``point_start[i]`` is where piece ``i``'s points begin in ``times``/``steps``;
    ``cell_start[i]`` where its cells begin in ``cells`` (numeric pieces only);
    ``json_values[i]`` its value list (JSON pieces only, else None).
    """

    frame_ids: list[int]
    metric_ids: np.ndarray
    first_indexes: np.ndarray
    counts: np.ndarray
    codes: np.ndarray
    point_start: np.ndarray
    cell_start: np.ndarray
    cells: np.ndarray
    steps: np.ndarray
    times: np.ndarray
    json_values: list[list | None]

    def __len__(self) -> int:
        return len(self.metric_ids)

    def only(self, keep: np.ndarray) -> "FrameTable":
        """The pieces where ``keep`` (a boolean mask) is true; their points stay where they are."""
        chosen = np.flatnonzero(keep)
        return FrameTable(
            frame_ids=self.frame_ids,
            metric_ids=self.metric_ids[chosen],
            first_indexes=self.first_indexes[chosen],
            counts=self.counts[chosen],
            codes=self.codes[chosen],
            point_start=self.point_start[chosen],
            cell_start=self.cell_start[chosen],
            cells=self.cells,
            steps=self.steps,
            times=self.times,
            json_values=[self.json_values[i] for i in chosen.tolist()],
        )


def read_frames(rows: Sequence[Any]) -> FrameTable:
    """The pieces of ``metric_frames`` rows (in the order given: oldest first)."""
    ids = [np.frombuffer(row.metric_ids, "<i8") for row in rows]
    firsts = [np.frombuffer(row.first_indexes, "<i8") for row in rows]
    counts = [np.frombuffer(row.counts, "<i8") for row in rows]
    codes = [np.frombuffer(row.encodings, np.uint8) for row in rows]
    steps = [_frame_steps(row.steps, first, count) for row, first, count in zip(rows, firsts, counts)]
    json_values: list[list | None] = []
    for row, frame_codes in zip(rows, codes):
        lists = iter(json.loads(row.json_values) if row.json_values is not None else [])
        json_values.extend(next(lists) if code == JSON_CODE else None for code in frame_codes)
    all_counts = _joined(counts, np.int64)
    all_codes = _joined(codes, np.uint8)
    numeric_counts = np.where(all_codes == JSON_CODE, 0, all_counts)
    return FrameTable(
        frame_ids=[row.id for row in rows],
        metric_ids=_joined(ids, np.int64),
        first_indexes=_joined(firsts, np.int64),
        counts=all_counts,
        codes=all_codes,
        point_start=_starts(all_counts),
        cell_start=_starts(numeric_counts),
        cells=_joined([np.frombuffer(row.cells, "<i8") for row in rows], np.int64),
        steps=_joined(steps, np.int64),
        times=_joined([np.frombuffer(row.times, "<f8") for row in rows], np.float64),
        json_values=json_values,
    )


def _frame_steps(blob: bytes | None, first_indexes: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """A frame's steps; when not stored, each point's index in its series."""
    if blob is not None:
        return np.frombuffer(blob, "<i8")
    return index_steps(first_indexes, counts)


def index_steps(first_indexes: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """For pieces starting at ``first_indexes`` with ``counts`` points: each point's index, concatenated."""
    total = int(counts.sum())
    if total == 0:
        return np.empty(0, np.int64)
    offsets = np.arange(total, dtype=np.int64) - np.repeat(_starts(counts), counts)
    return np.repeat(first_indexes, counts) + offsets


def _starts(counts: np.ndarray) -> np.ndarray:
    starts = np.zeros(len(counts), dtype=np.int64)
    if len(counts) > 1:
        np.cumsum(counts[:-1], out=starts[1:])
    return starts


def _joined(arrays: list[np.ndarray], dtype) -> np.ndarray:
    return np.concatenate(arrays) if arrays else np.empty(0, dtype)
