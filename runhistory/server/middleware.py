"""The server's two gates in front of every route: the size of a request body, and its API token."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.responses import Response

from runhistory.core import errors
from runhistory.protocol.routes import API_PREFIX, AUTHORIZATION_HEADER
from runhistory.server.auth import TokenGate
from runhistory.server.errors import error_response
from runhistory.server.limits import RequestLimits

HEALTH_PATH = f"{API_PREFIX}/health"  # answers without a token
_BEARER = "bearer "


class BodyTooLarge(StarletteHTTPException):
    """A request body past a limit, raised while it is read: an HTTP exception, so that FastAPI
    passes it on (answered 413, :class:`~runhistory.core.errors.RequestTooLargeError`) when it
    is raised as a request model's body is read, rather than calling it a body it cannot parse."""

    def __init__(self, message: str) -> None:
        super().__init__(status_code=errors.RequestTooLargeError.http_status, detail=message)

    def __str__(self) -> str:
        return str(self.detail)


def is_upload(method: str, path: str) -> bool:
    """Whether a request stores a whole file (which has the file limit, not the request limit)."""
    return method == "PUT" and path.startswith(f"{API_PREFIX}/runs/") and "/files/" in path


class BodyLimit:
    """ASGI middleware: counts the bytes of each request body as the application reads them,
    whatever the framing (Content-Length or chunked), and raises :class:`BodyTooLarge` at the
    first byte past its limit, so that no handler (nor FastAPI, reading a request model) ever
    holds more; a Content-Length past it is answered 413 before anything is read."""

    def __init__(self, app: Any, limits: RequestLimits) -> None:
        self.app = app
        self.limits = limits

    def limit_of(self, method: str, path: str) -> int:
        """The most bytes this request's body may have."""
        return self.limits.max_file if is_upload(method, path) else self.limits.max_request

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_of(scope["method"], scope["path"])
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > limit:
            message = f"The request body ({int(length)} bytes) is larger than the server's limit of {limit} bytes."
            await error_response(errors.RequestTooLargeError(message))(scope, receive, send)
            return
        received = 0

        async def counted() -> dict[str, Any]:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(f"The request body is larger than the server's limit of {limit} bytes.")
            return message

        await self.app(scope, counted, send)


def bearer_token(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, else None."""
    header = request.headers.get(AUTHORIZATION_HEADER, "")
    return header[len(_BEARER) :].strip() if header.lower().startswith(_BEARER) else None


class TokenCheck(BaseHTTPMiddleware):
    """Every request but the health check passes the server's :class:`TokenGate`, else 401.

    An app that serves more than the API (the web UI, :mod:`runhistory.ui.app`) may set
    ``app.state.token_exempt``, a predicate on the request path: the paths it accepts are left to
    that app's own sign-in (a session cookie) rather than a bearer token."""

    def __init__(self, app: Any, gate: TokenGate) -> None:
        super().__init__(app)
        self.gate = gate

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        exempt = getattr(request.app.state, "token_exempt", None)
        if request.url.path == HEALTH_PATH or (exempt is not None and exempt(request.url.path)):
            return await call_next(request)
        token = bearer_token(request)
        try:
            allowed = await run_in_threadpool(self.gate.check, token)
        except errors.StoreUnavailableError as exc:  # a middleware's errors bypass the exception handlers
            return error_response(exc)
        if not allowed:
            reason = "no token given" if not token else "the token is not valid (unknown or revoked)"
            return error_response(errors.UnauthorizedError(f"This runhistory server needs an API token: {reason}."))
        return await call_next(request)
