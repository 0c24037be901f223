"""Compaction: a series' many small stored pieces become a few large ones.

Points arrive in *frames* (one row per flush per run, :mod:`runhistory.store.sql.frames`).
The policy is size-tiered, as an LSM tree's:

1. **Frames to chunks.** Once a run has :data:`FRAMES_PER_FOLD` frames, they are folded, in
   one transaction, into one chunk per series (its points of those frames, concatenated).
2. **Tiers.** A chunk's tier is ``floor(log_F(points))`` with ``F =`` :data:`TIER_FANOUT`.
   Whenever a series has ``F`` adjacent chunks of one tier they are merged into one (of the next
   tier), so a live series of ``n`` points keeps at most ``(F - 1)`` chunks per tier, about
   ``(F - 1) log_F(n)`` in all, and each point is rewritten about ``log_F(n)`` times.
3. **When a run ends**, its frames are folded and each series' chunks merged into as few as
   :data:`CHUNK_POINTS_MAX` allows (one, for all but huge series): a finished run reads like a
   run logged in one burst.

Why size-tiered rather than leveled: series only grow at their end and are never updated, so
there is nothing to overwrite or reconcile, and tiers give bounded chunk counts with the
least rewriting while a run is live; the final merge then gives the read cost of a burst.

Safety. Each step is one transaction that inserts the merged chunk(s) and deletes what they
replace, checking that every row it deletes was still there (another compactor may have got
there first: then it is rolled back and nothing changes). Readers read chunks and frames in
one snapshot, so they see every point exactly once, before or after. A process killed during
a compaction leaves the transaction undone. Writers of other runs wait at most one short
transaction, and memory stays bounded: each step takes at most about
:data:`POINTS_PER_TRANSACTION` points (and :data:`SERIES_PER_TRANSACTION` series).
"""

from __future__ import annotations

import json
import math
from typing import Any, Iterator

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from runhistory.store import codec
from runhistory.store.sql.frames import JSON_CODE, FrameTable, index_steps, read_frames
from runhistory.store.sql.schema import metric_chunks, metric_frames, metrics

FRAMES_PER_FOLD = 32
TIER_FANOUT = 4
CHUNK_POINTS_MAX = 1 << 20
SERIES_PER_TRANSACTION = 500
POINTS_PER_TRANSACTION = 2_000_000  # what one compaction step holds in memory, about 100 MB at most
_FRAMES_PER_TRANSACTION = 256
_IDS_PER_STATEMENT = 500


class CompactedMeanwhile(Exception):
    """Rows this compaction meant to replace were replaced by another one first: roll back."""


# --- frames to chunks ---------------------------------------------------------------------


def fold_frames(connection: Connection, run_id: str) -> tuple[list[int], int]:
    """Fold the oldest frames of a run (about :data:`POINTS_PER_TRANSACTION` points' worth, at least
    one frame) into per-series chunks: the ids of the series touched and how many pieces were
    merged away."""
    heads = connection.execute(
        sa.select(metric_frames.c.id, metric_frames.c.points)
        .where(metric_frames.c.run_id == run_id)
        .order_by(metric_frames.c.id)
        .limit(_FRAMES_PER_TRANSACTION)
    ).all()
    ids = _within_budget(heads, lambda head: head.points)
    if not ids:
        return [], 0
    rows = connection.execute(sa.select(metric_frames).where(metric_frames.c.id.in_(ids)).order_by(metric_frames.c.id)).all()
    table = read_frames(rows)
    chunk_rows = chunk_rows_of(table)
    if chunk_rows:
        connection.execute(sa.insert(metric_chunks), chunk_rows)
    _delete_all(connection, metric_frames, ids)
    return sorted({row["metric_id"] for row in chunk_rows}), len(table) - len(chunk_rows)


def _within_budget(items: list, points_of) -> list:
    """The ids of the first items whose points add up to at most POINTS_PER_TRANSACTION (one at least)."""
    chosen, total = [], 0
    for item in items:
        total += points_of(item)
        if chosen and total > POINTS_PER_TRANSACTION:
            break
        chosen.append(item.id)
    return chosen


