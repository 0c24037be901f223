"""What a correct read of a metric series is, for tests that race readers with writers and compaction.

Writers of these tests encode who wrote a point and when into its value: in a writer's own series
the value is the point's sequence number; in the series all writers share it is
``writer * STRIDE + seq``. A read is then checkable on its own: every writer's points appear once,
in order, without a gap, and every series' steps are its indexes 0..n-1.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from runhistory.store.base import MetricSeries

STRIDE = 1_000_000  # shared value = writer * STRIDE + seq
SHARED = "shared"


def own_series(writer: int) -> str:
    """The name of the series only ``writer`` appends to."""
    return f"own/{writer}"


def shared_value(writer: int, seq: int) -> int:
    """The value ``writer`` appends to the shared series as its point number ``seq``."""
    return writer * STRIDE + seq


def point_time(writer: int, seq: int) -> float:
    """The wall time of a writer's point: distinct per point, so times are checked too."""
    return 1.7e9 + writer * 10_000.0 + seq * 0.001


def typed(values: list[Any]) -> list[tuple[str, str]]:
    """Values as (type name, repr): 1 and 1.0, NaN and -0.0 compare as what they are."""
    return [(type(value).__name__, repr(value)) for value in values]


def read_problems(series: Mapping[str, MetricSeries], writers: int) -> list[str]:
    """What is wrong with one read of every series (empty when it is a consistent prefix).

    Each writer appends a point to its own series and one to the shared series in one call, so
    a read must show both of that call's points or neither.
    """
    problems = [
        f"{name}: steps are not 0..{len(one.values) - 1}: {_first_gap(one.steps)}"
        for name, one in series.items()
        if one.steps.tolist() != list(range(len(one.values)))
    ]
    shared = series.get(SHARED)
    seqs_in_shared = _seqs_by_writer(shared, problems) if shared is not None else {}
    for writer in range(writers):
        own = series.get(own_series(writer))
        if own is not None:
            problems += _own_problems(own, writer, seqs_in_shared.get(writer, []) if shared is not None else None)
    return problems


def _seqs_by_writer(shared: MetricSeries, problems: list[str]) -> dict[int, list[int]]:
    """Each writer's sequence numbers in the shared series, in the order read (problems added)."""
    seqs: dict[int, list[int]] = {}
    for value, when in zip(shared.values, shared.times.tolist()):
        writer, seq = divmod(value, STRIDE)
        seqs.setdefault(writer, []).append(seq)
        if when != point_time(writer, seq):
            problems.append(f"{SHARED}: point {seq} of writer {writer} has the wall time {when!r}")
    for writer, numbers in seqs.items():
        if numbers != list(range(len(numbers))):
            problems.append(f"{SHARED}: writer {writer}'s points are not once and in order: {_first_gap(numbers)}")
    return seqs


def _own_problems(own: MetricSeries, writer: int, seqs_in_shared: list[int] | None) -> list[str]:
    problems = []
    if own.values != list(range(len(own.values))):
        problems.append(f"{own.name}: values are not 0..n-1 once and in order: {_first_gap(own.values)}")
    if seqs_in_shared is not None and len(seqs_in_shared) != len(own.values):
        problems.append(
            f"half a call read: {own.name} has {len(own.values)} points, {SHARED} {len(seqs_in_shared)} of writer {writer}"
        )
    if own.times.tolist() != [point_time(writer, seq) for seq in range(len(own.values))]:
        problems.append(f"{own.name}: wall times differ from the ones written")
    return problems


def growth_problems(before: Mapping[str, MetricSeries], after: Mapping[str, MetricSeries]) -> list[str]:
    """What is wrong between two reads one after the other (a series never shrinks or changes its past)."""
    problems = []
    for name, old in before.items():
        new = after.get(name)
        if new is None:
            problems.append(f"{name}: read before, gone now")
        elif new.values[: len(old.values)] != old.values:
            problems.append(f"{name}: {len(old.values)} points read before, now {len(new.values)} with another past")
    return problems


def _first_gap(sequence) -> str:
    items = sequence.tolist() if isinstance(sequence, np.ndarray) else list(sequence)
    for index, item in enumerate(items):
        if item != index:
            return f"at index {index}: {items[max(0, index - 2) : index + 3]}"
    return f"{len(items)} items"


@dataclass
class ExpectedSeries:
    """The points a test appended to one series, to compare a read with exactly."""

    kind: str = "scalar"
    values: list[Any] = field(default_factory=list)
    steps: list[int] = field(default_factory=list)
    times: list[float] = field(default_factory=list)

    def add(self, values: list[Any], times: list[float], steps: list[int | None] | None = None) -> None:
        """Record points as appended (a step of None is the point's index)."""
        first = len(self.values)
        steps = steps if steps is not None else [None] * len(values)
        self.steps.extend(first + i if step is None else step for i, step in enumerate(steps))
        self.values.extend(values)
        self.times.extend(times)


def series_problems(name: str, read: MetricSeries | None, expected: ExpectedSeries, start: int = 0) -> list[str]:
    """What differs between a series as read (from point ``start`` on) and as it was appended."""
    if read is None:
        return [f"{name}: missing"]
    problems = []
    if read.kind != expected.kind:
        problems.append(f"{name}: kind {read.kind}, appended as {expected.kind}")
    values, steps, times = expected.values[start:], expected.steps[start:], expected.times[start:]
    if typed(read.values) != typed(values):
        counts = f"{len(read.values)} read, {len(values)} appended"
        problems.append(f"{name}: values differ ({counts}){_diff(read.values, values)}")
    if read.steps.dtype != np.int64 or read.steps.tolist() != steps:
        problems.append(f"{name}: steps differ ({read.steps.dtype}){_diff(read.steps.tolist(), steps)}")
    if read.times.dtype != np.float64 or read.times.tobytes() != np.asarray(times, np.float64).tobytes():
        problems.append(f"{name}: wall times differ{_diff(read.times.tolist(), times)}")
    return problems


def _diff(got: list[Any], want: list[Any]) -> str:
    for index, (a, b) in enumerate(zip(got, want)):
        if (type(a), repr(a)) != (type(b), repr(b)):
            return f"; first at {index}: {a!r} instead of {b!r}"
    if len(got) != len(want):
        alike = min(len(got), len(want))
        return f"; past the {alike} alike: {got[alike:][:3]!r} read, {want[alike:][:3]!r} appended"
    return ""
