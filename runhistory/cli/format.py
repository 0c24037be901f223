"""Pure text formatting shared by the commands: times, durations, metric values, statuses, plain tables (sizes: core.sizes)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterator, Sequence

from rich.cells import cell_len, chop_cells, set_cell_size
from rich.console import Console, ConsoleOptions
from rich.segment import Segment
from rich.text import Text

from runhistory.store.base import RunStatus

STATUS_STYLES: dict[str, str] = {
    RunStatus.NOT_STARTED: "dim",
    RunStatus.QUEUED: "magenta",
    RunStatus.STARTING: "magenta",
    RunStatus.RUNNING: "cyan",
    RunStatus.NOT_RESPONDING: "bold yellow",
    RunStatus.COMPLETED: "green",
    RunStatus.FAILED: "bold red",
    RunStatus.CANCELED: "yellow",
}


def format_time(timestamp: float | None) -> str:
    """A wall-clock time in local time, ``YYYY-MM-DD HH:MM:SS``; empty for None."""
    if timestamp is None:
        return ""
    return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M:%S")


def format_short_time(timestamp: float | None, now: float | None = None) -> str:
    """A time for a table column, as ``ls`` does: ``MM-DD HH:MM`` this year, else ``YYYY-MM-DD``."""
    if timestamp is None:
        return ""
    moment = datetime.fromtimestamp(timestamp)
    this_year = datetime.fromtimestamp(now if now is not None else time.time()).year
    return moment.strftime("%m-%d %H:%M" if moment.year == this_year else "%Y-%m-%d")


def run_duration(start: float | None, end: float | None, now: float | None = None) -> float | None:
    """Seconds from start to end (to now while the run has not ended); None before it starts."""
    if start is None:
        return None
    finish = end if end is not None else (now if now is not None else time.time())
    return max(0.0, finish - start)


def format_duration(seconds: float | None) -> str:
    """A duration for people: ``0.4s``, ``42s``, ``3m 05s``, ``2h 03m``, ``3d 04h``; empty for None."""
    if seconds is None:
        return ""
    if seconds < 10:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m {whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h {whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d {whole % 86400 // 3600:02d}h"


def format_number(value: float | int) -> str:
    """A number, compactly: ints as they are, floats in 6 significant digits, nan/inf/-inf by name."""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.6g}"


def format_value(value: Any) -> str:
    """A metric value on one line: numbers compactly, rows as ``col=value, ...``, lists in brackets."""
    if value is None:
        return ""
    if isinstance(value, (int, float)):
        return format_number(value)
    if isinstance(value, dict):
        return ", ".join(f"{column}={format_value(cell)}" for column, cell in value.items())
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(format_value(item) for item in value) + "]"
    return " ".join(str(value).split())


def status_text(status: str) -> Text:
    """A run status, coloured by what it means."""
    return Text(status, style=STATUS_STYLES.get(status, ""))


@dataclass(frozen=True)
class PlainColumn:
    """A column of a :class:`PlainTable`."""

    header: str
    justify: str = "left"  # or "right"
    max_width: int | None = None  # a wider cell folds or ends in an ellipsis
    fold: bool = False  # a cell too wide goes on over more lines (else it ends in an ellipsis)
    shrinks: bool = False  # gives up width, down to MIN_SHRUNK_WIDTH, when the terminal is too narrow


MIN_SHRUNK_WIDTH = 8
_GAP = "  "  # what new_table() puts between columns
_ELLIPSIS = "\u2026"


class PlainTable:
    """A table of plain-text cells that looks like ``cli.common.new_table()`` and renders in time
    linear in its rows: rich's Table measures and renders every cell as a renderable (~0.4 ms a
    row, 45 s for 100,000 metrics). Where the terminal is too narrow, the columns that shrink give up
    width, the rightmost first."""

    def __init__(self, columns: Sequence[PlainColumn], rows: Sequence[Sequence[str]]) -> None:
        self.columns = list(columns)
        self.rows = rows

    def widths(self, width: int) -> list[int]:
        """Each column's width in a terminal ``width`` wide."""
        natural = [
            max([_cells(column.header)] + [_cells(row[index]) for row in self.rows])
            for index, column in enumerate(self.columns)
        ]
        widths = [min(known, column.max_width or known) for known, column in zip(natural, self.columns)]
        excess = sum(widths) + len(_GAP) * (len(widths) - 1) - width
        for index in reversed(range(len(widths))):
            if excess <= 0:
                break
            if self.columns[index].shrinks:
                cut = min(excess, max(0, widths[index] - MIN_SHRUNK_WIDTH))
                widths[index] -= cut
                excess -= cut
        return widths

    def lines(self, width: int) -> tuple[str, list[str]]:
        """The header line and the body lines for a terminal ``width`` wide."""
        widths = self.widths(width)
        header = _GAP.join(_fitted(column.header, size, column)[0] for column, size in zip(self.columns, widths))
        body: list[str] = []
        for row in self.rows:
            cells = [_fitted(cell, size, column) for cell, size, column in zip(row, widths, self.columns)]
            height = max(len(lines) for lines in cells)
            for line in range(height):
                body.append(_GAP.join(lines[line] if line < len(lines) else " " * size for lines, size in zip(cells, widths)))
        return header, body

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Segment]:
        header, body = self.lines(options.max_width)
        style = console.get_style("table.header")
        yield Segment(header, style)
        yield Segment.line()
        yield Segment("\u2500" * _cells(header))
        yield Segment.line()
        newline = Segment.line()
        for line in body:  # one segment a line: rich splits a long text at newlines in quadratic time
            yield Segment(line)
            yield newline


def _fitted(text: str, width: int, column: PlainColumn) -> list[str]:
    """A cell as lines exactly ``width`` cells wide: padded, folded or ending in an ellipsis."""
    size = _cells(text)
    if size > width:
        if column.fold:
            return [set_cell_size(piece, width) for piece in chop_cells(text, width)]
        text, size = set_cell_size(text, width - 1) + _ELLIPSIS, width
    pad = " " * (width - size)
    return [pad + text if column.justify == "right" else text + pad]


def _cells(text: str) -> int:
    """How many terminal cells ``text`` takes (ASCII without asking rich: a table may have 100,000 rows)."""
    return len(text) if text.isascii() else cell_len(text)