def chunk_rows_of(table: FrameTable) -> list[dict[str, Any]]:
    """One ``metric_chunks`` row per series (per run of adjacent pieces of one encoding), vectorised."""
    count = len(table)
    if count == 0:
        return []
    order = np.lexsort((table.first_indexes, table.metric_ids))
    metric_ids, firsts = table.metric_ids[order], table.first_indexes[order]
    counts, codes = table.counts[order], table.codes[order]
    starts_group = np.ones(count, dtype=bool)
    starts_group[1:] = (
        (metric_ids[1:] != metric_ids[:-1]) | (codes[1:] != codes[:-1]) | (firsts[1:] != firsts[:-1] + counts[:-1])
    )
    groups = np.flatnonzero(starts_group)
    points = _gather(table.point_start[order], counts)
    numeric_counts = np.where(codes == JSON_CODE, 0, counts)
    cells = table.cells[_gather(table.cell_start[order], numeric_counts)]
    steps, times = table.steps[points], table.times[points]
    at_index = steps == index_steps(firsts, counts)
    point_at = np.concatenate([[0], np.cumsum(counts)])
    cell_at = np.concatenate([[0], np.cumsum(numeric_counts)])
    bounds = np.append(groups, count)
    rows = []
    for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
        p0, p1, c0, c1 = int(point_at[a]), int(point_at[b]), int(cell_at[a]), int(cell_at[b])
        code = int(codes[a])
        if code == JSON_CODE:
            values = [value for i in order[a:b].tolist() for value in table.json_values[i]]
            encoding, vals = codec.JSON, json.dumps(values, allow_nan=True, separators=(",", ":")).encode()
        else:
            encoding, vals = (codec.FLOAT64 if code == 0 else codec.INT64), cells[c0:c1].tobytes()
        rows.append(
            {
                "metric_id": int(metric_ids[a]),
                "first_index": int(firsts[a]),
                "count": p1 - p0,
                "encoding": encoding,
                "steps": None if at_index[p0:p1].all() else steps[p0:p1].astype("<i8", copy=False).tobytes(),
                "vals": vals,
                "times": times[p0:p1].astype("<f8", copy=False).tobytes(),
            }
        )
    return rows


