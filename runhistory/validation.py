"""The rules for every name and value the run history keeps: one place, one sentence each.

The stores call these at their edge (:class:`~runhistory.store.sql.store.SqlRunStore` for
every caller: the SDK, the server's routes, a spool replayed, a direct client), so that the
same input gets the same answer whoever sends it. The SDK calls a few of them earlier, where
it can say so at once (``run.log`` of a point that could never be stored).

Limits (documented in the README):

- names (experiments, runs' display names, metrics, table columns, tags, properties): 1 to
  255 characters, no control characters, valid Unicode (no lone surrogate: UTF-8-encodable);
  experiment and compute-target names also only letters, digits, ``_ . -``;
- metric values: int within int64 (a larger int is refused: log it as a float), any float
  (NaN and infinities are kept as they are), a string of at most 1 MiB in UTF-8; steps: ints
  within int64; wall times: finite, from 0 (1970) to the end of year 9999;
- tag and property values, metric descriptions: strings without NUL, at most 64 KiB;
- error details of a run: a JSON object with a string ``message``, at most 1 MiB as JSON;
  compute-target configurations: a JSON object, at most 64 KiB as JSON.
"""

from __future__ import annotations

import dataclasses
import json
import numbers
import re
from typing import Any, Mapping, Sequence

import numpy as np

from runhistory.errors import InvalidNameError, JobConfigError, MetricValueError, RunHistoryError
from runhistory.store.base import MetricBatch, MetricKind, RunStatus

MAX_NAME_LENGTH = 255
MAX_STRING_VALUE_BYTES = 1 << 20  # one string metric value; far below the server's 64 MiB request limit
MAX_TEXT_LENGTH = 64 << 10  # a tag or property value, a metric description (characters)
MAX_ERROR_BYTES = 1 << 20  # a run's error details, as JSON
MAX_CONFIG_BYTES = 64 << 10  # a compute target's configuration, as JSON
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_WALL_TIME = 253402300799.0  # 9999-12-31T23:59:59Z: past it, dates cannot be printed
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_PLAIN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,254}$")
_RUN_TYPE = re.compile(r"^[A-Za-z][A-Za-z0-9_.\-]{0,31}$")
_TARGET_KIND = re.compile(r"^[A-Za-z][A-Za-z0-9_.\-]{0,31}$")


# --- names ---


def validate_name(name: Any, what: str, where: str) -> str:
    """A metric, tag, property or display name: 1 to 255 printable characters, valid Unicode."""
    if not isinstance(name, str):
        raise InvalidNameError(f"The {what} name of {where} must be a string, got {type(name).__name__} {name!r}.")
    if not name:
        raise InvalidNameError(f"The {what} name of {where} is empty; give it a name.")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidNameError(
            f"The {what} name {name[:40]!r}... of {where} has {len(name)} characters; the limit is {MAX_NAME_LENGTH}."
        )
    if _CONTROL.search(name):
        raise InvalidNameError(f"The {what} name {name!r} of {where} contains control characters; remove them.")
    if not _encodable(name):
        raise InvalidNameError(
            f"The {what} name {name!r} of {where} is not valid Unicode (it holds a lone surrogate); "
            f"decode the text it came from properly."
        )
    return name


def validate_experiment_name(name: Any) -> str:
    """Letters, digits, ``_ . -``, starting with a letter or digit, at most 255 characters."""
    return _plain_name(name, "Experiment")


def validate_target_name(name: Any) -> str:
    """A compute target's name: the same rule as an experiment's."""
    return _plain_name(name, "Compute target")


def _plain_name(name: Any, what: str) -> str:
    if not isinstance(name, str) or not _PLAIN_NAME.match(name):
        raise InvalidNameError(
            f"{what} name {name!r} is not valid: use 1 to 255 letters, digits, '_', '.' or '-', "
            f"starting with a letter or digit."
        )
    return name


# The kinds of compute target this runhistory can run jobs on: a stored target of another kind
# would break every reader of the workspace's targets, so the store takes no other.
COMPUTE_TARGET_KINDS = ("local",)


def validate_target_kind(kind: Any, name: str) -> str:
    """A compute target's kind: one of :data:`COMPUTE_TARGET_KINDS`."""
    if not isinstance(kind, str) or not _TARGET_KIND.match(kind):
        raise InvalidNameError(
            f"The kind {kind!r} of compute target {name!r} is not valid: use 1 to 32 letters, digits, "
            f"'_', '.' or '-', starting with a letter."
        )
    if kind not in COMPUTE_TARGET_KINDS:
        raise InvalidNameError(
            f"Compute target {name!r} has the kind {kind!r}, which this runhistory cannot run jobs on; "
            f"use one of {', '.join(COMPUTE_TARGET_KINDS)}."
        )
    return kind


