"""The sign-in page: take an API token, check it with the server's token gate, keep it in the
session cookie (HttpOnly, SameSite=Strict, Path=/, Secure over https); and sign-out."""

from __future__ import annotations

from typing import Annotated

from urllib.parse import parse_qs

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from runhistory.ui.rendering import render
from runhistory.ui.session import COOKIE_NAME, check_same_origin, safe_next, sessions_of

router = APIRouter(include_in_schema=False)
MAX_TOKEN_CHARS = 512


@router.get("/signin")
def signin_page(request: Request, next: Annotated[str, Query(max_length=4096)] = "/") -> Response:  # noqa: A002
    """The sign-in form (straight on to ``next`` when no token is needed)."""
    if not sessions_of(request).required():
        return RedirectResponse(safe_next(next), status_code=303)
    return render(request, "signin.html", title="Sign in", next=safe_next(next), error=None)


@router.post("/signin")
async def signin(request: Request) -> Response:
    """Check the form's token; on success keep it in the session cookie and go on to ``next``."""
    check_same_origin(request)
    form = parse_qs((await request.body()).decode("utf-8", "replace"), max_num_fields=8)
    token = (form.get("token") or [""])[0].strip()[:MAX_TOKEN_CHARS]
    next_path = safe_next((form.get("next") or ["/"])[0])
    if not token or not await run_in_threadpool(sessions_of(request).tokens_active, token):
        error = "Give an API token." if not token else "That token is not valid (unknown or revoked)."
        return render(request, "signin.html", status_code=401, title="Sign in", next=next_path, error=error)
    answer = RedirectResponse(next_path, status_code=303)
    answer.set_cookie(
        COOKIE_NAME, token, httponly=True, samesite="strict", path="/", secure=request.url.scheme == "https"
    )
    return answer


@router.post("/signout")
def signout(request: Request) -> Response:
    """Forget the session cookie and show the sign-in page."""
    check_same_origin(request)
    answer = RedirectResponse("/signin", status_code=303)
    answer.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="strict", secure=request.url.scheme == "https")
    return answer
