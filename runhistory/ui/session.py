"""Sign-in for the UI: the server's API token kept in an HttpOnly cookie, and a CSRF token.

The cookie ``runhistory_session`` holds the API token itself (HttpOnly, SameSite=Strict, Path=/,
Secure over https), so that a revoked token closes its sessions at once: every page and
``/ui/api`` request checks it with the server's :class:`~runhistory.server.auth.TokenGate`.
The CSRF token is an HMAC of the cookie under a secret made when the process starts (also when
no token is needed, embedded on loopback): every POST or DELETE under ``/ui/api`` sends it in
``X-CSRF-Token``, which a cross-site page cannot read. Pages without a session redirect (303) to
``/signin?next=...``; JSON answers 401.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Annotated, Optional
from urllib.parse import quote

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from runhistory.core import errors
from runhistory.server.auth import TokenGate

COOKIE_NAME = "runhistory_session"
CSRF_HEADER = "X-CSRF-Token"
JSON_PREFIXES = ("/ui/api/", "/tensorboard/")  # answered 401 rather than redirected to the sign-in page
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class SignInRequired(errors.UnauthorizedError):
    """A page asked for without a valid session: the app redirects it to the sign-in page."""

    def __init__(self, next_path: str) -> None:
        super().__init__("Sign in with an API token to see this page.")
        self.next_path = next_path


class CsrfError(errors.RunHistoryError):
    """A request that changes something came without the page's CSRF token."""

    http_status = 403
    code = "csrf"


class ForeignHostError(errors.RunHistoryError):
    """A UI without sign-in was asked under a host name that is not loopback (DNS rebinding)."""

    http_status = 403
    code = "foreign_host"


LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def check_loopback_host(request: Request) -> None:
    """Without sign-in, the UI answers only to loopback host names: a web page elsewhere whose name
    was pointed at 127.0.0.1 (DNS rebinding) would otherwise read it and post to it as its own."""
    host = (request.url.hostname or "").strip("[]").lower()
    if host not in LOOPBACK_HOSTS:
        raise ForeignHostError(
            f"This UI has no sign-in, so it answers only at a loopback address (http://127.0.0.1:{request.url.port or 80}/), "
            f"not at {host[:100]!r}."
        )


class Sessions:
    """The UI's sessions over the server's token gate: checks cookies, makes CSRF tokens."""

    def __init__(self, gate: TokenGate) -> None:
        self.gate = gate
        self._secret = secrets.token_bytes(32)  # per process: a restart asks for the token again

    def required(self) -> bool:
        """Whether a session (a signed-in token) is needed at all."""
        return self.gate.required()

    def valid(self, token: str | None) -> bool:
        """Whether a cookie's token passes the gate (any request passes when no token is needed)."""
        return self.gate.check(token)

    def tokens_active(self, token: str) -> bool:
        """Whether ``token`` is an active API token (what signing in checks)."""
        return self.gate.tokens.is_active(token)

    def csrf_token(self, token: str | None) -> str:
        """The CSRF token of the session whose cookie holds ``token`` (None: no sign-in needed)."""
        return hmac.new(self._secret, (token or "").encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, token: str | None, sent: str | None) -> bool:
        """Whether ``sent`` is this session's CSRF token."""
        return bool(sent) and hmac.compare_digest(self.csrf_token(token), sent or "")


def sessions_of(request: Request) -> Sessions:
    """The app's :class:`Sessions` (``app.state.sessions``)."""
    return request.app.state.sessions


def cookie_token(request: Request) -> str | None:
    """The API token in the session cookie, or None."""
    return request.cookies.get(COOKIE_NAME) or None


def next_path_of(request: Request) -> str:
    """The path (with its query) to come back to after signing in."""
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


def _session_passes(request: Request, token: str | None) -> bool:
    """Whether the cookie's token passes (the store is asked: in a thread); without sign-in, only
    at a loopback host name (:func:`check_loopback_host`)."""
    sessions = sessions_of(request)
    if not sessions.required():
        check_loopback_host(request)
        return True
    return sessions.valid(token)


async def require_session(request: Request) -> str | None:
    """FastAPI dependency: the session's token; :class:`SignInRequired` (a 303 to ``/signin``) for
    a page, :class:`~runhistory.core.errors.UnauthorizedError` (401) for JSON, when it is missing."""
    token = cookie_token(request)
    if await run_in_threadpool(_session_passes, request, token):
        return token
    if request.url.path.startswith(JSON_PREFIXES):
        raise errors.UnauthorizedError("Sign in first: this request needs a valid session (an API token).")
    raise SignInRequired(next_path_of(request))


async def require_csrf(request: Request, token: Annotated[Optional[str], Depends(require_session)]) -> str | None:
    """FastAPI dependency (after :func:`require_session`): a request that changes something must
    carry the session's CSRF token in ``X-CSRF-Token`` (403 otherwise)."""
    if request.method in UNSAFE_METHODS and not sessions_of(request).csrf_ok(token, request.headers.get(CSRF_HEADER)):
        raise CsrfError(f"This request needs the page's CSRF token in the {CSRF_HEADER} header; reload the page.")
    return token


def check_same_origin(request: Request) -> None:
    """A form posted from another site (its ``Origin`` is not this server) is refused (403): signing
    in or out takes no CSRF token, since there is no session yet to tie one to."""
    origin = request.headers.get("origin")
    own = f"{request.url.scheme}://{request.url.netloc}"
    if origin is not None and origin != own:
        raise CsrfError(f"A sign-in form must come from this server ({own}), not from {origin[:100]}.")


def signin_url(next_path: str) -> str:
    """The sign-in page that returns to ``next_path``."""
    return "/signin?next=" + quote(next_path, safe="/")


def safe_next(next_path: str | None) -> str:
    """A ``next`` that stays on this site (a path, never ``//host`` or a URL), else ``/``."""
    if not next_path or not next_path.startswith("/") or next_path.startswith("//") or "\\" in next_path:
        return "/"
    return next_path


Session = Annotated[Optional[str], Depends(require_session)]
Csrf = Annotated[Optional[str], Depends(require_csrf)]
