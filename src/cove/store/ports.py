"""Published ports: which port of which sandbox has a preview URL, public or behind a token, and which token its
expose gave (a scoped token with the ``preview`` scope, ``services.tokens``)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from cove.store.tables import ports


@dataclass(frozen=True)
class PortRecord:
    sandbox_id: str
    port: int
    public: bool
    token_id: str
    created_at: float
    tenant_id: str | None


class PortStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def insert(self, record: PortRecord) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(insert(ports).values(**record.__dict__))

    async def update(self, record: PortRecord) -> None:
        """Store what changed of an exposed port: whether it is public, the token its expose gives."""
        where = (ports.c.sandbox_id == record.sandbox_id) & (ports.c.port == record.port)
        async with self._engine.begin() as conn:
            await conn.execute(update(ports).where(where).values(public=record.public, token_id=record.token_id))

    async def all(self) -> list[PortRecord]:
        async with self._engine.connect() as conn:
            rows = (await conn.execute(select(ports).order_by(ports.c.sandbox_id, ports.c.port))).mappings().all()
        return [PortRecord(**row) for row in rows]

    async def delete(self, sandbox_id: str, port: int | None = None) -> None:
        """Forget one port of a sandbox, or all of them."""
        statement = delete(ports).where(ports.c.sandbox_id == sandbox_id)
        if port is not None:
            statement = statement.where(ports.c.port == port)
        async with self._engine.begin() as conn:
            await conn.execute(statement)
