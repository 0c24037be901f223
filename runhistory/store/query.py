"""The run query language: a filter over runs and sort keys, parsed into a plain, backend-free form.

A filter is comparisons joined by ``and`` / ``or`` / ``not`` and parentheses::

    metrics.mse < 3300 and (tags.model = "ridge" or properties.alpha in (0.1, 0.4))

Keys are ``metrics.NAME`` (the last value; ``.min``, ``.max``, ``.last``, ``.count`` too),
``properties.NAME`` (``params.NAME`` is an alias), ``tags.NAME`` and ``attributes.FIELD``; a name
with other characters than letters, digits, ``_`` and ``-`` goes in backquotes
(``metrics.`val/loss` ``). Operators: ``= != < <= > >= like ilike in (...) not in (...)``,
``is null`` / ``is not null``. Values: numbers, ``"strings"`` or ``'strings'`` (backslash escapes),
``true``, ``false``, ``null``.

Type rules: a metric compares with numbers only (a string metric has no number: it never
matches); tags and properties are strings, compared as numbers when the value is a number (a tag
that is not a number then does not match); ``like`` takes a string pattern (``%`` any text, ``_``
one character; ``like`` is case-sensitive, ``ilike`` not). A comparison with a key a run lacks
is false (``not`` makes it true); ``is null`` matches the runs that lack it.

The SQL store compiles the parsed form with bound parameters only
(:mod:`runhistory.store.sql.query`); the parser itself is lark (LALR), built once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Union

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

from runhistory.core.errors import RunHistoryError
from runhistory.core.status import RunStatus
from runhistory.core.validation import is_encodable


class QueryError(RunHistoryError):
    """A run filter or sort key that does not parse or names an unknown field (HTTP 400)."""

    http_status = 400
    code = "bad_query"


METRIC_FIELDS = ("last", "min", "max", "count")
STRING_ATTRIBUTES = ("status", "display_name", "run_type", "id", "parent_id", "target")
NUMBER_ATTRIBUTES = ("created_time", "start_time", "end_time", "duration", "number")
ATTRIBUTES = STRING_ATTRIBUTES + NUMBER_ATTRIBUTES
SECTIONS = ("metrics", "properties", "tags", "attributes")
MAX_QUERY_CHARS = 10_000
MAX_ORDER_KEYS = 10

Value = Union[str, float, int, bool, None]


@dataclass(frozen=True)
class Key:
    """What a comparison reads of a run: ``section`` (metrics, properties, tags, attributes), the
    name, and for a metric which of its fields (last, min, max, count)."""

    section: str
    name: str
    field: str | None = None

    @property
    def is_number(self) -> bool:
        """Whether the key's values are numbers (metrics, numeric attributes)."""
        return self.section == "metrics" or (self.section == "attributes" and self.name in NUMBER_ATTRIBUTES)

    def __str__(self) -> str:
        name = self.name if re.fullmatch(r"[A-Za-z_][\w\-]*", self.name) else "`" + self.name.replace("`", "\\`") + "`"
        return f"{self.section}.{name}" + (f".{self.field}" if self.field else "")


@dataclass(frozen=True)
class Compare:
    """``key op value`` with op one of ``= != < <= > >= like ilike``."""

    key: Key
    op: str
    value: Value


@dataclass(frozen=True)
class In:
    """``key in (values)`` (``negated``: ``not in``); the values all numbers or all strings."""

    key: Key
    values: tuple[Value, ...]
    negated: bool = False


@dataclass(frozen=True)
class IsNull:
    """``key is null`` (the run lacks it) or, ``negated``, ``is not null``."""

    key: Key
    negated: bool = False


@dataclass(frozen=True)
class And:
    """All of ``items``."""

    items: tuple["Node", ...]


@dataclass(frozen=True)
class Or:
    """Any of ``items``."""

    items: tuple["Node", ...]


@dataclass(frozen=True)
class Not:
    """Not ``item``."""

    item: "Node"


Node = Union[Compare, In, IsNull, And, Or, Not]


