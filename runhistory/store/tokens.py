"""The API tokens of a team server, as a store keeps them: hashed, never the token itself.

A token is shown once, when created: ``rh_<id>_<secret>``. The store keeps only its sha256
digest, so a leaked database leaks no usable token. When a server requires tokens is the
server's policy (:mod:`runhistory.server.auth`); this module is only their storage.
"""

from __future__ import annotations

import abc
import hashlib
import secrets
from dataclasses import dataclass

TOKEN_PREFIX = "rh_"
MAX_TOKEN_LENGTH = 256  # longer bearer values are refused without hashing them


@dataclass(frozen=True)
class TokenRecord:
    """A token as stored: never the token itself."""

    id: str
    name: str
    created_time: float
    revoked_time: float | None


def hash_token(token: str) -> str:
    """The sha256 hex digest under which a token is stored."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> tuple[str, str]:
    """A fresh ``(token id, token)``; the token embeds its id so that a user can tell them apart."""
    token_id = secrets.token_hex(4)
    return token_id, f"{TOKEN_PREFIX}{token_id}_{secrets.token_urlsafe(32)}"


class TokenStore(abc.ABC):
    """Create, list, revoke and look up API tokens."""

    @abc.abstractmethod
    def create(self, name: str) -> tuple[TokenRecord, str]:
        """A new token: its record and the token itself (shown once, never stored)."""

    @abc.abstractmethod
    def list(self) -> list[TokenRecord]:
        """Every token, active or revoked, oldest first."""

    @abc.abstractmethod
    def revoke(self, token_id: str) -> None:
        """Revoke an active token by its id or its name; NotFoundError when there is none."""

    @abc.abstractmethod
    def is_active(self, token: str) -> bool:
        """Whether ``token`` is a created, not revoked, token."""

    @abc.abstractmethod
    def any_active(self) -> bool:
        """Whether at least one token is active."""

    @abc.abstractmethod
    def any_record(self) -> bool:
        """Whether any token was ever created (revoked ones included)."""
