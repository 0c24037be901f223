"""Every test of this folder on one xdist worker (run with ``--dist loadgroup``), with the other Ray
tests (the "ray" group), so the machine holds one Ray head at a time (``ray_cluster``, tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
GROUP = "ray"


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which turns the mark into the "@ray" node id suffix
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Put every test under tests/compute in the xdist group "ray" (the hook sees the whole session's items)."""
    for item in items:
        if HERE in item.path.resolve().parents:
            item.add_marker(pytest.mark.xdist_group(GROUP))

