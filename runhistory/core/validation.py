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

import json
import numbers
import re
from typing import Any, Mapping

from runhistory.core.errors import InvalidNameError, JobConfigError, MetricValueError, RunHistoryError
from runhistory.core.status import RunStatus

MAX_NAME_LENGTH = 255
MAX_STRING_VALUE_BYTES = 1 << 20  # one string metric value; far below the server's 64 MiB request limit
MAX_TEXT_LENGTH = 64 << 10  # a tag or property value, a metric description (characters)
MAX_ERROR_BYTES = 1 << 20  # a run's error details, as JSON
MAX_CONFIG_BYTES = 64 << 10  # a compute target's configuration, as JSON
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_WALL_TIME = 253402300799.0  # 9999-12-31T23:59:59Z: past it, dates cannot be printed
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # C0 and DEL
_CONTROL_OR_C1 = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # file names refuse C1 too: terminals act on it
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
    if not is_encodable(name):
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
COMPUTE_TARGET_KINDS = ("local", "ray")


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
    if not isinstance(run_id, str) or not run_id or len(run_id) > 512 or _CONTROL.search(run_id) or not is_encodable(run_id):
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
    if not is_wall_time(at):
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
            f"The error details of run {run_id} must be a JSON object with a string 'message', got {short_repr(error)}."
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
        raise JobConfigError(f"The configuration of compute target {name!r} must be a JSON object, got {short_repr(config)}.")
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
    if not is_encodable(text):
        raise MetricValueError(
            f"The value of {what} {key!r} of {where} is not valid Unicode (it holds a lone surrogate); "
            f"decode the text it came from properly."
        )
    return text


def validate_key_values(items: Any, what: str, where: str, allow_none: bool = False) -> dict[str, str | None]:
    """Tags or properties as stored: valid names mapped to valid text values (None only for tags)."""
    if not isinstance(items, Mapping):
        raise MetricValueError(f"The {what}s of {where} must be a mapping of names to strings, got {short_repr(items)}.")
    checked: dict[str, str | None] = {}
    for key, value in items.items():
        validate_name(key, what, where)
        checked[key] = None if value is None and allow_none else validate_text_value(key, value, what, where)
    return checked


# --- helpers ---


def find_control_character(text: str, *, c1: bool = False) -> str | None:
    """The first control character of ``text`` (C0 or DEL; with ``c1`` also U+0080-U+009F), or None."""
    found = (_CONTROL_OR_C1 if c1 else _CONTROL).search(text)
    return found.group() if found else None


def is_wall_time(value: Any) -> bool:
    """Whether ``value`` is seconds since 1970 up to the end of year 9999."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return False
    try:
        return 0 <= float(value) <= MAX_WALL_TIME
    except OverflowError:  # an int past float's range
        return False


def is_storable_text(text: Any) -> bool:
    """Whether ``text`` is a string a database can be asked about (valid Unicode)."""
    return isinstance(text, str) and is_encodable(text)


def is_encodable(text: str) -> bool:
    """Whether ``text`` encodes as UTF-8 (no lone surrogate)."""
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


def short_repr(value: Any) -> str:
    """The type and the first 60 characters of ``repr(value)``, for a message."""
    text = repr(value)
    return f"{type(value).__name__} {text[:60]}{'...' if len(text) > 60 else ''}"
