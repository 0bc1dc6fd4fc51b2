"""Checkpoint metadata: which chain of layers each checkpoint is, and whose it was."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, insert, select
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine

from cove.store.tables import checkpoints


@dataclass
class CheckpointRecord:
    id: str
    sandbox_id: str
    name: str | None
    created_at: float
    size_bytes: int
    layers: list[str]
    tenant_id: str | None = None  # its sandbox's

    @classmethod
    def from_row(cls, row: RowMapping) -> CheckpointRecord:
        return cls(**dict(row))


class CheckpointStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def insert(self, record: CheckpointRecord) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(insert(checkpoints).values(**record.__dict__))

    async def get(self, checkpoint_id: str) -> CheckpointRecord | None:
        async with self._engine.connect() as conn:
            query = select(checkpoints).where(checkpoints.c.id == checkpoint_id)
            row = (await conn.execute(query)).mappings().first()
        return CheckpointRecord.from_row(row) if row else None

    async def list(self, sandbox_id: str | None = None, *, tenant_id: str | None = None) -> list[CheckpointRecord]:
        query = select(checkpoints).order_by(checkpoints.c.created_at)
        if tenant_id is not None:
            query = query.where(checkpoints.c.tenant_id == tenant_id)
        if sandbox_id is not None:
            query = query.where(checkpoints.c.sandbox_id == sandbox_id)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [CheckpointRecord.from_row(row) for row in rows]

    async def delete(self, checkpoint_id: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(delete(checkpoints).where(checkpoints.c.id == checkpoint_id))