@dataclass(frozen=True)
class OrderKey:
    """One sort key: a key and its direction (runs lacking the key sort last either way)."""

    key: Key
    descending: bool = False


_GRAMMAR = r"""
?start: or_expr
?or_expr: and_expr (_OR and_expr)*
?and_expr: not_expr (_AND not_expr)*
?not_expr: _NOT not_expr -> not_
         | atom
?atom: comparison
     | "(" or_expr ")"
comparison: key OP value -> compare
          | key LIKE value -> compare
          | key _IN "(" value ("," value)* ")" -> in_
          | key _NOT _IN "(" value ("," value)* ")" -> not_in
          | key _IS _NULL -> is_null
          | key _IS _NOT _NULL -> is_not_null
key: SECTION "." name ("." name)?
name: NAME | QUOTED_NAME
value: NUMBER -> number
     | STRING -> string
     | _TRUE -> true
     | _FALSE -> false
     | _NULL -> null
order: key DIRECTION?

SECTION.2: /(metrics|params|properties|tags|attributes)(?![\w\-])/i
OP: "!=" | "<>" | "<=" | ">=" | "=" | "==" | "<" | ">"
LIKE.2: /(i?like)(?![\w\-])/i
DIRECTION.2: /(asc|desc)(?![\w\-])/i
_AND.2: /and(?![\w\-])/i
_OR.2: /or(?![\w\-])/i
_NOT.2: /not(?![\w\-])/i
_IN.2: /in(?![\w\-])/i
_IS.2: /is(?![\w\-])/i
_NULL.2: /null(?![\w\-])/i
_TRUE.2: /true(?![\w\-])/i
_FALSE.2: /false(?![\w\-])/i
NAME: /[A-Za-z_][\w\-]*/
QUOTED_NAME: /`(?:[^`\\]|\\.)*`/
NUMBER: /[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?/
STRING: /"(?:[^"\\]|\\.)*"/ | /'(?:[^'\\]|\\.)*'/

%import common.WS
%ignore WS
"""

# What a parser's expected terminals mean to a user.
_EXPECTED = {
    "SECTION": "a key (metrics., properties., tags. or attributes.)",
    "NAME": "a name",
    "QUOTED_NAME": "a name",
    "OP": "an operator",
    "LIKE": "an operator",
    "_IN": "an operator",
    "_IS": "an operator",
    "NUMBER": "a value",
    "STRING": "a value",
    "_TRUE": "a value",
    "_FALSE": "a value",
    "_NULL": "a value",
    "_AND": "and / or",
    "_OR": "and / or",
    "RPAR": "')'",
    "LPAR": "'('",
    "COMMA": "','",
    "DOT": "'.'",
    "DIRECTION": "asc or desc",
    "$END": "the end",
}


@lru_cache(maxsize=2)
def _parser(start: str) -> Lark:
    return Lark(_GRAMMAR, start=start, parser="lalr", maybe_placeholders=False)


def parse_query(text: str) -> Node:
    """The parsed filter; :class:`QueryError` naming the column for one that does not parse."""
    if not isinstance(text, str):
        raise QueryError(f"A run filter must be a string, not {type(text).__name__}.")
    if len(text) > MAX_QUERY_CHARS:
        raise QueryError(f"A run filter may be at most {MAX_QUERY_CHARS} characters, not {len(text)}.")
    if not text.strip():
        raise QueryError("The run filter is empty: write a comparison such as metrics.loss < 0.5.")
    if not is_encodable(text) or "\x00" in text:
        raise QueryError("A run filter must be valid Unicode text without NUL characters.")
    return _parse(text, "start", "run filter")


def parse_order(text: str) -> OrderKey:
    """One parsed sort key such as ``metrics.mse asc``; :class:`QueryError` for a bad one."""
    if not isinstance(text, str) or not text.strip():
        raise QueryError(f"A sort key must be a key and asc or desc such as 'metrics.loss asc', not {text!r:.60}.")
    if len(text) > 1000:
        raise QueryError(f"A sort key may be at most 1000 characters, not {len(text)}.")
    if not is_encodable(text) or "\x00" in text:
        raise QueryError("A sort key must be valid Unicode text without NUL characters.")
    return _parse(text, "order", "sort key")


