"""The run query language (:mod:`runhistory.store.query`) compiled to SQLAlchemy, values bound only.

A condition on a metric, tag or property is an ``EXISTS`` on that table (a run lacking the key
never matches a comparison; ``not`` and ``is null`` match it); a sort key is an outer join, sorted
with the runs that lack it last in either direction. A tag or property compared with a number is
read as a number where its text is one (a regular expression decides: SQLite's REGEXP is the
Python function SQLAlchemy's pysqlite dialect registers, PostgreSQL's is ``~``).
"""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa

from runhistory.store.query import And, Compare, In, IsNull, Key, Node, Not, Or, OrderKey
from runhistory.store.sql.schema import metrics, properties, runs, tags

_NUMBER_TEXT = r"^\s*[-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?\s*$"
_METRIC_COLUMNS = {"last": "last_number", "min": "min_value", "max": "max_value", "count": "count"}
_KEY_TABLES = {"tags": tags, "properties": properties}


def filter_clause(node: Node, postgres: bool) -> sa.ColumnElement[bool]:
    """The WHERE condition on ``runs`` of a parsed filter."""
    if isinstance(node, And):
        return sa.and_(*(filter_clause(item, postgres) for item in node.items))
    if isinstance(node, Or):
        return sa.or_(*(filter_clause(item, postgres) for item in node.items))
    if isinstance(node, Not):
        return sa.not_(filter_clause(node.item, postgres))
    if node.key.section == "attributes":
        return _attribute_condition(node, postgres)
    return _keyed_condition(node, postgres)


def mentions_status(node: Node) -> bool:
    """Whether the filter reads runs' statuses (whose open runs must be brought up to date first)."""
    if isinstance(node, (And, Or)):
        return any(mentions_status(item) for item in node.items)
    if isinstance(node, Not):
        return mentions_status(node.item)
    return node.key.section == "attributes" and node.key.name == "status"


def ordered(query: sa.Select, keys: tuple[OrderKey, ...]) -> sa.Select:
    """``query`` (of runs) sorted by the keys, then newest first; one outer join per keyed sort key."""
    order: list[Any] = []
    for at, one in enumerate(keys):
        columns, join = _sort_columns(one.key, at)
        if join is not None:
            query = query.outerjoin(*join)
        order.extend((column.desc() if one.descending else column.asc()).nulls_last() for column in columns)
    return query.order_by(*order, runs.c.created_time.desc(), runs.c.number.desc(), runs.c.id.desc())


def _sort_columns(key: Key, at: int) -> tuple[list[Any], tuple | None]:
    if key.section == "attributes":
        return [_attribute(key.name)], None
    if key.section == "metrics":
        alias = metrics.alias(f"sort_{at}")
        on = sa.and_(alias.c.run_id == runs.c.id, alias.c.name == sa.bindparam(None, key.name))
        return [alias.c[_METRIC_COLUMNS[key.field or "last"]]], (alias, on)
    alias = _KEY_TABLES[key.section].alias(f"sort_{at}")
    on = sa.and_(alias.c.run_id == runs.c.id, alias.c.key == sa.bindparam(None, key.name))
    return [_as_number(alias.c.value), alias.c.value], (alias, on)


def _attribute(name: str) -> Any:
    if name == "duration":  # an open run's duration so far
        return sa.func.coalesce(runs.c.end_time, sa.bindparam(None, time.time(), type_=sa.Float)) - runs.c.start_time
    return runs.c[name]


def _attribute_condition(node: Compare | In | IsNull, postgres: bool) -> sa.ColumnElement[bool]:
    column = _attribute(node.key.name)
    if isinstance(node, IsNull):
        return column.is_not(None) if node.negated else column.is_(None)
    # A NULL column (an open run's end time) makes the comparison false, never NULL, so that `not` inverts it.
    return sa.and_(column.is_not(None), _compared(column, node, postgres))


def _keyed_condition(node: Compare | In | IsNull, postgres: bool) -> sa.ColumnElement[bool]:
    key = node.key
    if key.section == "metrics":
        table = metrics.alias("m")
        value = table.c[_METRIC_COLUMNS[key.field or "last"]]
        match = sa.and_(table.c.run_id == runs.c.id, table.c.name == sa.bindparam(None, key.name))
    else:
        table = _KEY_TABLES[key.section].alias("k")
        value = table.c.value
        match = sa.and_(table.c.run_id == runs.c.id, table.c.key == sa.bindparam(None, key.name))
    if isinstance(node, IsNull):
        present = sa.exists().where(match, value.is_not(None))
        return present if node.negated else ~present
    if key.section != "metrics" and _numeric(node):
        value = _as_number(value)
    return sa.exists().where(match, value.is_not(None), _compared(value, node, postgres))


def _numeric(node: Compare | In) -> bool:
    values = node.values if isinstance(node, In) else (node.value,)
    return all(isinstance(value, (int, float)) and not isinstance(value, bool) for value in values)


def _as_number(text: Any) -> Any:
    """A text column as a number where it holds one, else NULL."""
    return sa.case((text.regexp_match(_NUMBER_TEXT), sa.cast(text, sa.Float)), else_=sa.null())


def _compared(column: Any, node: Compare | In, postgres: bool) -> sa.ColumnElement[bool]:
    if isinstance(node, In):
        values = [_bound(value, column) for value in node.values]
        return column.not_in(values) if node.negated else column.in_(values)
    value = node.value
    if isinstance(value, bool) and not isinstance(column.type, sa.Float) and node.key.section != "metrics":
        column, value = sa.func.lower(column), "true" if value else "false"
    if node.op in ("like", "ilike") and postgres:  # a backslash is a plain character, as on SQLite
        value = str(value).replace("\\", "\\\\")
    if node.op == "like":
        return column.like(value) if postgres else column.op("GLOB")(_glob(str(value)))
    if node.op == "ilike":
        return column.ilike(value)
    bound = _bound(value, column)
    return {
        "=": column == bound,
        "!=": column != bound,
        "<": column < bound,
        "<=": column <= bound,
        ">": column > bound,
        ">=": column >= bound,
    }[node.op]


def _bound(value: Any, column: Any) -> Any:
    if isinstance(value, bool):
        value = float(value) if isinstance(column.type, (sa.Float, sa.Integer)) else ("true" if value else "false")
    if isinstance(value, (int, float)):
        return sa.bindparam(None, float(value), type_=sa.Float)
    return sa.bindparam(None, value, type_=sa.Text)


def _glob(pattern: str) -> str:
    """A LIKE pattern as SQLite's case-sensitive GLOB (``%`` -> ``*``, ``_`` -> ``?``, GLOB's own
    wildcards taken literally)."""
    special = {"%": "*", "_": "?", "*": "[*]", "?": "[?]", "[": "[[]"}
    return "".join(special.get(char, char) for char in pattern)
