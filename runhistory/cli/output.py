"""``--output table|json|csv``: every list and show command prints people's tables or data for scripts.

A command builds plain records (dicts of JSON-able values, ids whole) and hands them to
:func:`emit` with a function that renders the table; JSON goes to ``jq``, CSV to a spreadsheet.
"""

from __future__ import annotations

import csv
import json
import sys
from typing import Any, Callable, Mapping, Sequence, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

OUTPUT_FORMATS = ("table", "json", "csv")


def output_option(command: F) -> F:
    """The ``--output/-o`` option of a list or show command (passed as ``output``)."""
    return click.option(
        "--output",
        "-o",
        "output",
        type=click.Choice(OUTPUT_FORMATS),
        default="table",
        show_default=True,
        help="table for people; json (for jq) or csv (for spreadsheets) for scripts.",
    )(command)


def emit(
    records: Sequence[Mapping[str, Any]] | Mapping[str, Any],
    output: str,
    render_table: Callable[[], None],
    *,
    columns: Sequence[str] | None = None,
) -> None:
    """Print ``records`` (a list, or one record for a show command) in the ``output`` format;
    ``render_table()`` prints the table. CSV has ``columns`` (default: the first record's keys)."""
    if output == "table":
        render_table()
    elif output == "json":
        click.echo(json.dumps(records, indent=2, ensure_ascii=False, default=str))
    elif output == "csv":
        rows = [records] if isinstance(records, Mapping) else list(records)
        fields = list(columns) if columns is not None else (list(rows[0]) if rows else [])
        writer = csv.DictWriter(sys.stdout, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows({key: _csv_cell(row.get(key)) for key in fields} for row in rows)
        sys.stdout.flush()
    else:
        raise click.BadParameter(f"{output!r} is not one of {', '.join(OUTPUT_FORMATS)}.", param_hint="--output")


def _csv_cell(value: Any) -> Any:
    """A CSV cell: nested values as compact JSON, None as empty."""
    if value is None:
        return ""
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, ensure_ascii=False, default=str, separators=(",", ":"))
    return value
