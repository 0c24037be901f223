"""The series of many runs in one answer (``POST /api/v1/metrics/of-runs``), and reading them in
parts of bounded size.

A message is ``MAGIC | u32 header length | header (JSON) | the runs' messages``. The header is
``{"runs": [[run id, bytes], ...], "unread": n}``: each run's series are encoded as a metrics read
of one run encodes them (:func:`runhistory.protocol.wire.encode_series`), one after the other in
the header's order; ``unread`` is how many of the runs asked for, the last ones, the answer
leaves for another request (it holds about ``POINTS_PER_ANSWER`` points at most).
"""

from __future__ import annotations

import json
import struct
from typing import Callable, Iterator, Sequence

from runhistory.protocol.wire import WireError, decode_series, encode_series
from runhistory.store.base import MetricSeries

MAGIC = b"RHM1"
MEDIA_TYPE = "application/x-runhistory-runs-points"
POINTS_PER_ANSWER = 1_000_000  # about 16 MB of numbers: a server answers the rest in the next request

SeriesOfRuns = dict[str, dict[str, MetricSeries]]


def encode_series_of_runs(series_of: SeriesOfRuns, unread: int = 0) -> bytes:
    """``{run_id: {name: series}}`` as one message, every series from its first point on."""
    messages = [encode_series(series, {}) for series in series_of.values()]
    runs = [[run_id, len(message)] for run_id, message in zip(series_of, messages)]
    header = json.dumps({"runs": runs, "unread": unread}).encode()
    return b"".join([MAGIC, struct.pack("<I", len(header)), header, *messages])


def decode_series_of_runs(message: bytes) -> tuple[SeriesOfRuns, int]:
    """The inverse of :func:`encode_series_of_runs`: the series and how many runs are unread;
    :class:`WireError` for what it did not write."""
    if len(message) < 8 or message[:4] != MAGIC:
        raise WireError("not a runhistory message of the series of runs (bad magic)")
    (length,) = struct.unpack("<I", message[4:8])
    try:
        header = json.loads(message[8 : 8 + length])
        runs = [(str(run_id), int(size)) for run_id, size in header["runs"]]
        unread = int(header["unread"])
    except (ValueError, TypeError, KeyError) as exc:
        raise WireError(f"bad header of the series of runs: {exc}") from None
    found: SeriesOfRuns = {}
    at = 8 + length
    for run_id, size in runs:
        found[run_id] = decode_series(message[at : at + size])
        at += size
    if at != len(message):
        raise WireError("the series of runs are shorter or longer than their header says")
    return found, unread


def points_of(series_of: SeriesOfRuns) -> int:
    """How many points the series of these runs hold."""
    return sum(len(one.values) for series in series_of.values() for one in series.values())


def read_in_parts(
    read: Callable[[list[str]], SeriesOfRuns], run_ids: Sequence[str], points: int, most_runs: int
) -> Iterator[tuple[int, SeriesOfRuns]]:
    """``(runs asked, their series)`` of consecutive parts of ``run_ids``, each read with ``read``:
    the first part is one run, each next one as many runs (up to ``most_runs``) as hold about
    ``points`` points going by the runs read so far, so that memory stays bounded."""
    size, first, read_runs, read_points = 1, 0, 0, 0
    while first < len(run_ids):
        part = list(run_ids[first : first + size])
        found = read(part)
        first += len(part)
        read_runs, read_points = read_runs + len(part), read_points + points_of(found)
        yield len(part), found
        size = max(1, min(most_runs, points * read_runs // max(1, read_points)))
