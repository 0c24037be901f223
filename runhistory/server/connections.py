"""Connection limits of the runhistory server: header and body read timeouts, a cap on open connections.

uvicorn times out idle keep-alive connections only: a client that sends half its headers, or
stops in the middle of a body, holds a connection (and a file descriptor) for ever. The
protocol made by :func:`guarded_protocol` (uvicorn's h11 protocol, with timers) closes

- a connection whose request headers are not complete ``header_timeout`` seconds after
  it opened (or after the first byte of a following request on a kept-alive connection),
  however slowly it trickles bytes;
- a connection whose request body sends nothing for ``body_timeout`` seconds (while the
  server is reading it: a handler that has not asked for more is not the client's fault);

and, past ``max_connections`` open connections, closes the oldest connections that are
waiting for request headers (those that never completed a request first, then idle
kept-alive ones) rather than refusing the newcomer, so that a flood of half-sent requests
never locks out a client that sends whole ones. Each limit has a setting of the server
(see :meth:`ConnectionLimits.from_settings`).
"""

from __future__ import annotations

import resource
import socket
from dataclasses import dataclass
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from runhistory.core import settings

DRAIN_SECONDS = 2.0  # how long the rest of a body nobody reads (answered early: 401, 404) is discarded
RESERVED_FILES = 128  # descriptors kept for the database, run files and logs, beyond connections
_TIMEOUT_ANSWER = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


@dataclass(frozen=True)
class ConnectionLimits:
    """How long a client may take to send its headers and each part of its body, and how
    many connections may be open at once."""

    header_timeout: float  # seconds
    body_timeout: float  # seconds
    max_connections: int

    @classmethod
    def from_settings(cls) -> "ConnectionLimits":
        """The limits of ``$RUNHISTORY_SERVER_HEADER_TIMEOUT``, ``_BODY_TIMEOUT`` and ``_MAX_CONNECTIONS``
        (or their defaults); a value that is not a positive number is :class:`SettingError`."""
        return cls(
            header_timeout=settings.SERVER_HEADER_TIMEOUT.positive_number(),
            body_timeout=settings.SERVER_BODY_TIMEOUT.positive_number(),
            max_connections=int(settings.SERVER_MAX_CONNECTIONS.positive_number()),
        )

    def fitted_to_open_files(self) -> "ConnectionLimits":
        """These limits with ``max_connections`` lowered to what the process may open
        (after raising its soft limit of open files to the hard one)."""
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard == resource.RLIM_INFINITY or hard > soft:
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
                soft = hard
            except (ValueError, OSError):
                pass  # some systems cap below the hard limit: keep the soft one
        if soft == resource.RLIM_INFINITY:
            return self
        room = max(16, soft - RESERVED_FILES)
        return self if self.max_connections <= room else ConnectionLimits(self.header_timeout, self.body_timeout, room)


def _send_at_once(transport: Any) -> None:
    """Turn Nagle's algorithm off for a client connection. asyncio does it only for sockets made
    with ``IPPROTO_TCP`` as their protocol, which the server's own listening socket is not: a
    response written in two parts then waited ~40 ms for the client's delayed ACK, every request."""
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def guarded_protocol(limits: ConnectionLimits) -> type[H11Protocol]:
    """uvicorn's h11 protocol with ``limits`` (pass it as ``uvicorn.Config(http=...)``)."""
    # Connections waiting for request headers, oldest first (dicts keep insertion order):
    # those that never completed a request, and kept-alive ones between requests.
    fresh: dict[GuardedH11Protocol, None] = {}
    idle: dict[GuardedH11Protocol, None] = {}

    class GuardedH11Protocol(H11Protocol):
        """One connection, with its header and body timers."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._header_timer: Any = None
            self._body_timer: Any = None
            self._completed_requests = 0
            self._draining = False

        def connection_made(self, transport: Any) -> None:  # type: ignore[override]
            super().connection_made(transport)
            _send_at_once(transport)
            self._wait_for_headers(start_clock=True)
            self._enforce_cap()

        def connection_lost(self, exc: Exception | None) -> None:
            self._stop_waiting()
            self._cancel_body_timer()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self in idle and self._header_timer is None:
                self._header_timer = self.loop.call_later(limits.header_timeout, self._on_header_timeout)
            super().data_received(data)
            self._follow_state()

        def on_response_complete(self) -> None:
            self._completed_requests += 1
            super().on_response_complete()
            self._follow_state()

        def _follow_state(self) -> None:
            """Move the timers along with the request: headers complete, body read, next request."""
            if self.transport.is_closing():
                return
            state = self.conn.their_state
            if state is h11.IDLE:
                self._draining = False
                if self not in fresh and self not in idle:
                    self._cancel_body_timer()
                    self._wait_for_headers(start_clock=False)  # the keep-alive timer runs until a byte comes
                return
            self._stop_waiting()
            if state is not h11.SEND_BODY:
                self._cancel_body_timer()
            elif self.conn.our_state in (h11.DONE, h11.MUST_CLOSE):
                # answered already: what still comes is discarded, for a moment only
                if not self._draining:
                    self._draining = True
                    self._cancel_body_timer()
                    self._body_timer = self.loop.call_later(min(DRAIN_SECONDS, limits.body_timeout), self._close)
            else:
                self._cancel_body_timer()
                self._body_timer = self.loop.call_later(limits.body_timeout, self._on_body_timeout)

        def _wait_for_headers(self, *, start_clock: bool) -> None:
            (idle if self._completed_requests else fresh)[self] = None
            if start_clock:
                self._header_timer = self.loop.call_later(limits.header_timeout, self._on_header_timeout)

        def _stop_waiting(self) -> None:
            fresh.pop(self, None)
            idle.pop(self, None)
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _cancel_body_timer(self) -> None:
            if self._body_timer is not None:
                self._body_timer.cancel()
                self._body_timer = None

        def _on_header_timeout(self) -> None:
            self._header_timer = None
            if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
                self.transport.write(_TIMEOUT_ANSWER)
                self._close()

        def _on_body_timeout(self) -> None:
            self._body_timer = None
            if self.transport.is_closing() or self.conn.their_state is not h11.SEND_BODY:
                return
            if self.flow.read_paused:  # the handler has not asked for more yet: not a stall
                self._body_timer = self.loop.call_later(limits.body_timeout, self._on_body_timeout)
                return
            self._close()

        def _close(self) -> None:
            self._stop_waiting()
            self._cancel_body_timer()
            self.transport.close()

        def _enforce_cap(self) -> None:
            """Past the cap, close the oldest connections waiting for headers (this one last)."""
            while len(self.connections) > limits.max_connections:
                waiting = fresh if fresh else idle
                if not waiting:
                    break
                oldest = next(iter(waiting))
                oldest._close()
                self.connections.discard(oldest)  # closed: its connection_lost comes on a later turn
                if oldest is self:
                    break

    return GuardedH11Protocol
