"""Pure text formatting shared by the commands: times, durations, metric values, statuses (sizes: core.sizes)."""

from __future__ import annotations

import math
import time
from datetime import datetime
from typing import Any

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
