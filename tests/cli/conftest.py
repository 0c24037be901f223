"""Fixtures of the command-line tests: a populated workspace and an in-process CLI runner."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest
from click.testing import CliRunner, Result

from runhistory.cli.main import cli

from tests.cli.support import WIDTH, Populated, populate


@pytest.fixture
def populated(tmp_path: Path) -> Populated:
    """A populated workspace in ``tmp_path/ws`` (see :func:`populate`)."""
    notes = tmp_path / "notes.txt"
    notes.write_bytes(b"x" * 1500)
    return populate(tmp_path / "ws", notes)


@pytest.fixture
def invoke() -> Callable[..., Result]:
    """Run the CLI in-process in an 80-column terminal: ``invoke("runs", "list", env={...})``."""

    def run(*args: str, env: dict[str, str | None] | None = None) -> Result:
        runner = CliRunner(env={"COLUMNS": str(WIDTH), **(env or {})})
        return runner.invoke(cli, list(args))

    return run
