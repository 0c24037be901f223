"""Requests to a runhistory server: its token, its errors rebuilt as runhistory's, retries.

A request that the server cannot take right now (it cannot be reached, or answers 5xx without
naming an error that stays: a full disk, a newer schema) is :class:`Retry`; :meth:`HttpClient.request` retries it with :data:`BACKOFF` for up to
``$RUNHISTORY_HTTP_RETRY_TIMEOUT`` seconds, then raises
:class:`~runhistory.core.errors.StoreUnavailableError`. A refusal (4xx) is the error class
whose stable code the server sent (:func:`runhistory.core.errors.error_for_code`).
"""

from __future__ import annotations

from typing import Any, NoReturn

import httpx
import tenacity

from runhistory.core import errors, settings
from runhistory.client.credentials import normalize_server_url, resolve_token
from runhistory.protocol.routes import API_PREFIX, AUTHORIZATION_HEADER, ERROR_CODE_FIELD, ERROR_DETAIL_FIELD

BACKOFF = tenacity.wait_exponential(multiplier=0.05, max=2.0)
"""The wait between two tries of what may pass: 0.05 s, doubling, at most 2 s."""

_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout)  # the request cannot have reached the server


class Retry(Exception):
    """Sending failed in a way that may pass (server unreachable, 5xx): try again later."""


class HttpClient:
    """An httpx client on one server: the token, errors mapped back to runhistory's, retries."""

    def __init__(self, url: str, token: str | None = None) -> None:
        self.url = normalize_server_url(url)
        self.token = resolve_token(self.url, token)
        self._client = self._new_client()

    def _new_client(self) -> httpx.Client:
        headers = {AUTHORIZATION_HEADER: f"Bearer {self.token}"} if self.token else {}
        return httpx.Client(
            base_url=self.url,
            headers=headers,
            timeout=httpx.Timeout(120.0, connect=5.0),
            limits=httpx.Limits(max_connections=16, max_keepalive_connections=8),
        )

    def after_fork(self) -> None:
        """In a forked child: a connection pool of its own."""
        self._client = self._new_client()

    def close(self) -> None:
        """Close the connections."""
        self._client.close()

    def once(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request (``path`` under the API prefix); :class:`Retry` when the server cannot be
        reached or is unavailable, the server's error when it refuses."""
        try:
            response = self._client.request(method, API_PREFIX + path, **kwargs)
        except httpx.TransportError as exc:
            raise Retry(f"the runhistory server at {self.url} cannot be reached ({type(exc).__name__}: {exc})") from exc
        if response.status_code < 400:
            return response
        code, detail = _error_body(response)
        if response.status_code >= 500 and known_error_class(code) in _MAY_PASS:
            raise Retry(f"the runhistory server at {self.url} answered {response.status_code}: {response.text[:200]}")
        raise_error(response.status_code, code, detail, self.url)

    def request(self, method: str, path: str, *, idempotent: bool = True, **kwargs: Any) -> httpx.Response:
        """A request, retried with a backoff while the server is unreachable (a request that is
        not idempotent only when it cannot have reached the server)."""
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(lambda exc: may_retry(exc, idempotent)),
            wait=BACKOFF,
            stop=tenacity.stop_before_delay(settings.HTTP_RETRY_TIMEOUT.positive_number()),
            reraise=True,
        )
        try:
            return retrying(self.once, method, path, **kwargs)
        except Retry as exc:
            raise errors.StoreUnavailableError(str(exc)) from None  # may pass: not a refusal

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        """:meth:`request`, its answer decoded from JSON."""
        return self.request(method, path, **kwargs).json()


def may_retry(exc: BaseException, idempotent: bool) -> bool:
    """Whether a failed request may be sent again: it may pass, and sending it twice is harmless
    (it is idempotent, or it cannot have reached the server)."""
    return isinstance(exc, Retry) and (idempotent or isinstance(exc.__cause__, _NOT_SENT))


def raise_error(status: int, code: object, detail: str | None, url: str) -> NoReturn:
    """Raise the runhistory error a server answered with (its ``status``, the stable ``code`` and
    one-sentence ``detail`` of its body): the class of the code."""
    message = detail or f"HTTP {status}"
    if status == 401:
        raise errors.UnauthorizedError(
            f"The runhistory server at {url} refused the request (401): {message} "
            f"Give a token (Workspace(..., token=...), ${settings.TOKEN.name}, or `runhistory login {url}`)."
        )
    if status == 413:
        raise errors.RequestTooLargeError(f"The runhistory server at {url} refused a request as too large (413): {message}")
    raise error_class(code, status)(message)


def _error_body(response: httpx.Response) -> tuple[object, str | None]:
    """The code and the one-sentence detail of an error answer (FastAPI's own validation errors
    list their fields instead)."""
    try:
        body = response.json()
    except ValueError:
        return None, response.text[:500]
    if not isinstance(body, dict):
        return None, response.text[:500]
    detail = body.get(ERROR_DETAIL_FIELD)
    if isinstance(detail, list):  # a FastAPI validation error
        detail = "; ".join(f"{'.'.join(map(str, item.get('loc', [])))}: {item.get('msg')}" for item in detail)
    return body.get(ERROR_CODE_FIELD), None if detail is None else str(detail)


# transition: servers from before the stable codes send the class name; drop once they are gone.
_CLASSES_BY_NAME = {
    name: value
    for name, value in vars(errors).items()
    if isinstance(value, type) and issubclass(value, errors.RunHistoryError) and value.__module__ == errors.__name__
}


# What a 5xx answer may carry and still be retried: no known code (a proxy's 502, a crash), the
# root class (an error the server could not name), or a store that is down for now.
_MAY_PASS = (None, errors.RunHistoryError, errors.StoreUnavailableError)


def known_error_class(code: object) -> type[errors.RunHistoryError] | None:
    """The error class whose stable ``code`` this is, None for an unknown code."""
    cls = errors.error_for_code(code, 0)
    if cls.code == code:
        return cls
    return _CLASSES_BY_NAME.get(code) if isinstance(code, str) else None  # transition: an old server's class name


def error_class(code: object, status: int) -> type[errors.RunHistoryError]:
    """The error class of a stable ``code`` an answer of ``status`` carried (for an unknown code,
    the class of the status)."""
    return known_error_class(code) or errors.error_for_code(code, status)
