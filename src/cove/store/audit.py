"""The audit trail's storage: one row per call that changed something, newest first when read.

Rows are written on the path of the calls they record (every prompt among them), so they go through the hot-path
writer (``store.writer``): one hand-off and a plain INSERT. Reads, filtered by tenant, action and time, stay on
the engine; ``prune`` drops what is older than the server keeps.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine

from cove.store.tables import audit
from cove.store.writer import SqliteWriter

_INSERT = f"INSERT INTO {audit.name} (time, by, tenant_id, action, target, status, client) VALUES (?, ?, ?, ?, ?, ?, ?)"


@dataclass(frozen=True)
class AuditRecord:
    time: float
    by: str | None
    tenant_id: str | None
    action: str
    target: str | None
    status: int
    client: str | None
    id: int = 0  # given by the database

    @classmethod
    def from_row(cls, row: RowMapping) -> AuditRecord:
        return cls(**dict(row))


@dataclass(frozen=True)
class AuditQuery:
    tenant_id: str | None = None
    action: str | None = None
    since: float | None = None
    until: float | None = None
    before: int | None = None  # the id of the last row of the previous page
    limit: int = 1000


class AuditStore:
    def __init__(self, engine: AsyncEngine, writer: SqliteWriter) -> None:
        self._engine = engine
        self._writer = writer

    async def add(self, record: AuditRecord) -> None:
        row = (record.time, record.by, record.tenant_id, record.action, record.target, record.status, record.client)

        def write(connection: sqlite3.Connection) -> None:
            connection.execute(_INSERT, row)

        await self._writer.transaction(write)

    async def query(self, query: AuditQuery) -> list[AuditRecord]:
        statement = select(audit).order_by(audit.c.id.desc()).limit(query.limit)
        if query.tenant_id is not None:
            statement = statement.where(audit.c.tenant_id == query.tenant_id)
        if query.action is not None:
            statement = statement.where(audit.c.action == query.action)
        if query.since is not None:
            statement = statement.where(audit.c.time >= query.since)
        if query.until is not None:
            statement = statement.where(audit.c.time < query.until)
        if query.before is not None:
            statement = statement.where(audit.c.id < query.before)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(statement)).mappings().all()
        return [AuditRecord.from_row(row) for row in rows]

    async def prune(self, before: float) -> int:
        async with self._engine.begin() as conn:
            return (await conn.execute(delete(audit).where(audit.c.time < before))).rowcount
