"""The runs table's columns: their keys, how the store filters and sorts by them, their cells.

A column key is ``attributes.NAME``, ``tags.NAME``, ``properties.NAME`` or
``metrics.NAME.last|min|max`` (a metric name may hold dots: the statistic is the last part).
The store's filter language spells the same keys, with odd names in backquotes
(:func:`store_key`).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from runhistory.core import errors
from runhistory.store.base import RunRecord

if TYPE_CHECKING:
    from runhistory.store.base import RunKeys

ATTRIBUTES = (
    "status",
    "display_name",
    "created_time",
    "start_time",
    "end_time",
    "duration",
    "number",
    "run_type",
    "target",
    "id",
)
DEFAULT_ATTRIBUTES = ("status", "display_name", "created_time", "duration")
STATS = ("last", "min", "max")
MAX_DEFAULT_COLUMNS = 12
MAX_COLUMNS = 100
_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TIMES = ("created_time", "start_time", "end_time")


@dataclass(frozen=True)
class Column:
    """One column: ``group`` (attributes, metrics, tags, properties), the ``name`` in it and, for a
    metric, the statistic (``last``, ``min``, ``max``)."""

    group: str
    name: str
    stat: str = ""

    @property
    def key(self) -> str:
        """The column's key in URLs and ``data-key`` attributes."""
        return f"{self.group}.{self.name}" + (f".{self.stat}" if self.stat else "")

    @property
    def label(self) -> str:
        """The header text."""
        if self.group == "attributes":
            return self.name.replace("_", " ")
        return f"{self.name} ({self.stat})" if self.stat else self.name

    @property
    def numeric(self) -> bool:
        """Whether the cells are numbers (right-aligned)."""
        return self.group == "metrics" or self.name in ("duration", "number")


def parse_column(key: str) -> Column:
    """The column of a key; :class:`InvalidRequestError` naming the key when it is not one."""
    group, _, rest = key.strip().partition(".")
    if group == "params":
        group = "properties"
    if group == "attributes" and rest in ATTRIBUTES:
        return Column(group, rest)
    if group in ("tags", "properties") and rest:
        return Column(group, rest)
    if group == "metrics":
        name, _, stat = rest.rpartition(".")
        if name and stat in STATS:
            return Column(group, name, stat)
        if rest:
            return Column(group, rest, "last")
    raise errors.InvalidRequestError(
        f"{key[:100]!r} is not a column: give attributes.NAME, tags.NAME, properties.NAME or metrics.NAME.last|min|max."
    )


def parse_columns(text: str) -> tuple[Column, ...]:
    """Columns from a comma-separated list of keys (at most :data:`MAX_COLUMNS`)."""
    keys = [key for key in text.split(",") if key.strip()]
    if len(keys) > MAX_COLUMNS:
        raise errors.InvalidRequestError(f"At most {MAX_COLUMNS} columns can be shown, not {len(keys)}.")
    return tuple(dict.fromkeys(parse_column(key) for key in keys))


def quoted(name: str) -> str:
    """A name as the filter language takes it: bare when plain, else in backquotes."""
    return name if _PLAIN_NAME.fullmatch(name) else "`" + name.replace("`", "") + "`"


def store_key(column: Column) -> str:
    """The key of the store's filter language for a column (``metrics.`val/loss`.max``)."""
    if column.group == "attributes":
        return column.key
    return f"{column.group}.{quoted(column.name)}" + (f".{column.stat}" if column.stat else "")


def default_columns(keys: RunKeys) -> tuple[Column, ...]:
    """Status, display name, created, duration, then each metric's last, then properties (at most
    :data:`MAX_DEFAULT_COLUMNS`)."""
    columns = [Column("attributes", name) for name in DEFAULT_ATTRIBUTES]
    columns += [Column("metrics", name, "last") for name in keys.metrics]
    columns += [Column("properties", name) for name in keys.properties]
    return tuple(columns[:MAX_DEFAULT_COLUMNS])


def choices(keys: RunKeys) -> list[Column]:
    """Every column the picker offers for an experiment with these keys."""
    found = [Column("attributes", name) for name in ATTRIBUTES]
    found += [Column("metrics", name, stat) for name in keys.metrics for stat in STATS]
    found += [Column("tags", name) for name in keys.tags]
    found += [Column("properties", name) for name in keys.properties]
    return found


def attribute_of(run: RunRecord, name: str) -> Any:
    """An attribute of a run as a cell shows it (the duration up to now while it runs)."""
    if name == "duration":
        if run.start_time is None:
            return None
        return (run.end_time or time.time()) - run.start_time
    return getattr(run, name)


def cell(column: Column, run: RunRecord, tags: Mapping[str, Any], properties: Mapping[str, Any], stats: Mapping[str, Any]) -> Any:
    """The raw value of one cell (None when the run has none)."""
    if column.group == "attributes":
        return attribute_of(run, column.name)
    if column.group == "tags":
        return tags.get(column.name)
    if column.group == "properties":
        return properties.get(column.name)
    found = stats.get(column.name)
    return None if found is None else getattr(found, column.stat)


def is_time(column: Column) -> bool:
    """Whether a column holds epoch times."""
    return column.group == "attributes" and column.name in _TIMES


def order_keys(order: Sequence[str]) -> tuple[str, ...]:
    """``("metrics.mse.last asc", ...)`` in column keys as the store's order keys."""
    found = []
    for item in order:
        key, _, direction = item.strip().rpartition(" ")
        if not key:
            key, direction = direction, "asc"
        if direction.lower() not in ("asc", "desc"):
            raise errors.InvalidRequestError(f"Sort {item[:100]!r} by asc or desc, as in 'metrics.mse.last asc'.")
        found.append(f"{store_key(parse_column(key))} {direction.lower()}")
    return tuple(found)
