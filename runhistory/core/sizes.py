"""Byte sizes for people, in one format everywhere (the CLI's tables, a snapshot's refusal)."""

from __future__ import annotations


def format_size(size: int) -> str:
    """A size in bytes for people: ``512 B``, ``1.5 KiB``, ``12 MiB``..."""
    if size < 1024:
        return f"{size} B"
    value = float(size)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024 or unit == "TiB":
            break
    return f"{value:.1f} {unit}" if value < 10 else f"{value:.0f} {unit}"
