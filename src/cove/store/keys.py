"""API keys: only their hashes are stored, so a copy of the database grants nothing."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine

from cove.store.tables import api_keys

KEY_PREFIX = "cove_"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def new_key_id() -> str:
    return "key_" + secrets.token_hex(6)


@dataclass
class KeyRecord:
    id: str
    key_hash: str
    name: str
    created_at: float
    admin: int = 0
    quotas: dict[str, Any] | None = None
    revoked_at: float | None = None

    @classmethod
    def from_row(cls, row: RowMapping) -> KeyRecord:
        return cls(**dict(row))


class KeyStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def insert(self, record: KeyRecord) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(insert(api_keys).values(**record.__dict__))

    async def all(self) -> list[KeyRecord]:
        async with self._engine.connect() as conn:
            rows = (await conn.execute(select(api_keys).order_by(api_keys.c.created_at))).mappings().all()
        return [KeyRecord.from_row(row) for row in rows]

    async def update(self, key_id: str, **values: Any) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(**values))
