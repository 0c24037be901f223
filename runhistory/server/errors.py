"""Every error of the runhistory server as one answer: ``{"error": code, "detail": sentence}``.

A :class:`~runhistory.core.errors.RunHistoryError` is answered with its class's ``http_status``
and stable ``code`` (the client rebuilds the class from the code). What is not one (FastAPI's
request validation, a metric batch that does not decode, a database refusal, an HTTP error of
the framework) is first translated by :data:`TRANSLATIONS`, one table. No answer ever echoes a
request body or grows with one: a detail is cut to :data:`MAX_DETAIL_CHARS`.
"""

from __future__ import annotations

import errno
from typing import Callable, Optional

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from runhistory.core import errors
from runhistory.protocol import wire
from runhistory.protocol.routes import ERROR_CODE_FIELD, ERROR_DETAIL_FIELD

MAX_DETAIL_CHARS = 1000  # the longest error sentence the server answers: never a client's whole input

# Headers that go with an error: a client retries a 503 after a moment, authenticates after a 401,
# and the rest of a body past a limit is not read, so the connection is closed rather than drained.
ERROR_HEADERS: dict[type[errors.RunHistoryError], dict[str, str]] = {
    errors.StoreUnavailableError: {"Retry-After": "1"},
    errors.UnauthorizedError: {"WWW-Authenticate": "Bearer"},
    errors.RequestTooLargeError: {"Connection": "close"},
}

# The framework's HTTP errors by status (a route that does not exist, a body past a limit while
# FastAPI reads it); any other status is answered as a RunHistoryError with that status (405...).
HTTP_STATUS_ERRORS: dict[int, type[errors.RunHistoryError]] = {
    cls.http_status: cls
    for cls in (
        errors.UnauthorizedError,
        errors.NotFoundError,
        errors.RequestTooLargeError,
        errors.InvalidRequestError,
        errors.StoreUnavailableError,
    )
}


def error_response(
    exc: errors.RunHistoryError, *, status: Optional[int] = None, headers: Optional[dict[str, str]] = None
) -> JSONResponse:
    """The answer to ``exc``: its code and first sentence, with its class's status (or ``status``)
    and :data:`ERROR_HEADERS` (plus ``headers``)."""
    detail = str(exc) or type(exc).__doc__ or "The request cannot be served."
    if len(detail) > MAX_DETAIL_CHARS:
        detail = detail[: MAX_DETAIL_CHARS - 30] + f"... ({len(detail)} characters)"
    answer_headers = {**_headers_of(exc), **(headers or {})}
    return JSONResponse(
        {ERROR_CODE_FIELD: exc.code, ERROR_DETAIL_FIELD: detail},
        status_code=status or exc.http_status,
        headers=answer_headers or None,
    )


def _headers_of(exc: errors.RunHistoryError) -> dict[str, str]:
    for cls, headers in ERROR_HEADERS.items():
        if isinstance(exc, cls):
            return headers
    return {}


def validation_sentence(exc: RequestValidationError) -> str:
    """The first problem of a request that its models refuse: where and what, never the input."""
    problems = exc.errors()
    if not problems:
        return "The request is not valid."
    first = problems[0]
    where = ".".join(str(part)[:64] or "''" for part in first.get("loc", ())) or "the request"
    what = str(first.get("msg", "is not valid"))[:200]
    more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
    return f"The request is not valid at {where}: {what}{more}."


def _os_error(exc: OSError) -> errors.RunHistoryError:
    """A file the artifact store could not keep: a bad name is the client's, anything else the store's."""
    detail = f"The file cannot be stored: {exc.strerror or exc}"
    bad_name = exc.errno in (errno.ENAMETOOLONG, errno.EISDIR, errno.ENOTDIR, errno.EEXIST, errno.EINVAL)
    return errors.ArtifactPathError(detail) if bad_name else errors.ArtifactStorageError(detail)


Translation = Callable[[Exception], errors.RunHistoryError]

# What the server answers for an exception that is not a RunHistoryError: (its class, the status
# when not the error's own, the error). The first row whose class matches wins.
TRANSLATIONS: tuple[tuple[type[Exception], Optional[int], Translation], ...] = (
    (RequestValidationError, None, lambda exc: errors.InvalidRequestError(validation_sentence(exc))),  # type: ignore[arg-type]
    (
        wire.TooLargeError,
        None,
        lambda exc: errors.RequestTooLargeError(f"The metric batch is too large: {exc}; send smaller batches."),
    ),
    (wire.WireError, None, lambda exc: errors.InvalidBatchError(f"Bad metric batch: {exc}")),
    (
        OverflowError,
        None,
        lambda exc: errors.RunHistoryError(f"A number in the request is out of the range the run history keeps: {exc}."),
    ),
    (
        UnicodeError,
        None,
        lambda _exc: errors.RunHistoryError(
            "The request holds text that is not valid Unicode (a lone surrogate?); send UTF-8 text."
        ),
    ),
    (sa.exc.NoResultFound, None, lambda _exc: errors.NotFoundError("A record the request refers to does not exist.")),
    (
        sa.exc.IntegrityError,
        None,
        lambda exc: errors.ConflictError(
            "The request conflicts with the stored run history (a missing or duplicate reference): "
            f"{getattr(exc, 'orig', exc)}"
        ),
    ),
    (OSError, None, _os_error),  # type: ignore[arg-type]
)


def http_error(exc: StarletteHTTPException) -> errors.RunHistoryError:
    """The framework's HTTP error as the RunHistoryError of its status (see :data:`HTTP_STATUS_ERRORS`)."""
    detail = exc.detail if isinstance(exc.detail, str) else "The request cannot be served."
    return HTTP_STATUS_ERRORS.get(exc.status_code, errors.RunHistoryError)(detail)


async def _on_runhistory_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, errors.RunHistoryError)
    return error_response(exc)


async def _on_http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    error = http_error(exc)
    status = None if error.http_status == exc.status_code else exc.status_code
    return error_response(error, status=status, headers=getattr(exc, "headers", None))


def _translated(status: Optional[int], translate: Translation):
    async def handler(_request: Request, exc: Exception) -> JSONResponse:
        return error_response(translate(exc), status=status)

    return handler


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error of ``app`` as :func:`error_response` does."""
    app.add_exception_handler(errors.RunHistoryError, _on_runhistory_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    for exc_class, status, translate in TRANSLATIONS:
        app.add_exception_handler(exc_class, _translated(status, translate))
