"""Appending metric points: a flush of many series in a constant number of statements.

One call appends checked batches in one transaction: one query for the runs' statuses, one
``executemany`` that moves each series' count and last value on (the ``metrics`` rows that
summaries read), and one ``metric_frames`` row per run holding every point (see
:mod:`runhistory.store.sql.frames`).

The store remembers each series' id and count (:class:`SeriesCache`), so a flush reads no
series row. The counts it sends are checked by the UPDATE itself (``WHERE count = old``):
when another process appended to one of the series meanwhile, fewer rows match, the
transaction is run again with the cache dropped, and the series rows are read ``FOR UPDATE``
(on PostgreSQL two writers of one series then take turns, each seeing the other's count).
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from typing import Iterator

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from runhistory.core.errors import MetricValueError, NotFoundError, RunFinishedError
from runhistory.core.status import RunStatus
from runhistory.store import codec
from runhistory.store.base import MetricBatch, MetricSource
from runhistory.store.series_stats import merge_stats, numeric_stats
from runhistory.store.sql.frames import FrameBuilder
from runhistory.store.sql.schema import applied_batches, metric_chunks, metric_frames, metrics, runs

NAMES_PER_QUERY = 500
OWN_CHUNK_POINTS = 256  # a series' batch of at least this many points is written as a chunk, not into a frame
_CACHE_LIMIT = 1_000_000  # series remembered per store, at most (then it starts afresh)


class StaleSeriesCounts(Exception):
    """A remembered series count was out of date (another process appended): run the write again."""


class SeriesCache:
    """``{(run_id, name): [metric_id, kind, count, source]}`` of series this store wrote or read."""

    def __init__(self) -> None:
        self._series: dict[tuple[str, str], list] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str]) -> list | None:
        return self._series.get(key)

    def remember(self, entries: dict[tuple[str, str], list]) -> None:
        with self._lock:
            if len(self._series) + len(entries) > _CACHE_LIMIT:
                self._series.clear()
            self._series.update(entries)

    def forget_runs(self, run_ids) -> None:
        run_ids = set(run_ids)
        with self._lock:
            for key in [key for key in self._series if key[0] in run_ids]:
                del self._series[key]


def append_batches(
    connection: Connection, batches: list[MetricBatch], cache: SeriesCache, trust_cache: bool
) -> list[str]:
    """Append each batch to its series (the short ones in one frame per run, the long ones as
    chunks of their own); returns the ids of the runs that got a frame.

    With ``trust_cache`` the remembered counts are used (and checked); without, every series
    row is read under lock. Raises :class:`StaleSeriesCounts` when a remembered count was wrong.
    """
    require_open_runs(connection, batches)
    series = _series_of(connection, batches, cache if trust_cache else None)
    frames: dict[str, FrameBuilder] = {}
    chunks: list[dict] = []  # batches long enough to be a chunk of their own
    updates: dict[int, list] = {}  # metric_id -> [new count, old count, last value, (last number, min, max)]
    for batch in batches:
        entry = series[(batch.run_id, batch.name)]
        metric_id, first_index = entry[0], entry[2]
        if len(batch.times) >= OWN_CHUNK_POINTS:
            chunks.append(_chunk_row(metric_id, first_index, batch))
        else:
            frame = frames.get(batch.run_id)
            if frame is None:
                frame = frames[batch.run_id] = FrameBuilder(batch.run_id)
            frame.add(metric_id, first_index, batch.values, batch.steps, batch.times)
        entry[2] = first_index + len(batch.times)
        stats = numeric_stats(batch.kind, batch.values)
        update = updates.get(metric_id)
        if update is None:
            updates[metric_id] = [entry[2], first_index, batch.values[-1], stats]
        else:
            update[0], update[2], update[3] = entry[2], batch.values[-1], merge_stats(update[3], stats)
    _move_counts_on(connection, updates)
    if frames:
        connection.execute(sa.insert(metric_frames), [frame.row() for frame in frames.values()])
    if chunks:
        connection.execute(sa.insert(metric_chunks), chunks)
    cache.remember(series)
    return list(frames)


def _chunk_row(metric_id: int, first_index: int, batch: MetricBatch) -> dict:
    """A ``metric_chunks`` row of one batch (a burst of points: nothing to gain from a frame)."""
    steps = batch.steps
    if type(steps) is not np.ndarray and steps.count(None) == len(steps):
        steps_blob = None
    else:
        steps_blob = codec.encode_steps(codec.resolve_steps(steps, first_index), first_index)
    encoding, vals = codec.encode_values(batch.values)
    return {
        "metric_id": metric_id,
        "first_index": first_index,
        "count": len(batch.times),
        "encoding": encoding,
        "steps": steps_blob,
        "vals": vals,
        "times": codec.encode_times(batch.times),
    }


def append_batches_once(
    connection: Connection, batches: list[MetricBatch], batch_id: str, cache: SeriesCache, trust_cache: bool
) -> list[str]:
    """:func:`append_batches` unless a batch with this id was applied before (in the same transaction)."""
    seen = connection.execute(sa.select(applied_batches.c.id).where(applied_batches.c.id == batch_id)).first()
    if seen is not None:
        return []
    connection.execute(sa.insert(applied_batches).values(id=batch_id, applied_time=time.time()))
    return append_batches(connection, batches, cache, trust_cache) if batches else []


def _move_counts_on(connection: Connection, updates: dict[int, list]) -> None:
    """Set each series' count and last value, checking that its count is still what was read.

    One statement for all series, its rows passed as one JSON array (SQLite) or four arrays
    (PostgreSQL): an ``executemany`` of a thousand rows costs as much or more.
    """
    if connection.dialect.name == "postgresql":
        ids = list(updates)
        lasts = _json_texts([updates[i][2] for i in ids])
        stats = [updates[i][3] for i in ids]
        result = connection.exec_driver_sql(
            _POSTGRES_MOVE_COUNTS,
            (
                [updates[i][0] for i in ids],
                lasts,
                ids,
                [updates[i][1] for i in ids],
                *([one[at] for one in stats] for at in range(3)),
            ),
        )
    else:
        result = connection.exec_driver_sql(*_sqlite_move_counts(updates))
    if result.rowcount != len(updates):
        raise StaleSeriesCounts()


def _sqlite_move_counts(updates: dict[int, list]) -> tuple[str, tuple[str]]:
    """The SQLite statement and its one JSON parameter. Finite numbers go in as JSON numbers, and
    SQLite's ``->`` gives back exactly the text Python's ``json.dumps`` would; anything else
    (strings, rows, NaN, infinities) as its JSON text, taken with ``->>``."""
    rows = [[metric_id, update[0], _plain(update[2]), update[1]] for metric_id, update in updates.items()]
    stats = [_json_stats(update[3]) for update in updates.values()]
    try:
        return _SQLITE_MOVE_COUNTS_NUMBERS, (_with_stats(json.dumps(rows, allow_nan=False), stats),)
    except (TypeError, ValueError):
        lasts = _json_texts([update[2] for update in updates.values()])
        texts = [[row[0], row[1], last, row[3]] for row, last in zip(rows, lasts)]
        return _SQLITE_MOVE_COUNTS_TEXTS, (_with_stats(json.dumps(texts), stats),)


def _json_stats(stats: tuple) -> str:
    """``(last number, min, max)`` as the JSON text SQLite reads back as reals (infinities as 1e999)."""
    return ",".join("null" if value is None else _JSON_INFINITIES.get(value) or repr(value) for value in stats)


_JSON_INFINITIES = {float("inf"): "1e999", float("-inf"): "-1e999"}


def _with_stats(rows_json: str, stats: list[str]) -> str:
    """The JSON array of rows ``[[id, count, last, old], ...]`` with each row's stats appended."""
    if not stats:
        return rows_json
    parts = rows_json[2:-2].split("], [")
    if len(parts) != len(stats):  # a string last value held "], [": build the rows one by one
        return "[" + ", ".join(json.dumps(row)[:-1] + ", " + one + "]" for row, one in zip(json.loads(rows_json), stats)) + "]"
    return "[[" + "], [".join(part + ", " + one for part, one in zip(parts, stats)) + "]]"


