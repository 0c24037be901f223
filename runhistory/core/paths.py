"""Checks on local paths that several layers make the same way."""

from __future__ import annotations

from pathlib import Path

from runhistory.core.errors import RunHistoryError


def refuse_non_folder(path: Path, doing: str, error: type[RunHistoryError] = RunHistoryError) -> None:
    """Raise ``error`` ("<doing> <path>: it is a file, not a folder.") when ``path`` exists and is
    not a folder; a missing path passes (the caller creates it)."""
    if path.exists() and not path.is_dir():
        raise error(f"{doing} {path}: it is a file, not a folder.")
