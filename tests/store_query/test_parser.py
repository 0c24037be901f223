"""The run query language's parser: what parses into what, and where a bad expression goes wrong."""

from __future__ import annotations

import pytest

from runhistory.core.errors import RunHistoryError
from runhistory.store.query import (
    And,
    Compare,
    In,
    IsNull,
    Key,
    Not,
    Or,
    OrderKey,
    QueryError,
    parse_order,
    parse_order_by,
    parse_query,
)

MSE = Key("metrics", "mse", "last")


def test_comparisons_join_with_and_or_not_and_parentheses() -> None:
    parsed = parse_query('metrics.mse < 3300 and (tags.model = "ridge" or not params.alpha >= 0.1)')
    assert parsed == And(
        (
            Compare(MSE, "<", 3300),
            Or((Compare(Key("tags", "model"), "=", "ridge"), Not(Compare(Key("properties", "alpha"), ">=", 0.1)))),
        )
    )


def test_and_binds_tighter_than_or() -> None:
    parsed = parse_query("metrics.a = 1 or metrics.b = 2 and metrics.c = 3")
    a, b, c = (Compare(Key("metrics", name, "last"), "=", value) for name, value in (("a", 1), ("b", 2), ("c", 3)))
    assert parsed == Or((a, And((b, c))))


@pytest.mark.parametrize(
    "text, expected",
    [
        ("metrics.mse.min <= 1e-3", Compare(Key("metrics", "mse", "min"), "<=", 0.001)),
        ("metrics.mse.MAX > -2", Compare(Key("metrics", "mse", "max"), ">", -2)),
        ("metrics.mse.count != 10", Compare(Key("metrics", "mse", "count"), "!=", 10)),
        ("metrics.`val/loss` > .5", Compare(Key("metrics", "val/loss", "last"), ">", 0.5)),
        ("tags.`we\\`ird name` = 'it''s'".replace("''", "\\'"), Compare(Key("tags", "we`ird name"), "=", "it's")),
        ('attributes.status in ("Failed", "Canceled")', In(Key("attributes", "status"), ("Failed", "Canceled"))),
        ("properties.alpha not in (0.1, 0.2)", In(Key("properties", "alpha"), (0.1, 0.2), negated=True)),
        ("tags.model is null", IsNull(Key("tags", "model"))),
        ("tags.model IS NOT NULL", IsNull(Key("tags", "model"), negated=True)),
        ("tags.model = null", IsNull(Key("tags", "model"))),
        ("tags.model != null", IsNull(Key("tags", "model"), negated=True)),
        ("tags.model ILIKE 'R%'", Compare(Key("tags", "model"), "ilike", "R%")),
        ("tags.done = true", Compare(Key("tags", "done"), "=", True)),
        ("attributes.Duration >= 10", Compare(Key("attributes", "duration"), ">=", 10)),
        ('tags.x = "a\' OR 1=1 --"', Compare(Key("tags", "x"), "=", "a' OR 1=1 --")),
        ("tags.and = 'keywords are names after a dot'", Compare(Key("tags", "and"), "=", "keywords are names after a dot")),
    ],
)
def test_keys_values_and_operators(text: str, expected) -> None:
    assert parse_query(text) == expected


@pytest.mark.parametrize(
    "text, message",
    [
        ("metrics.mse <", "Bad run filter at column 14: expected a value after '<', found the end."),
        ("metrics.mse < 3 and", "at column 20: expected a key (metrics., properties., tags. or attributes.) after 'and'"),
        ("(metrics.a < 1", "at column 15: expected ')' after '1', found the end."),
        ("metrics.mse @ 3", "at column 13: expected an operator after 'metrics.mse', found '@'."),
        ("foo.bar = 1", "at column 1: expected a key"),
        ("metrics.a in ()", "at column 15: expected a value after '('"),
        ("metrics.a < 1\nand tags.b =", "at line 2, column 13: expected a value after '='"),
        ("metrics.mse.foo < 1", "at column 13: metrics.mse has no field 'foo'"),
        ("tags.a.min = 'x'", "at column 8: tags.a has no field 'min'"),
        ("attributes.nope = 1", "at column 12: unknown attribute 'nope'"),
        ('metrics.mse = "low"', 'at column 13: metrics.mse.last is a number: compare it with a number, not "low"'),
        ("attributes.status = 3", 'at column 19: attributes.status is a string: compare it with a "string", not 3'),
        ('attributes.status = "Faild"', "at column 19: unknown status 'Faild'"),
        ("tags.x like 3", "at column 8: like takes a string key and a string pattern"),
        ("metrics.a < null", "cannot be compared with null by <; use 'is null'"),
        ("properties.a in (1, 'x')", "must be all numbers or all strings"),
        ("  ", "The run filter is empty"),
        ("tags.a = '\udcff'", "valid Unicode text without NUL characters"),
        ("tags.a = '\x00'", "valid Unicode text without NUL characters"),
    ],
)
def test_bad_expressions_name_the_position_and_what_was_expected(text: str, message: str) -> None:
    with pytest.raises(QueryError) as caught:
        parse_query(text)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_query_error_is_a_runhistory_error_answered_with_400() -> None:
    assert issubclass(QueryError, RunHistoryError) and QueryError.http_status == 400
    with pytest.raises(QueryError, match="must be a string"):
        parse_query(3)  # type: ignore[arg-type]
    with pytest.raises(QueryError, match="at most 10000 characters"):
        parse_query("metrics.a < 1 or " * 1000 + "metrics.a < 1")


def test_sort_keys_take_a_direction_ascending_by_default() -> None:
    assert parse_order("metrics.mse") == OrderKey(MSE)
    assert parse_order("metrics.mse.max DESC") == OrderKey(Key("metrics", "mse", "max"), descending=True)
    assert parse_order_by("params.alpha asc") == (OrderKey(Key("properties", "alpha")),)
    assert parse_order_by(["tags.model desc", "attributes.created_time"]) == (
        OrderKey(Key("tags", "model"), True),
        OrderKey(Key("attributes", "created_time")),
    )
    with pytest.raises(QueryError, match="Bad sort key at column 13: expected '.' or asc or desc after 'metrics.mse', found 'up'"):
        parse_order("metrics.mse up")
    with pytest.raises(QueryError, match="at most 10 keys"):
        parse_order_by(["metrics.a"] * 11)
    with pytest.raises(QueryError, match="A sort key must be"):
        parse_order("")
