"""API keys: only their hashes are stored, so a copy of the database grants nothing."""

from __future__ import annotations

import hashlib
import secrets
import time

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from cove.store.tables import api_keys

KEY_PREFIX = "cove_"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


class KeyStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._known: dict[str, str] = {}  # key hash -> the key's id

    async def add(self, key: str, name: str) -> None:
        key_id = "key_" + secrets.token_hex(6)
        async with self._engine.begin() as conn:
            await conn.execute(
                insert(api_keys).values(id=key_id, key_hash=hash_key(key), name=name, created_at=time.time())
            )
        self._known[hash_key(key)] = key_id

    async def key_id(self, key: str) -> str | None:
        """The id of this key (``key_…``: what events say a key did, e.g. who answered an approval), or None
        when it is no key of this server."""
        digest = hash_key(key)
        if digest in self._known:
            return self._known[digest]
        async with self._engine.connect() as conn:
            found = (await conn.execute(select(api_keys.c.id).where(api_keys.c.key_hash == digest))).first()
        if found is None:
            return None
        self._known[digest] = str(found.id)
        return self._known[digest]

    async def is_valid(self, key: str) -> bool:
        return await self.key_id(key) is not None

    async def count(self) -> int:
        async with self._engine.connect() as conn:
            return len((await conn.execute(select(api_keys.c.id))).all())
