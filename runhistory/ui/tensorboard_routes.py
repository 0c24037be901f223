"""Open in TensorBoard: ``POST /ui/api/tensorboard`` starts a board, ``/tensorboard/{board_id}/...``
serves it through this server.

The proxy forwards every method, path and query unchanged (TensorBoard runs with
``--path_prefix=/tensorboard/{board_id}``) to 127.0.0.1 and the port of a board the app's
:class:`~runhistory.ui.boards.BoardManager` (``app.state.boards``) knows, streaming both ways,
under the UI's session. The session cookie and hop-by-hop headers never reach TensorBoard.
TensorBoard's own pages post without the UI's CSRF token, so the proxy asks only for the
session (its cookie is SameSite=Strict: a cross-site page cannot send it).
"""

from __future__ import annotations

from typing import Iterable

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from pydantic import BaseModel
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from runhistory.core.errors import RunHistoryError
from runhistory.ui.boards import BoardManager, board_path
from runhistory.ui.session import Csrf, Session

router = APIRouter()

PROXY_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
# RFC 9110 7.6.1, plus what must not cross the proxy: our session and the client's framing
HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
    "te", "trailer", "transfer-encoding", "upgrade", "host", "content-length",
})
NOT_TO_TENSORBOARD = HOP_BY_HOP | {"cookie", "authorization", "x-csrf-token"}
NOT_FROM_TENSORBOARD = HOP_BY_HOP | {"set-cookie", "server", "date"}  # uvicorn sends its own
PROXY_TIMEOUT = httpx.Timeout(120.0, connect=5.0)


class BadGatewayError(RunHistoryError):
    """A board's TensorBoard did not answer the proxy."""

    http_status = 502
    code = "tensorboard_unreachable"


class BoardRequest(BaseModel):
    """The body of ``POST /ui/api/tensorboard``: the ids of the runs to show."""

    runs: list[str]


def boards_of(request: Request) -> BoardManager:
    """The app's :class:`BoardManager` (``app.state.boards``)."""
    return request.app.state.boards


@router.post("/ui/api/tensorboard")
async def open_tensorboard(body: BoardRequest, request: Request, _csrf: Csrf) -> dict[str, str]:
    """Start (or reuse) a TensorBoard over ``runs``; the URL the browser goes to next."""
    board_id = await run_in_threadpool(boards_of(request).open, body.runs)
    return {"url": f"{board_path(board_id)}/"}


@router.api_route("/tensorboard/{board_id}", methods=PROXY_METHODS, include_in_schema=False)
async def board_root(board_id: str, _session: Session) -> RedirectResponse:
    """``/tensorboard/ID`` → ``/tensorboard/ID/`` (TensorBoard's page loads its files relative to it)."""
    return RedirectResponse(f"{board_path(board_id)}/", status_code=308)


@router.api_route("/tensorboard/{board_id}/{path:path}", methods=PROXY_METHODS, include_in_schema=False)
async def proxy(board_id: str, path: str, request: Request, _session: Session) -> Response:
    """Forward the request to the board's TensorBoard on loopback and stream its answer back."""
    port = boards_of(request).port_of(board_id)
    client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=PROXY_TIMEOUT)
    outgoing = client.build_request(
        request.method,
        _target(request),
        headers=_headers(request.headers.items(), NOT_TO_TENSORBOARD),
        content=request.stream() if request.method not in ("GET", "HEAD") else None,
    )
    try:
        answer = await client.send(outgoing, stream=True)
    except httpx.HTTPError as exc:
        await client.aclose()
        raise BadGatewayError(f"TensorBoard {board_id} did not answer ({type(exc).__name__}); open it again.") from exc
    return StreamingResponse(
        answer.aiter_raw(),
        status_code=answer.status_code,
        headers=_headers(answer.headers.items(), NOT_FROM_TENSORBOARD),
        background=BackgroundTask(_close, answer, client),
    )


def _target(request: Request) -> str:
    """The request's path (as the client encoded it) and query, unchanged."""
    raw = request.scope.get("raw_path")
    path = raw.decode("latin-1") if raw else request.url.path
    query = request.url.query
    return f"{path}?{query}" if query else path


def _headers(items: Iterable[tuple[str, str]], dropped: frozenset[str]) -> dict[str, str]:
    """The headers but the ``dropped`` ones (and those the Connection header names)."""
    items = list(items)
    named = {
        token.strip().lower()
        for name, value in items if name.lower() == "connection"
        for token in value.split(",")
    }
    return {name: value for name, value in items if name.lower() not in dropped and name.lower() not in named}


async def _close(answer: httpx.Response, client: httpx.AsyncClient) -> None:
    await answer.aclose()
    await client.aclose()