def _plain(value):
    """A numpy int64 as an int (json cannot write it); anything else as it is (np.float64 is a float)."""
    return value.item() if type(value) is np.int64 else value


# The minimum and maximum move on with the batch's own (NULL when it had no number): SQLite's
# two-argument min/max answer NULL when either is, hence the coalesces; PostgreSQL's LEAST and
# GREATEST skip NULLs.
_SQLITE_MOVE_COUNTS_NUMBERS = (
    "UPDATE metrics SET count = u.value ->> 1, last_value = u.value -> 2, last_number = u.value ->> 4, "
    "min_value = min(coalesce(metrics.min_value, u.value ->> 5), coalesce(u.value ->> 5, metrics.min_value)), "
    "max_value = max(coalesce(metrics.max_value, u.value ->> 6), coalesce(u.value ->> 6, metrics.max_value)) "
    "FROM json_each(?) AS u "
    "WHERE metrics.id = u.value ->> 0 AND metrics.count = u.value ->> 3"
)
_SQLITE_MOVE_COUNTS_TEXTS = _SQLITE_MOVE_COUNTS_NUMBERS.replace("u.value -> 2", "u.value ->> 2")
_POSTGRES_MOVE_COUNTS = (
    "UPDATE metrics SET count = u.new, last_value = u.last, last_number = u.last_number, "
    "min_value = LEAST(metrics.min_value, u.low), max_value = GREATEST(metrics.max_value, u.high) "
    "FROM unnest(%s::bigint[], %s::text[], %s::bigint[], %s::bigint[], %s::float8[], %s::float8[], %s::float8[]) "
    "AS u(new, last, id, old, last_number, low, high) "
    "WHERE metrics.id = u.id AND metrics.count = u.old"
)