def parse_order_by(keys: Any) -> tuple[OrderKey, ...]:
    """The parsed sort keys of a listing (a string or a sequence of them; at most MAX_ORDER_KEYS)."""
    if isinstance(keys, str):
        keys = (keys,)
    keys = tuple(keys or ())
    if len(keys) > MAX_ORDER_KEYS:
        raise QueryError(f"Runs are sorted by at most {MAX_ORDER_KEYS} keys, not {len(keys)}.")
    return tuple(parse_order(key) for key in keys)


def _parse(text: str, start: str, what: str) -> Any:
    try:
        tree = _parser(start).parse(text)
        return _Build(what).transform(tree)
    except VisitError as exc:
        if isinstance(exc.orig_exc, QueryError):
            raise exc.orig_exc from None
        raise
    except UnexpectedInput as exc:
        raise QueryError(_syntax_message(text, exc, what)) from None


def _syntax_message(text: str, exc: UnexpectedInput, what: str) -> str:
    """``Bad run filter at column 14: expected a value after '<'`` (the line too when there are several)."""
    if isinstance(exc, UnexpectedEOF) or (isinstance(exc, UnexpectedToken) and exc.token.type == "$END"):
        stripped = text.rstrip()
        column, line, found = len(stripped) - stripped.rfind("\n"), stripped.count("\n") + 1, "the end"
        expected = exc.expected
    elif isinstance(exc, UnexpectedToken):
        column, line, found = exc.column, exc.line, repr(str(exc.token))
        expected = exc.expected
    else:
        assert isinstance(exc, UnexpectedCharacters)
        column, line, found = exc.column, exc.line, repr(text[exc.pos_in_stream])
        expected = exc.allowed or set()
    where = f"line {line}, column {column}" if "\n" in text.strip() else f"column {column}"
    wanted = _wanted(set(expected))
    before = _token_before(text, exc, at_end=found == "the end")
    after = f" after {before!r}" if before else ""
    return f"Bad {what} at {where}: expected {wanted}{after}, found {found}."


def _wanted(expected: set[str]) -> str:
    """The expected terminals in words, the most telling first (a key, an operator, a value)."""
    for terminal, words in (("SECTION", _EXPECTED["SECTION"]), ("OP", "an operator"), ("NUMBER", "a value")):
        if terminal in expected:
            return words
    return " or ".join(sorted({_EXPECTED.get(name, name.lower().strip("_")) for name in expected})) or "something else"


def _token_before(text: str, exc: UnexpectedInput, at_end: bool) -> str:
    """The last word or symbol before the error (what the user wrote just before it)."""
    pos = len(text) if at_end or getattr(exc, "pos_in_stream", None) is None else exc.pos_in_stream
    found = re.findall(r"`(?:[^`\\]|\\.)*`|\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'|[\w.\-]+|[!<>=]+|\S", text[:pos])
    return found[-1] if found else ""


_ESCAPE = re.compile(r"\\(.)", re.DOTALL)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r"}


def _unquote(token: str) -> str:
    return _ESCAPE.sub(lambda match: _ESCAPES.get(match.group(1), match.group(1)), token[1:-1])