def validate_run_type(run_type: Any) -> str:
    """A run's type (``interactive``, ``child``, ``job``, ...): a short identifier."""
    if not isinstance(run_type, str) or not _RUN_TYPE.match(run_type):
        raise InvalidNameError(
            f"Run type {run_type!r} is not valid: use 1 to 32 letters, digits, '_', '.' or '-', starting with a letter."
        )
    return run_type


def validate_run_id(run_id: Any, what: str = "run id") -> str:
    """A run id as given to a store: a non-empty printable string of at most 512 characters."""
    if not isinstance(run_id, str) or not run_id or len(run_id) > 512 or _CONTROL.search(run_id) or not _encodable(run_id):
        raise InvalidNameError(f"{what.capitalize()} {run_id!r:.80} is not valid: no run has such an id.")
    return run_id


# --- runs ---


def validate_status(status: Any) -> str:
    """One of :attr:`RunStatus.ALL`."""
    if not isinstance(status, str) or status not in RunStatus.ALL:
        raise RunHistoryError(f"Unknown run status {status!r:.80}; use one of {', '.join(RunStatus.ALL)}.")
    return status


def validate_wall_time(at: Any, what: str) -> float:
    """A time in seconds since the epoch: finite, from 1970 to the end of year 9999."""
    if not _is_wall_time(at):
        raise MetricValueError(
            f"The {what} {at!r:.80} is not a valid time: give seconds since 1970 (time.time()), "
            f"up to the year 9999."
        )
    return float(at)


def validate_error(error: Any, run_id: str) -> dict[str, Any] | None:
    """A run's error details: None, or a JSON object with a string ``message`` (at most 1 MiB as JSON)."""
    if error is None:
        return None
    if not isinstance(error, Mapping) or not isinstance(error.get("message"), str):
        raise MetricValueError(
            f"The error details of run {run_id} must be a JSON object with a string 'message', got {_short(error)}."
        )
    size = _json_size(error, f"The error details of run {run_id}")
    if size > MAX_ERROR_BYTES:
        raise MetricValueError(
            f"The error details of run {run_id} take {size} bytes as JSON; the limit is {MAX_ERROR_BYTES}: shorten them."
        )
    return dict(error)


def validate_target_config(config: Any, name: str) -> str:
    """A compute target's configuration as the JSON text stored: an object of at most 64 KiB."""
    if not isinstance(config, Mapping):
        raise JobConfigError(f"The configuration of compute target {name!r} must be a JSON object, got {_short(config)}.")
    try:
        text = json.dumps(dict(config), sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise JobConfigError(f"The configuration of compute target {name!r} is not JSON: {exc}.") from None
    if len(text.encode("utf-8", "surrogatepass")) > MAX_CONFIG_BYTES:
        raise JobConfigError(
            f"The configuration of compute target {name!r} takes {len(text)} bytes as JSON; the limit is {MAX_CONFIG_BYTES}."
        )
    return text


# --- tags, properties, descriptions ---


def validate_text_value(key: str, text: Any, what: str, where: str) -> str:
    """A tag or property value as stored: a string without NUL, valid Unicode, at most 64 KiB characters."""
    if not isinstance(text, str):
        raise MetricValueError(f"The value of {what} {key!r} of {where} must be a string, got {type(text).__name__}.")
    if "\x00" in text:
        raise MetricValueError(f"The value of {what} {key!r} of {where} contains a NUL character (\\x00); remove it.")
    if len(text) > MAX_TEXT_LENGTH:
        raise MetricValueError(
            f"The value of {what} {key!r} of {where} has {len(text)} characters; the limit is {MAX_TEXT_LENGTH}."
        )
    if not _encodable(text):
        raise MetricValueError(
            f"The value of {what} {key!r} of {where} is not valid Unicode (it holds a lone surrogate); "
            f"decode the text it came from properly."
        )
    return text


def validate_key_values(items: Any, what: str, where: str, allow_none: bool = False) -> dict[str, str | None]:
    """Tags or properties as stored: valid names mapped to valid text values (None only for tags)."""
    if not isinstance(items, Mapping):
        raise MetricValueError(f"The {what}s of {where} must be a mapping of names to strings, got {_short(items)}.")
    checked: dict[str, str | None] = {}
    for key, value in items.items():
        validate_name(key, what, where)
        checked[key] = None if value is None and allow_none else validate_text_value(key, value, what, where)
    return checked


# --- metric values (the SDK's call-time checks) ---


def coerce_value(name: str, value: Any, where: str) -> int | float | str:
    """A metric value as int, float or str, refused when no store could keep it."""
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, int):
        return check_int(name, int(value), where)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return check_string_value(name, value, where)
    if isinstance(value, np.generic) and isinstance(value.item(), (int, float)):
        return coerce_value(name, value.item(), where)
    if isinstance(value, numbers.Real):
        return float(value)
    hint = ""
    if isinstance(value, (list, tuple, np.ndarray)):
        hint = " To log a list of values, use run.log_list(name, values)."
    elif isinstance(value, dict):
        hint = " To log several columns, use run.log_row(name, **columns) or run.log_table(name, table)."
    raise MetricValueError(
        f"Metric {name!r} of {where}: a value must be a number or a string, got {type(value).__name__}.{hint}"
    )


