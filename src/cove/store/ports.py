"""Published ports: which port of which sandbox has a preview URL, public or behind its token."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from cove.store.tables import ports

TOKEN_PREFIX = "cpv_"
SECRET_BYTES = 32


@dataclass(frozen=True)
class PortRecord:
    sandbox_id: str
    port: int
    public: bool
    nonce: str
    created_at: float


def load_secret(path: Path) -> bytes:
    """The server's preview secret, made on first use (mode 0600, beside the admin key). Tokens are derived from
    it: deleting it changes every preview's token."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        secret = path.read_bytes()
        if len(secret) == SECRET_BYTES:
            return secret
        raise ValueError(f"{path} is not a preview secret ({len(secret)} bytes, not {SECRET_BYTES})") from None
    secret = secrets.token_bytes(SECRET_BYTES)
    with os.fdopen(fd, "wb") as handle:
        handle.write(secret)
    return secret


def derive_token(secret: bytes, record: PortRecord) -> str:
    """A preview's token: the same for the life of its row, and for that row only (a port closed and exposed
    again gets a new nonce, so a new token)."""
    message = f"{record.sandbox_id}/{record.port}/{record.nonce}".encode()
    digest = hmac.new(secret, message, hashlib.sha256).digest()
    return TOKEN_PREFIX + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def new_nonce() -> str:
    return secrets.token_hex(16)


class PortStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def insert(self, record: PortRecord) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(insert(ports).values(**record.__dict__))

    async def set_public(self, sandbox_id: str, port: int, public: bool) -> None:
        """Make an exposed port public or private; its nonce, so its token, stays."""
        where = (ports.c.sandbox_id == sandbox_id) & (ports.c.port == port)
        async with self._engine.begin() as conn:
            await conn.execute(update(ports).where(where).values(public=public))

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
