"""Metric values as the stores keep them: ints within int64, floats, strings up to 1 MiB.

The SDK coerces a value when it is logged (numpy scalars become Python numbers) and the
stores check every value at their edge with the same sentences. Apart from
:mod:`runhistory.core.validation` (names and texts, no numpy) so that what needs only names,
such as a job's supervisor, never imports numpy.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from runhistory.core.errors import MetricValueError
from runhistory.core.validation import INT64_MAX, INT64_MIN, MAX_STRING_VALUE_BYTES


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