def _json_texts(values: list) -> list[str]:
    """Each value as JSON text (NaN and infinities included); plain numbers all at once."""
    if all(type(value) in _NUMBER_TYPES for value in values):
        text = json.dumps([value.item() for value in values], allow_nan=True)[1:-1]
        return text.split(", ") if values else []
    return [codec.encode_json_value(value) for value in values]


_NUMBER_TYPES = (np.float64, np.int64)


def require_open_runs(connection: Connection, batches: list[MetricBatch]) -> None:
    """Refuse points for a run that does not exist, or that were logged after their run ended
    (whatever handle logged them). Points logged before the end and arriving later (a spool
    replayed once the server is back, a run ended by a reader who found its process gone)
    are kept: their wall times say when they were logged."""
    ended: dict[str, tuple[str, float | None]] = {}
    found: set[str] = set()
    for chunk in _chunked(sorted({batch.run_id for batch in batches})):
        query = sa.select(runs.c.id, runs.c.status, runs.c.end_time).where(runs.c.id.in_(chunk))
        for row in connection.execute(query):
            found.add(row.id)
            if row.status in RunStatus.TERMINAL:
                ended[row.id] = (row.status, row.end_time)
    for batch in batches:
        if batch.run_id not in found:
            raise NotFoundError(f"No run with id {batch.run_id!r}: its metrics cannot be stored.")
        if batch.run_id in ended:
            status, end_time = ended[batch.run_id]
            if end_time is None or float(np.max(batch.times)) > end_time:
                raise RunFinishedError(
                    f"Run {batch.run_id} has ended ({status}); it takes no metrics logged after that: "
                    f"log them into a new run."
                )


def _chunked(items: list[str]) -> Iterator[list[str]]:
    for at in range(0, len(items), NAMES_PER_QUERY):
        yield items[at : at + NAMES_PER_QUERY]


