"""The web UI's application: the server's API plus the pages, their JSON, static files and TensorBoard.

:func:`create_ui_app` is what ``runhistory server`` and ``runhistory ui`` serve. The API under
``/api/v1`` keeps its bearer tokens exactly; the UI's paths (:data:`UI_PREFIXES`) take the
session cookie instead (:mod:`.session`), and ``/signin`` and ``/ui/static`` need nothing. Pages
are rendered on the server (:mod:`.pages`, Jinja2 with autoescape), their scripts are static
files, and every page answer carries a Content-Security-Policy that allows no inline script.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from runhistory.artifacts.base import ArtifactStore
from runhistory.core import errors, settings
from runhistory.server.app import create_app
from runhistory.server.auth import TokenGate
from runhistory.server.errors import error_response, validation_sentence
from runhistory.server.limits import RequestLimits
from runhistory.store.base import RunStore
from runhistory.ui import api, files, pages, signin, tensorboard_routes
from runhistory.ui.boards import BoardManager
from runhistory.ui.rendering import render_error
from runhistory.ui.runs_view import KeysCache
from runhistory.ui.workspace import LazyWorkspace
from runhistory.ui.session import JSON_PREFIXES, Sessions, SignInRequired, signin_url

STATIC_DIR = Path(__file__).parent / "static"
# The paths of the UI: they take the session cookie rather than the API's bearer token.
UI_PREFIXES = ("/ui/", "/experiments/", "/runs/", "/tensorboard/")
UI_PATHS = frozenset({"/", "/signin", "/signout", "/compare", "/favicon.ico"})
PAGE_CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; frame-ancestors 'none'"


def is_ui_path(path: str) -> bool:
    """Whether a request path belongs to the UI (cookie sign-in) rather than to the API (tokens)."""
    return path in UI_PATHS or path.startswith(UI_PREFIXES)


def create_ui_app(
    store: RunStore,
    artifacts: ArtifactStore,
    *,
    tracking_uri: str,
    artifact_uri: str | None,
    require_tokens: bool = False,
    limits: Optional[RequestLimits] = None,
) -> FastAPI:
    """The server's API app (:func:`runhistory.server.app.create_app`) with the UI's pages, their
    JSON under ``/ui/api``, static files under ``/ui/static`` and TensorBoard under ``/tensorboard``."""
    app = create_app(store, artifacts, require_tokens=require_tokens, limits=limits)
    app.state.tracking_uri = tracking_uri
    app.state.artifact_uri = artifact_uri
    app.state.workspace = LazyWorkspace(tracking_uri, artifact_uri)
    app.state.token_exempt = is_ui_path  # read by the server's TokenCheck middleware
    app.state.sessions = Sessions(TokenGate(store.tokens(), require=require_tokens))
    app.state.run_keys = KeysCache(store)
    app.add_middleware(PageHeaders)
    app.add_exception_handler(SignInRequired, _to_signin)
    app.add_exception_handler(errors.RunHistoryError, _on_error)
    app.add_exception_handler(RequestValidationError, _on_invalid_request)
    for router in (signin.router, pages.router, api.router, files.router):
        app.include_router(router)
    app.mount("/ui/static", StaticFiles(directory=STATIC_DIR), name="ui-static")
    _add_tensorboard(app, tracking_uri, artifact_uri)
    return app


def _add_tensorboard(app: FastAPI, tracking_uri: str, artifact_uri: str | None) -> None:
    """TensorBoard's boards and proxy (:mod:`runhistory.ui.boards`, :mod:`.tensorboard_routes`), as
    many at once and stopped when unused as $RUNHISTORY_UI_MAX_BOARDS and _BOARD_IDLE say."""
    app.state.boards = BoardManager(
        tracking_uri,
        artifact_uri,
        max_boards=settings.UI_MAX_BOARDS.positive_integer(),
        idle_timeout_s=settings.UI_BOARD_IDLE.positive_number(),
        workspace=app.state.workspace,
    )
    app.router.add_event_handler("shutdown", app.state.boards.close_all)
    app.include_router(tensorboard_routes.router)


async def _to_signin(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SignInRequired)
    return RedirectResponse(signin_url(exc.next_path), status_code=303)


async def _on_error(request: Request, exc: Exception) -> Response:
    """A page's error as an HTML page; the API's and the UI's JSON as the server answers them."""
    assert isinstance(exc, errors.RunHistoryError)
    path = request.url.path
    if not is_ui_path(path) or path.startswith(JSON_PREFIXES):
        return error_response(exc)
    return render_error(request, exc)


async def _on_invalid_request(request: Request, exc: Exception) -> Response:
    """A request its parameters' rules refuse: one sentence, as a page on the UI's pages."""
    assert isinstance(exc, RequestValidationError)
    return await _on_error(request, errors.InvalidRequestError(validation_sentence(exc)))


class PageHeaders:
    """ASGI middleware: the UI's answers get a CSP (unless they set their own), ``nosniff`` and
    no framing; the API's answers are left as they are. TensorBoard's pages set their own."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not is_ui_path(scope["path"]) or scope["path"].startswith("/tensorboard/"):
            await self.app(scope, receive, send)
            return

        async def with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _value in headers}
                for name, value in _PAGE_HEADERS:
                    if name not in names:
                        headers.append((name, value))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


_PAGE_HEADERS = (
    (b"content-security-policy", PAGE_CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
)