def check_int(name: str, value: int, where: str) -> int:
    """An int metric value within int64 (what every database and TensorBoard keep exactly)."""
    if not INT64_MIN <= value <= INT64_MAX:
        raise MetricValueError(
            f"Metric {name!r} of {where}: the integer {value} is outside the 64-bit range that can be stored; "
            f"log it as a float (float(value))."
        )
    return value


def check_string_value(name: str, value: str, where: str) -> str:
    """A string metric value: valid Unicode and at most 1 MiB in UTF-8."""
    try:
        size = len(value.encode("utf-8")) if len(value) * 4 > MAX_STRING_VALUE_BYTES or not value.isascii() else len(value)
    except UnicodeEncodeError:
        raise MetricValueError(
            f"Metric {name!r} of {where}: the string value is not valid Unicode (it holds a lone surrogate); "
            f"decode the text it came from properly."
        ) from None
    if size > MAX_STRING_VALUE_BYTES:
        raise MetricValueError(
            f"Metric {name!r} of {where}: the string value takes {size} bytes; the limit is "
            f"{MAX_STRING_VALUE_BYTES} (1 MiB): upload long text as a file (run.upload_file)."
        )
    return value


def coerce_step(name: str, step: Any, where: str) -> int:
    """A step as a Python int within int64."""
    if isinstance(step, (int, np.integer)) and not isinstance(step, (bool, np.bool_)):
        step = int(step)
        if INT64_MIN <= step <= INT64_MAX:
            return step
        raise MetricValueError(f"Metric {name!r} of {where}: step {step} is outside the 64-bit integer range.")
    raise MetricValueError(f"Metric {name!r} of {where}: step must be an integer, got {type(step).__name__} {step!r:.80}.")


# --- metric batches (the store's check of everything it is asked to append) ---


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
        raise MetricValueError(f"Table metric {name!r} of {where}: a row must be a mapping of columns to values, got {_short(value)}.")
    for column, cell in value.items():
        validate_name(column, f"column of metric {name!r},", where)
        _scalar_cell(cell, f"{name}.{column}", where)


def _image_cell(value: Any, name: str, where: str) -> None:
    if not isinstance(value, str) or not value or len(value) > 1024 or not _encodable(value):
        raise MetricValueError(f"Image metric {name!r} of {where}: a point must name one of the run's files, got {_short(value)}.")


_CELL_CHECKS = {
    MetricKind.SCALAR: _scalar_cell,
    MetricKind.LIST: _scalar_cell,
    MetricKind.TABLE: _row_cell,
    MetricKind.IMAGE: _image_cell,
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
        bad = next((t for t in times if not _is_wall_time(t)), times[0] if len(times) else None)
        raise MetricValueError(
            f"Metric {name!r} of {where}: wall time {bad!r:.80} is not valid; give seconds since 1970 "
            f"(time.time()), up to the year 9999."
        )
    return array


def _is_wall_time(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return False
    try:
        return 0 <= float(value) <= MAX_WALL_TIME
    except OverflowError:  # an int past float's range
        return False


# --- helpers ---


def is_storable_text(text: Any) -> bool:
    """Whether ``text`` is a string a database can be asked about (valid Unicode)."""
    return isinstance(text, str) and _encodable(text)


def _encodable(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _json_size(value: Any, what: str) -> int:
    try:
        return len(json.dumps(value, allow_nan=True))
    except (TypeError, ValueError) as exc:
        raise MetricValueError(f"{what} cannot be stored as JSON: {exc}.") from None


def _short(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:60]}{'...' if len(text) > 60 else ''}"