def _series_of(
    connection: Connection, batches: list[MetricBatch], cache: SeriesCache | None
) -> dict[tuple[str, str], list]:
    """Each batch's series as ``{(run_id, name): [id, kind, count, source]}`` (fresh lists: the cache
    is updated only once the write is done), from the cache or read under lock, creating new ones."""
    series: dict[tuple[str, str], list] = {}
    missing: list[MetricBatch] = []
    first: dict[tuple[str, str], MetricBatch] = {}
    for batch in batches:
        key = (batch.run_id, batch.name)
        if key in series:
            _require_alike(first[key], batch)  # two batches of one series in one call
            continue
        first[key] = batch
        entry = cache.get(key) if cache is not None else None
        if entry is None:
            missing.append(batch)
            series[key] = []
        elif entry[1] != batch.kind:
            raise _kind_error(batch.run_id, batch.name, entry[1], batch.kind)
        elif entry[3] != batch.source:
            raise _source_error(batch.run_id, batch.name, entry[3], batch.source)
        else:
            series[key] = list(entry)
    if missing:
        series.update(open_series(connection, missing))
    return series


def _require_alike(earlier: MetricBatch, later: MetricBatch) -> None:
    if later.kind != earlier.kind:
        raise _kind_error(later.run_id, later.name, earlier.kind, later.kind)
    if later.source != earlier.source:
        raise _source_error(later.run_id, later.name, earlier.source, later.source)


def _kind_error(run_id: str, name: str, stored: str, logged_as: str) -> MetricValueError:
    return MetricValueError(
        f"Metric {name!r} of run {run_id} is a {stored} metric; it cannot also take {logged_as} points. Use another name."
    )


def _source_error(run_id: str, name: str, stored: str, logged_from: str) -> MetricValueError:
    return MetricValueError(
        f"Metric {name!r} of run {run_id} came from {_source_name(stored)}; it cannot also take points from "
        f"{_source_name(logged_from)}. Use another name."
    )


def _source_name(source: str) -> str:
    return "the run's TensorBoard event files" if source == MetricSource.EVENT_FILES else "the SDK (run.log)"


def open_series(connection: Connection, batches: list[MetricBatch]) -> dict[tuple[str, str], list]:
    """Each batch's series as ``{(run_id, name): [id, kind, count, source]}``, read ``FOR UPDATE``, creating new ones.

    The rows are read in id order, so that writers never wait on each other in a circle. A
    series created concurrently elsewhere is a unique violation; the store then runs the whole
    transaction again and finds it.
    """
    wanted: dict[str, dict[str, MetricBatch]] = {}
    for batch in batches:
        wanted.setdefault(batch.run_id, {}).setdefault(batch.name, batch)
    found: dict[tuple[str, str], list] = {}

    def read(run_id: str, names: list[str]) -> None:
        for chunk in _chunked(names):
            query = (
                sa.select(metrics.c.id, metrics.c.name, metrics.c.count, metrics.c.kind, metrics.c.source)
                .where(metrics.c.run_id == run_id, metrics.c.name.in_(chunk))
                .order_by(metrics.c.id)
                .with_for_update()
            )
            for row in connection.execute(query):
                logged = wanted[run_id][row.name]
                if row.kind != logged.kind:
                    raise _kind_error(run_id, row.name, row.kind, logged.kind)
                if row.source != logged.source:
                    raise _source_error(run_id, row.name, row.source, logged.source)
                found[(run_id, row.name)] = [row.id, row.kind, row.count, row.source]

    for run_id in sorted(wanted):
        read(run_id, sorted(wanted[run_id]))
        new = [batch for name, batch in wanted[run_id].items() if (run_id, name) not in found]
        if new:
            connection.execute(
                sa.insert(metrics),
                [
                    {
                        "run_id": run_id,
                        "name": b.name,
                        "kind": b.kind,
                        "description": b.description,
                        "count": 0,
                        "source": b.source,
                    }
                    for b in new
                ],
            )
            read(run_id, sorted(b.name for b in new))
    return found
