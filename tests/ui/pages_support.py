"""Helpers of the UI's HTTP-level tests: the UI app served by a real uvicorn in this process."""

from __future__ import annotations

import contextlib
import re
from typing import Any, Iterator

import httpx


@contextlib.contextmanager
def client(base_url: str) -> Iterator[httpx.Client]:
    """An HTTP client of the served UI that does not follow redirects (tests look at them)."""
    with httpx.Client(base_url=base_url, follow_redirects=False, timeout=30) as http:
        yield http


def csrf_of(html: str) -> str:
    """The CSRF token in a page's ``<meta name="csrf-token">``."""
    found = re.search(r'<meta name="csrf-token" content="([0-9a-f]+)">', html)
    assert found, "the page has no csrf-token meta"
    return found.group(1)


def ui_app_for(ws: Any, *, require_tokens: bool = False) -> Any:
    """``create_ui_app`` over a workspace's store and files."""
    from runhistory.ui.app import create_ui_app

    return create_ui_app(
        ws.store, ws.artifacts, tracking_uri=ws.tracking_uri, artifact_uri=ws.artifact_uri, require_tokens=require_tokens
    )
