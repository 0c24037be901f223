"""API tokens of the runhistory server, kept hashed (sha256) in the store's own database.

A token is shown once, when created: ``rh_<id>_<secret>``. The database keeps only its
sha256 digest, so a leaked database leaks no usable token.

When tokens are required, every request but ``GET /api/v1/health`` needs an active token
(a revoked one never passes). They are required when the server is started with
``--require-tokens``, or as soon as its database holds a token record, active *or
revoked*: revoking the last token closes the server (401 to everything) rather than
opening it, and so does a restart, since the records stay. Only a database that never
had a token, served without ``--require-tokens``, accepts requests without one (and the
server then refuses to listen beyond loopback).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

import sqlalchemy as sa

from runhistory.core.errors import NotFoundError, RunHistoryError
from runhistory.store.base import RunStore
from runhistory.store.sql.engine import unavailable_as_error
from runhistory.store.sql.schema import api_tokens


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


class TokenStore:
    """Create, list, revoke and check the tokens of a SQL run-history store."""

    def __init__(self, store: RunStore, *, require: bool = False) -> None:
        engine = getattr(store, "_engine", None)
        if engine is None:
            raise RunHistoryError(f"The store at {store.uri} keeps no tokens; give the server a SQL store.")
        self._engine = engine
        self._uri = store.uri
        self._required = require  # once True, stays True for this process (and records keep it so)

    def create(self, name: str) -> tuple[TokenRecord, str]:
        """A new token: its record and the token itself (shown once, never stored)."""
        token_id = secrets.token_hex(4)
        token = f"rh_{token_id}_{secrets.token_urlsafe(32)}"
        record = TokenRecord(token_id, name, time.time(), None)
        with self._engine.connect().execution_options(writing=True) as connection, connection.begin():
            connection.execute(
                sa.insert(api_tokens).values(
                    id=token_id, name=name, token_hash=hash_token(token), created_time=record.created_time
                )
            )
        return record, token

    def list(self) -> list[TokenRecord]:
        """Every token, active or revoked, oldest first."""
        with self._engine.connect() as connection:
            rows = connection.execute(sa.select(api_tokens).order_by(api_tokens.c.created_time)).all()
        return [TokenRecord(row.id, row.name, row.created_time, row.revoked_time) for row in rows]

    def revoke(self, token_id: str) -> None:
        """Revoke a token by its id (or its name); requests with it get 401 from then on."""
        with self._engine.connect().execution_options(writing=True) as connection, connection.begin():
            result = connection.execute(
                sa.update(api_tokens)
                .where(sa.or_(api_tokens.c.id == token_id, api_tokens.c.name == token_id))
                .where(api_tokens.c.revoked_time.is_(None))
                .values(revoked_time=time.time())
            )
        if result.rowcount == 0:
            raise NotFoundError(f"No active token with id or name {token_id!r}.")

    def any_active(self) -> bool:
        """Whether at least one token is active."""
        with self._engine.connect() as connection:
            query = sa.select(api_tokens.c.id).where(api_tokens.c.revoked_time.is_(None)).limit(1)
            return connection.execute(query).first() is not None

    def required(self) -> bool:
        """Whether every request needs a token: forced, or because a token (active or revoked) exists."""
        if not self._required:
            with unavailable_as_error(self._uri), self._engine.connect() as connection:
                self._required = self._any_record(connection)
        return self._required

    def check(self, token: str | None) -> bool:
        """Whether a request with this bearer token may pass: an active token, or none needed."""
        with unavailable_as_error(self._uri), self._engine.connect() as connection:
            if token and len(token) <= 256:
                query = sa.select(api_tokens.c.id).where(
                    api_tokens.c.token_hash == hash_token(token), api_tokens.c.revoked_time.is_(None)
                )
                if connection.execute(query).first() is not None:
                    return True
            if not self._required:
                self._required = self._any_record(connection)
            return not self._required

    @staticmethod
    def _any_record(connection: sa.Connection) -> bool:
        return connection.execute(sa.select(api_tokens.c.id).limit(1)).first() is not None
