"""API tokens in the run-history database (table ``api_tokens``)."""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Iterator

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from runhistory.core.errors import NotFoundError
from runhistory.store.sql.engine import unavailable_as_error
from runhistory.store.sql.schema import api_tokens
from runhistory.store.tokens import MAX_TOKEN_LENGTH, TokenRecord, TokenStore, hash_token, new_token


class SqlTokenStore(TokenStore):
    """A :class:`TokenStore` on the same database as a :class:`~runhistory.store.sql.store.SqlRunStore`."""

    def __init__(self, engine: Engine, uri: str) -> None:
        self._engine = engine
        self._uri = uri

    def create(self, name: str) -> tuple[TokenRecord, str]:
        token_id, token = new_token()
        record = TokenRecord(token_id, name, time.time(), None)
        with self._writing() as connection:
            connection.execute(
                sa.insert(api_tokens).values(
                    id=token_id, name=name, token_hash=hash_token(token), created_time=record.created_time
                )
            )
        return record, token

    def list(self) -> list[TokenRecord]:
        with self._reading() as connection:
            rows = connection.execute(sa.select(api_tokens).order_by(api_tokens.c.created_time)).all()
        return [TokenRecord(row.id, row.name, row.created_time, row.revoked_time) for row in rows]

    def revoke(self, token_id: str) -> None:
        with self._writing() as connection:
            result = connection.execute(
                sa.update(api_tokens)
                .where(sa.or_(api_tokens.c.id == token_id, api_tokens.c.name == token_id))
                .where(api_tokens.c.revoked_time.is_(None))
                .values(revoked_time=time.time())
            )
        if result.rowcount == 0:
            raise NotFoundError(f"No active token with id or name {token_id!r}.")

    def is_active(self, token: str) -> bool:
        if not token or len(token) > MAX_TOKEN_LENGTH:
            return False
        query = sa.select(api_tokens.c.id).where(
            api_tokens.c.token_hash == hash_token(token), api_tokens.c.revoked_time.is_(None)
        )
        with self._reading() as connection:
            return connection.execute(query).first() is not None

    def any_active(self) -> bool:
        query = sa.select(api_tokens.c.id).where(api_tokens.c.revoked_time.is_(None)).limit(1)
        with self._reading() as connection:
            return connection.execute(query).first() is not None

    def any_record(self) -> bool:
        with self._reading() as connection:
            return connection.execute(sa.select(api_tokens.c.id).limit(1)).first() is not None

    @contextmanager
    def _reading(self) -> Iterator[sa.Connection]:
        with unavailable_as_error(self._uri), self._engine.connect() as connection:
            yield connection

    @contextmanager
    def _writing(self) -> Iterator[sa.Connection]:
        with unavailable_as_error(self._uri), self._engine.connect().execution_options(writing=True) as connection:
            with connection.begin():
                yield connection
