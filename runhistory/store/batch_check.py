"""The store's check of every metric batch it is asked to append: numeric parts vectorised.

The rules for single names and values are :mod:`runhistory.core.validation`; this module applies
them to a :class:`~runhistory.store.base.MetricBatch`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from runhistory.core.errors import MetricValueError
from runhistory.core.metric_values import check_int, check_string_value, coerce_step
from runhistory.core.validation import (
    MAX_WALL_TIME,
    is_encodable,
    is_wall_time,
    short_repr,
    validate_name,
    validate_run_id,
    validate_text_value,
)
from runhistory.store.base import MetricBatch, MetricKind, MetricSource


# --- metric batches (the store's check of everything it is asked to append) ---


def check_metric_batches(batches: Iterable[Any], known: set) -> list[MetricBatch]:
    """:func:`check_metric_batch` of each batch, cheaper for what a flush sends: batches of a series
    whose names were checked before (``known`` holds ``(run_id, name, kind, description, source)`` of those,
    and gets the new ones) with numpy values and times and no steps (or int64 ones) need only their
    numbers checked, and the wall times of all of them are checked at once."""
    checked: list[MetricBatch] = []
    fast_times: list[np.ndarray] = []
    for batch in batches:
        if type(batch) is MetricBatch and _is_packed(batch.values, batch.steps, batch.times) and (
            (batch.run_id, batch.name, batch.kind, batch.description, batch.source) in known
        ):
            checked.append(batch)
            fast_times.append(batch.times)
            continue
        batch = check_metric_batch(batch)
        if len(known) > _KNOWN_LIMIT:
            known.clear()
        known.add((batch.run_id, batch.name, batch.kind, batch.description, batch.source))
        checked.append(batch)
    if fast_times:
        times = np.concatenate(fast_times)
        if times.size and not 0.0 <= times.min() <= times.max() <= MAX_WALL_TIME:  # NaN fails too
            for batch in checked:
                _checked_times(batch.times, batch.name, f"run {batch.run_id}")
    return checked


def _is_packed(values: Any, steps: Any, times: Any) -> bool:
    """Numbers as a 1-D int64/float64 array, float64 times of the same length, steps an int64
    array or all None: parts the store takes as they are (the series' kind is in ``known``)."""
    if type(values) is not np.ndarray or type(times) is not np.ndarray or times.dtype is not _F8:
        return False
    if (values.dtype is not _F8 and values.dtype is not _I8) or values.ndim != 1:
        return False
    count = len(values)
    if len(times) != count or len(steps) != count:
        return False
    if type(steps) is np.ndarray:
        return steps.dtype is _I8 and steps.ndim == 1
    return steps.count(None) == count if type(steps) is list else False


_F8, _I8 = np.dtype(np.float64), np.dtype(np.int64)
_KNOWN_LIMIT = 1_000_000


def check_metric_batch(batch: Any) -> MetricBatch:
    """A batch the store can keep, as numpy arrays where its parts are numeric; else one sentence.

    Numeric parts are checked vectorised (numpy), so that a million points cost milliseconds;
    strings, rows and mixed values are checked one by one. The returned batch holds
    ``values`` as an int64 or float64 array when they are all numbers, ``steps`` as an int64
    array when every point has one, and ``times`` as a float64 array.
    """
    if not isinstance(batch, MetricBatch):
        raise MetricValueError(f"A metric batch must be a MetricBatch, got {type(batch).__name__}.")
    run_id = validate_run_id(batch.run_id)
    where = f"run {run_id}"
    name = validate_name(batch.name, "metric", where)
    if batch.kind not in MetricKind.ALL:
        raise MetricValueError(
            f"Metric {name!r} of {where}: unknown kind {batch.kind!r:.40}; use one of {', '.join(MetricKind.ALL)}."
        )
    if batch.source not in MetricSource.ALL:
        raise MetricValueError(
            f"Metric {name!r} of {where}: unknown source {batch.source!r:.40}; use one of "
            f"{', '.join(repr(source) for source in MetricSource.ALL)}."
        )
    description = batch.description or ""
    validate_text_value(name, description, "the description of metric", where)
    count = len(batch.values)
    if len(batch.steps) != count or len(batch.times) != count:
        raise MetricValueError(
            f"Metric {name!r} of {where}: {count} values, {len(batch.steps)} steps and {len(batch.times)} "
            f"wall times; give one of each per point."
        )
    values = _checked_values(batch.values, batch.kind, name, where)
    steps = _checked_steps(batch.steps, name, where)
    times = _checked_times(batch.times, name, where)
    return dataclasses.replace(batch, description=description, values=values, steps=steps, times=times)


def _checked_values(values: Sequence[Any], kind: str, name: str, where: str) -> Sequence[Any]:
    if kind in (MetricKind.SCALAR, MetricKind.LIST) and not isinstance(values, np.ndarray):
        array = _numeric_array(values)
        if array is not None:
            # numpy silently makes an int past int64 a float: look for it only when some value is that large
            if array.dtype == np.float64 and array.size and not -(2.0**63) <= np.fmin.reduce(array) <= np.fmax.reduce(array) < 2.0**63:
                for value in values:
                    if type(value) is int:
                        check_int(name, value, where)
            return array
    elif isinstance(values, np.ndarray) and values.dtype in (np.int64, np.float64) and values.ndim == 1:
        return values
    check = _CELL_CHECKS[kind]
    for value in values:
        check(value, name, where)
    return values


def _numeric_array(values: Sequence[Any]) -> np.ndarray | None:
    """``values`` as an int64 or float64 array when numpy makes one exactly; else None."""
    if len(values) and type(values[0]) not in (int, float):  # strings, rows: not worth numpy's try
        return None
    try:
        array = np.asarray(values)
    except (ValueError, OverflowError, TypeError):
        return None
    if array.ndim == 1 and array.dtype in (np.int64, np.float64):
        return array
    return None


def _scalar_cell(value: Any, name: str, where: str) -> None:
    kind = type(value)
    if kind is float:
        return
    if kind is int:
        check_int(name, value, where)
    elif kind is str:
        check_string_value(name, value, where)
    elif isinstance(value, (np.floating, np.integer)) and not isinstance(value, np.bool_):
        _scalar_cell(value.item(), name, where)
    else:
        raise MetricValueError(
            f"Metric {name!r} of {where}: a value must be a number or a string, got {kind.__name__} {value!r:.80}."
        )


def _row_cell(value: Any, name: str, where: str) -> None:
    if not isinstance(value, Mapping):
        raise MetricValueError(f"Table metric {name!r} of {where}: a row must be a mapping of columns to values, got {short_repr(value)}.")
    for column, cell in value.items():
        validate_name(column, f"column of metric {name!r},", where)
        _scalar_cell(cell, f"{name}.{column}", where)


def _image_cell(value: Any, name: str, where: str) -> None:
    if not isinstance(value, str) or not value or len(value) > 1024 or not is_encodable(value):
        raise MetricValueError(f"Image metric {name!r} of {where}: a point must name one of the run's files, got {short_repr(value)}.")


def _summary_cell(value: Any, name: str, where: str) -> None:
    if not isinstance(value, str) or not value or len(value) > 255 or not is_encodable(value):
        raise MetricValueError(
            f"Summary metric {name!r} of {where}: a point must name its TensorBoard plugin (\"images\"), got {short_repr(value)}."
        )


_CELL_CHECKS = {
    MetricKind.SCALAR: _scalar_cell,
    MetricKind.LIST: _scalar_cell,
    MetricKind.TABLE: _row_cell,
    MetricKind.IMAGE: _image_cell,
    MetricKind.SUMMARY: _summary_cell,
}


def _checked_steps(steps: Sequence[Any], name: str, where: str) -> Sequence[Any]:
    if isinstance(steps, np.ndarray):
        if steps.dtype == np.int64 and steps.ndim == 1:
            return steps
        steps = steps.tolist()
    nones = list(steps).count(None) if not isinstance(steps, list) else steps.count(None)
    if nones == len(steps):
        return steps
    if nones == 0:
        try:
            array = np.asarray(steps)
        except (ValueError, OverflowError, TypeError):
            array = None
        if array is not None and array.ndim == 1 and array.dtype == np.int64:
            return array
    for step in steps:
        if step is not None:
            coerce_step(name, step, where)
    return steps


def _checked_times(times: Sequence[Any], name: str, where: str) -> np.ndarray:
    try:
        array = np.asarray(times, dtype=np.float64)
    except (ValueError, TypeError, OverflowError):
        array = None
    if array is None or array.ndim != 1 or (array.size and not 0.0 <= array.min() <= array.max() <= MAX_WALL_TIME):
        bad = next((t for t in times if not is_wall_time(t)), times[0] if len(times) else None)
        raise MetricValueError(
            f"Metric {name!r} of {where}: wall time {bad!r:.80} is not valid; give seconds since 1970 "
            f"(time.time()), up to the year 9999."
        )
    return array
