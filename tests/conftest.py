"""Fixtures shared by every test: each test gets its own working folder and workspace."""

from __future__ import annotations

from pathlib import Path

import pytest

from runhistory import Experiment, Workspace

from tests.helpers import ENV_VARS


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run each test in an empty working folder, with no workspace named by the environment."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    return work


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    """A fresh embedded workspace in a temporary folder."""
    return Workspace.create(tmp_path / "ws")


@pytest.fixture
def exp(ws: Workspace) -> Experiment:
    """An experiment in the fresh workspace."""
    return Experiment(ws, "unit")

