"""Reading series: their chunks and the frames not yet folded, in one snapshot.

A finished run's series are a chunk or a few each; a live one's are a few large chunks, some
recent small ones and the pieces of its run's frames (see :mod:`runhistory.store.sql.compaction`).
All of them are read in one transaction (SQLite's snapshot, PostgreSQL at REPEATABLE READ),
so that a compaction committing meanwhile never makes a point appear twice or not at all.
"""

from __future__ import annotations

import json
from collections import defaultdict
from types import SimpleNamespace
from typing import Any, Iterator, Sequence

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from runhistory.store import codec
from runhistory.store.base import MetricSeries
from runhistory.store.sql.compaction import chunk_rows_of
from runhistory.store.sql.frames import Piece, read_frames
from runhistory.store.sql.schema import metric_chunks, metric_frames, metrics

_IDS_PER_QUERY = 500


def series_rows(connection: Connection, run_ids: Sequence[str], names: Sequence[str] | None) -> list:
    """The ``metrics`` rows of these runs (only ``names`` when given), by run then name."""
    found = []
    for part in _parts(list(run_ids)):
        query = sa.select(metrics).where(metrics.c.run_id.in_(part))
        if names is not None:
            query = query.where(metrics.c.name.in_(list(names)))
        found.extend(connection.execute(query.order_by(metrics.c.run_id, metrics.c.name)))
    return found


def read_series(
    connection: Connection, rows: list, starts: dict[int, int], names: Sequence[str] | None = None, *, arrays: bool = False
) -> dict[int, MetricSeries]:
    """``{metric_id: series}`` of these ``metrics`` rows (of their runs, only ``names`` when given,
    as :func:`series_rows` read them), each from point ``starts[id]`` on; with ``arrays``, a
    series of numbers has its values as one numpy array rather than a list."""
    if not rows:
        return {}
    wanted = {row.id for row in rows}
    chunks: dict[int, list] = defaultdict(list)
    for chunk in _chunks(connection, sorted({row.run_id for row in rows}), names, min(starts.values(), default=0)):
        if chunk.metric_id in wanted:
            chunks[chunk.metric_id].append(chunk)
    framed: dict[int, list[Piece]] = defaultdict(list)
    for piece in _frame_pieces(connection, rows):
        framed[piece.metric_id].append(piece)
    found = {}
    for row in rows:
        own, start = chunks.get(row.id, []), starts.get(row.id, 0)
        if len(own) == 1 and row.id not in framed and own[0].first_index >= start:
            found[row.id] = _whole_chunk(row, own[0], arrays)  # a finished run's series: one chunk, read as it is
        else:
            found[row.id] = _series(row, [*map(_chunk_piece, own), *framed.get(row.id, [])], start, arrays)
    return found


def _whole_chunk(row, chunk, arrays: bool) -> MetricSeries:
    return MetricSeries(
        name=row.name,
        kind=row.kind,
        steps=codec.decode_steps(chunk.steps, chunk.first_index, chunk.count),
        values=codec.decode_values(chunk.encoding, chunk.vals, arrays=arrays),
        times=codec.decode_times(chunk.times),
        description=row.description,
        source=row.source,
    )


def _chunks(connection: Connection, run_ids: list[str], names: Sequence[str] | None, start: int) -> Iterator[Any]:
    """The chunks of these runs' series (by run, a few hundred runs a query) that reach past ``start``."""
    for part in _parts(run_ids):
        query = (
            sa.select(metric_chunks)
            .join(metrics, metrics.c.id == metric_chunks.c.metric_id)
            .where(metrics.c.run_id.in_(part), metric_chunks.c.first_index + metric_chunks.c.count > start)
        )
        if names is not None:
            query = query.where(metrics.c.name.in_(list(names)))
        yield from connection.execute(query)


def _frame_pieces(connection: Connection, rows: list) -> Iterator[Piece]:
    """The points of the wanted series in their runs' frames: one piece per series (and encoding),
    gathered from every frame at once as compaction would fold them."""
    run_ids = sorted({row.run_id for row in rows})
    frames = []
    for part in _parts(run_ids):
        query = sa.select(metric_frames).where(metric_frames.c.run_id.in_(part)).order_by(metric_frames.c.id)
        frames.extend(connection.execute(query))
    if not frames:
        return
    table = read_frames(frames)
    wanted = np.fromiter((row.id for row in rows), dtype=np.int64, count=len(rows))
    for folded in chunk_rows_of(table.only(np.isin(table.metric_ids, wanted))):
        yield _chunk_piece(SimpleNamespace(**folded))


def _chunk_piece(chunk) -> Piece:
    """A ``metric_chunks`` row as a :class:`Piece`."""
    if chunk.encoding == codec.JSON:
        values: Any = json.loads(chunk.vals)
    else:
        values = np.frombuffer(chunk.vals, dtype="<f8" if chunk.encoding == codec.FLOAT64 else "<i8")
    steps = None if chunk.steps is None else np.frombuffer(chunk.steps, "<i8")
    return Piece(chunk.metric_id, chunk.first_index, chunk.encoding, values, steps, np.frombuffer(chunk.times, "<f8"))


def _series(row, pieces: list[Piece], start: int, arrays: bool) -> MetricSeries:
    pieces.sort(key=lambda piece: piece.first_index)
    steps, values, times = [], [], []
    for piece in pieces:
        if piece.first_index + piece.count <= start:
            continue
        skip = max(0, start - piece.first_index)
        steps.append(piece.resolved_steps()[skip:])
        values.append(piece.values[skip:])
        times.append(piece.times[skip:])
    return MetricSeries(
        name=row.name,
        kind=row.kind,
        steps=np.concatenate(steps) if steps else np.empty(0, np.int64),
        values=_listed(values, arrays),
        times=np.concatenate(times) if times else np.empty(0, np.float64),
        description=row.description,
        source=row.source,
    )


def _listed(parts: list, arrays: bool = False) -> list | np.ndarray:
    """The values of consecutive pieces as one list (one ``tolist`` when they are arrays of one
    type); with ``arrays``, pieces that are all numbers as one numpy array."""
    if arrays and parts and all(type(part) is np.ndarray for part in parts):
        return np.concatenate(parts)
    if len(parts) > 1 and all(type(part) is np.ndarray for part in parts) and len({part.dtype for part in parts}) == 1:
        return np.concatenate(parts).tolist()
    listed: list = []
    for part in parts:
        listed.extend(part.tolist() if type(part) is np.ndarray else part)
    return listed


def _parts(items: list) -> Iterator[list]:
    for at in range(0, len(items), _IDS_PER_QUERY):
        yield items[at : at + _IDS_PER_QUERY]