def _gather(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The indexes ``starts[i] .. starts[i] + counts[i] - 1`` of every piece, concatenated."""
    total = int(counts.sum())
    if total == 0:
        return np.empty(0, np.int64)
    piece_at = np.concatenate([[0], np.cumsum(counts)[:-1]])
    return np.arange(total, dtype=np.int64) + np.repeat(starts - piece_at, counts)


# --- merging chunks -----------------------------------------------------------------------


def plan_merges(connection: Connection, metric_ids: list[int], full: bool) -> list[list]:
    """The groups of chunks to merge, by the tiers (``full``: as far as the size cap allows), each
    a list of ``(id, metric_id, first_index, count, encoding)`` rows."""
    return [group for layout in _chunk_layouts(connection, metric_ids) for group in _merges(layout, full)]


def next_merges(groups: list[list]) -> tuple[list[list], list[list]]:
    """The groups one transaction merges (about POINTS_PER_TRANSACTION points), and the rest."""
    taken, total = 0, 0
    for group in groups:
        total += sum(chunk.count for chunk in group)
        if taken and total > POINTS_PER_TRANSACTION:
            break
        taken += 1
    return groups[:taken], groups[taken:]


def merge_chunks(connection: Connection, groups: list[list]) -> int:
    """Merge each group of chunks into one; returns how many chunks were merged away."""
    wanted = [chunk.id for group in groups for chunk in group]
    if not wanted:
        return 0
    chunks = {row.id: row for ids in _batches(wanted) for row in connection.execute(sa.select(metric_chunks).where(metric_chunks.c.id.in_(ids)))}
    if len(chunks) != len(wanted):
        raise CompactedMeanwhile()
    merged = [merged_row([chunks[chunk.id] for chunk in group]) for group in groups]
    connection.execute(sa.insert(metric_chunks), merged)
    _delete_all(connection, metric_chunks, wanted)
    return len(wanted) - len(merged)


def _chunk_layouts(connection: Connection, metric_ids: list[int]) -> Iterator[list]:
    """Per series, its chunks under the size cap as ``(id, first_index, count, encoding)`` in order."""
    for ids in _batches(metric_ids):
        query = (
            sa.select(metric_chunks.c.metric_id, metric_chunks.c.id, metric_chunks.c.first_index, metric_chunks.c.count, metric_chunks.c.encoding)
            .where(metric_chunks.c.metric_id.in_(ids), metric_chunks.c.count < CHUNK_POINTS_MAX)
            .order_by(metric_chunks.c.metric_id, metric_chunks.c.first_index)
        )
        current: list = []
        for row in connection.execute(query):
            if current and current[0].metric_id != row.metric_id:
                yield current
                current = []
            current.append(row)
        if current:
            yield current


def _merges(chunks: list, full: bool) -> Iterator[list]:
    """Groups of adjacent chunks (contiguous points) to merge."""
    for run in _adjacent_runs(chunks):
        if full:
            yield from _fill_up(run)
        else:
            yield from _full_tiers(run)


def _adjacent_runs(chunks: list) -> Iterator[list]:
    run: list = []
    for chunk in chunks:
        if run and chunk.first_index != run[-1].first_index + run[-1].count:
            yield run
            run = []
        run.append(chunk)
    if run:
        yield run


def _tier(count: int) -> int:
    return int(math.log(max(count, 1), TIER_FANOUT) + 1e-9)


def _full_tiers(run: list) -> Iterator[list]:
    """Each stretch of TIER_FANOUT adjacent chunks of one tier."""
    stretch: list = []
    for chunk in run:
        if stretch and _tier(chunk.count) != _tier(stretch[-1].count):
            stretch = []
        stretch.append(chunk)
        if len(stretch) == TIER_FANOUT:
            yield stretch
            stretch = []


def _fill_up(run: list) -> Iterator[list]:
    """Adjacent chunks merged greedily up to CHUNK_POINTS_MAX points each."""
    group: list = []
    points = 0
    for chunk in run:
        if group and points + chunk.count > CHUNK_POINTS_MAX:
            if len(group) > 1:
                yield group
            group, points = [], 0
        group.append(chunk)
        points += chunk.count
    if len(group) > 1:
        yield group


def merged_row(chunks: list) -> dict[str, Any]:
    """The chunk rows (in first_index order, adjacent) as one row. Chunks of different encodings
    (ints, then floats, then strings) merge as JSON, which keeps each value exactly as it was."""
    first = chunks[0]
    encoding = first.encoding
    if any(c.encoding != encoding for c in chunks):
        encoding = codec.JSON
    if encoding == codec.JSON:
        values = [v for c in chunks for v in codec.decode_values(c.encoding, c.vals)]
        vals = json.dumps(values, allow_nan=True, separators=(",", ":")).encode()
    else:
        vals = b"".join(c.vals for c in chunks)
    steps = np.concatenate([codec.decode_steps(c.steps, c.first_index, c.count) for c in chunks])
    count = sum(c.count for c in chunks)
    return {
        "metric_id": first.metric_id,
        "first_index": first.first_index,
        "count": count,
        "encoding": encoding,
        "steps": codec.encode_steps(steps, first.first_index),
        "vals": vals,
        "times": b"".join(c.times for c in chunks),
    }


# --- plumbing -----------------------------------------------------------------------------


def frames_per_run(connection: Connection, run_ids: list[str]) -> dict[str, int]:
    """How many frames (flushes not yet compacted) each run has."""
    query = (
        sa.select(metric_frames.c.run_id, sa.func.count())
        .where(metric_frames.c.run_id.in_(run_ids))
        .group_by(metric_frames.c.run_id)
    )
    return {run_id: count for run_id, count in connection.execute(query)}


def series_of_run(connection: Connection, run_id: str) -> list[int]:
    """The ids of a run's series."""
    return list(connection.execute(sa.select(metrics.c.id).where(metrics.c.run_id == run_id).order_by(metrics.c.id)).scalars())


def runs_to_compact(connection: Connection) -> list[str]:
    """The runs that have frames not yet folded, or a series in more than one chunk."""
    spread = (
        sa.select(metrics.c.run_id)
        .join(metric_chunks, metric_chunks.c.metric_id == metrics.c.id)
        .group_by(metrics.c.run_id, metrics.c.id)
        .having(sa.func.count() > 1)
    )
    framed = sa.select(metric_frames.c.run_id)
    return sorted(set(connection.execute(spread).scalars()) | set(connection.execute(framed).scalars()))


def _delete_all(connection: Connection, table: sa.Table, ids: list[int]) -> None:
    """Delete these rows, all of them or none: a row already gone means another compaction won."""
    deleted = sum(connection.execute(sa.delete(table).where(table.c.id.in_(part))).rowcount for part in _batches(ids))
    if deleted != len(ids):
        raise CompactedMeanwhile()


def _batches(ids: list) -> Iterator[list]:
    for at in range(0, len(ids), _IDS_PER_STATEMENT):
        yield ids[at : at + _IDS_PER_STATEMENT]

