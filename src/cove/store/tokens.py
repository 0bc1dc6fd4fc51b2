"""Scoped tokens: what each may do, for how long, and whether it was revoked. The token itself is signed with the
server's secret (``services.tokens``) and never stored."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine

from cove.store.tables import tokens


@dataclass
class TokenRecord:
    id: str
    key_id: str
    tenant_id: str
    sandbox_id: str
    session_id: str | None
    scopes: list[str]
    created_at: float
    expires_at: float
    revoked_at: float | None = None

    @classmethod
    def from_row(cls, row: RowMapping) -> TokenRecord:
        return cls(**dict(row))


class TokenStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def insert(self, record: TokenRecord) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(insert(tokens).values(**record.__dict__))

    async def get(self, token_id: str) -> TokenRecord | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(tokens).where(tokens.c.id == token_id))).mappings().first()
        return TokenRecord.from_row(row) if row else None

    async def list(self, *, tenant_id: str | None, live_at: float) -> list[TokenRecord]:
        """Tokens not revoked and not expired at ``live_at``; a tenant's only, unless ``tenant_id`` is None."""
        query = select(tokens).where(tokens.c.revoked_at.is_(None), tokens.c.expires_at > live_at)
        if tenant_id is not None:
            query = query.where(tokens.c.tenant_id == tenant_id)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query.order_by(tokens.c.created_at))).mappings().all()
        return [TokenRecord.from_row(row) for row in rows]

    async def revoke(self, token_id: str, at: float) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(update(tokens).where(tokens.c.id == token_id).values(revoked_at=at))
