"""The runhistory server: every :class:`RunStore` and :class:`ArtifactStore` method over HTTP.

Routes live under ``/api/v1`` (:mod:`.routes`, one router per resource; the OpenAPI schema at
``/openapi.json``, docs at ``/docs``). JSON for records; metric points travel as packed binary
(:mod:`runhistory.protocol.wire`), compressed on the way in. Every request needs
``Authorization: Bearer <token>`` once a token exists or existed, or when started with
``--require-tokens`` (:mod:`.auth`); ``GET /api/v1/health`` answers without one.

No client is trusted: every body is counted as it is read, whatever its framing
(Content-Length or chunked), and refused with 413 past its limit (:mod:`.middleware`, limits
in :mod:`.limits`); request models bound lengths, ranges and floats (:mod:`.models`); what the
store refuses is a 4xx with one sentence, and every error is answered by one table
(:mod:`.errors`); files are read and written only for runs that exist. Connection-level limits
(header and body read timeouts, a cap on open connections) are in :mod:`.connections`.
"""

from __future__ import annotations

from typing import Optional

from fastapi import FastAPI

from runhistory.artifacts.base import ArtifactStore
from runhistory.server.auth import TokenGate
from runhistory.server.errors import install_error_handlers
from runhistory.server.limits import RequestLimits
from runhistory.server.middleware import BodyLimit, TokenCheck
from runhistory.server.models import ERROR_RESPONSES
from runhistory.server.routes import ROUTERS
from runhistory.store.base import RunStore


def create_app(
    store: RunStore, artifacts: ArtifactStore, *, require_tokens: bool = False, limits: Optional[RequestLimits] = None
) -> FastAPI:
    """The ASGI application serving ``store`` and ``artifacts`` (every request needs a token
    when ``require_tokens``, or once the store has had one: see :mod:`.auth`), with ``limits``
    (default: from the ``RUNHISTORY_SERVER_*`` settings, a :class:`SettingError` when one is bad)."""
    limits = limits or RequestLimits.from_settings()
    app = FastAPI(
        title="runhistory server",
        description="Run history (experiments, runs, metrics, tags, properties, jobs) and run files over HTTP.",
        version="1",
        responses=ERROR_RESPONSES,
    )
    app.state.store = store
    app.state.artifacts = artifacts
    app.state.limits = limits
    # added first, so innermost of the middlewares: its BodyTooLarge reaches the exception handlers
    # directly (raised through BaseHTTPMiddleware's receive, it would be an ExceptionGroup, a 500)
    app.add_middleware(BodyLimit, limits=limits)
    app.add_middleware(TokenCheck, gate=TokenGate(store.tokens(), require=require_tokens))
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    return app
