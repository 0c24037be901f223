"""``GET /health``: whether the server answers (the one route that needs no token)."""

from __future__ import annotations

from fastapi import APIRouter

from runhistory.core.version import __version__
from runhistory.protocol.routes import API_PREFIX
from runhistory.server.models import HealthOut

router = APIRouter(prefix=API_PREFIX, tags=["server"])


@router.get("/health", response_model=HealthOut)
def health() -> dict[str, str]:
    """The server's status and version; nothing about the store, since no token is needed."""
    return {"status": "ok", "version": __version__}