class _Build(Transformer):
    """The lark tree as :data:`Node` dataclasses, checking keys and types as it goes."""

    def __init__(self, what: str) -> None:
        super().__init__()
        self.what = what

    def or_expr(self, items: list) -> Node:
        return Or(tuple(items))

    def and_expr(self, items: list) -> Node:
        return And(tuple(items))

    def not_(self, items: list) -> Node:
        return Not(items[0])

    def name(self, items: list) -> tuple[str, Token]:
        token = items[0]
        return (_unquote(token) if token.type == "QUOTED_NAME" else str(token)), token

    def key(self, items: list) -> Key:
        section = str(items[0]).lower()
        section = "properties" if section == "params" else section
        (name, token), field = items[1], None
        if not name:
            raise self._error(token, "a key needs a name")
        if len(items) == 3:
            field, field_token = items[2]
            if section != "metrics" or field.lower() not in METRIC_FIELDS:
                raise self._error(field_token, f"{section}.{name} has no field {field!r} (only metrics have .last, .min, .max, .count; put a name with dots in backquotes)")
            field = field.lower()
        if section == "metrics":
            field = field or "last"
        if section == "attributes" and name.lower() not in ATTRIBUTES:
            raise self._error(token, f"unknown attribute {name!r}; use one of {', '.join(ATTRIBUTES)}")
        return Key(section, name.lower() if section == "attributes" else name, field)

    def number(self, items: list) -> Any:
        text = str(items[0])
        return int(text) if re.fullmatch(r"[-+]?\d+", text) else float(text)

    def string(self, items: list) -> Any:
        return _Text(_unquote(str(items[0])))

    def true(self, items: list) -> Any:
        return True

    def false(self, items: list) -> Any:
        return False

    def null(self, items: list) -> Any:
        return None

    @v_args(inline=True)
    def compare(self, key: Key, op: Token, value: Any) -> Node:
        operator = {"==": "=", "<>": "!="}.get(str(op), str(op).lower())
        if value is None:
            if operator not in ("=", "!="):
                raise self._error(op, f"{key} cannot be compared with null by {op}; use 'is null'")
            return IsNull(key, negated=operator == "!=")
        self._check_type(key, operator, value, op)
        return Compare(key, operator, _plain(value))

    def in_(self, items: list, negated: bool = False) -> Node:
        key, values = items[0], items[1:]
        if any(value is None for value in values):
            raise QueryError(f"Bad {self.what}: {key} in (...) cannot hold null; use 'is null'.")
        kinds = {isinstance(value, _Text) for value in values}
        if len(kinds) > 1:
            raise QueryError(f"Bad {self.what}: the values of {key} in (...) must be all numbers or all strings.")
        for value in values:
            self._check_type(key, "in", value, None)
        return In(key, tuple(_plain(value) for value in values), negated)

    def not_in(self, items: list) -> Node:
        return self.in_(items, negated=True)

    @v_args(inline=True)
    def is_null(self, key: Key) -> Node:
        return IsNull(key)

    @v_args(inline=True)
    def is_not_null(self, key: Key) -> Node:
        return IsNull(key, negated=True)

    def order(self, items: list) -> OrderKey:
        descending = len(items) == 2 and str(items[1]).lower() == "desc"
        return OrderKey(items[0], descending)

    def _check_type(self, key: Key, op: str, value: Any, token: Token | None) -> None:
        text = isinstance(value, _Text)
        if op in ("like", "ilike") and (not text or key.is_number):
            raise self._error(token, f"{op} takes a string key and a string pattern, not {key} {op} {_shown(value)}")
        if key.is_number and text:
            raise self._error(token, f"{key} is a number: compare it with a number, not {_shown(value)}")
        if key.section == "attributes" and not key.is_number and not text:
            raise self._error(token, f"{key} is a string: compare it with a \"string\", not {_shown(value)}")
        if key.section == "attributes" and key.name == "status" and op in ("=", "!=", "in") and value not in RunStatus.ALL:
            raise self._error(token, f"unknown status {str(value)!r}; use one of {', '.join(RunStatus.ALL)}")

    def _error(self, token: Token | None, message: str) -> QueryError:
        where = f" at column {token.column}" if token is not None and token.column is not None else ""
        return QueryError(f"Bad {self.what}{where}: {message}.")


class _Text(str):
    """A string value as written (told apart from a name while the tree is built)."""


def _plain(value: Any) -> Value:
    return str(value) if isinstance(value, _Text) else value


def _shown(value: Any) -> str:
    if isinstance(value, _Text):
        return '"' + str(value)[:40] + '"'
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
