"""When the runhistory server needs an API token, and whether a request's token passes.

When tokens are required, every request but ``GET /api/v1/health`` needs an active token
(a revoked one never passes). They are required when the server is started with
``--require-tokens``, or as soon as its database holds a token record, active *or
revoked*: revoking the last token closes the server (401 to everything) rather than
opening it, and so does a restart, since the records stay. Only a database that never
had a token, served without ``--require-tokens``, accepts requests without one (and the
server then refuses to listen beyond loopback). The tokens themselves are kept by the
store (:mod:`runhistory.store.tokens`).
"""

from __future__ import annotations

from runhistory.store.tokens import TokenStore


class TokenGate:
    """The server's token policy over a :class:`TokenStore`."""

    def __init__(self, tokens: TokenStore, *, require: bool = False) -> None:
        self.tokens = tokens
        self._required = require  # once True, stays True for this process (and records keep it so)

    def required(self) -> bool:
        """Whether every request needs a token: forced, or because a token (active or revoked) exists."""
        if not self._required:
            self._required = self.tokens.any_record()
        return self._required

    def check(self, token: str | None) -> bool:
        """Whether a request with this bearer token may pass: an active token, or none needed."""
        if token and self.tokens.is_active(token):
            return True
        return not self.required()
