"""Sandbox metadata: what exists, in which state, with which spec — the list that survives a restart."""

from __future__ import annotations

import json
import os
import sqlite3
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, and_, delete, func, insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.dml import Update

from cove.store.tables import HIDDEN_STATES, sandbox_labels, sandboxes
from cove.store.writer import SqliteWriter

FIRST_UID = 200_000
# Each server home draws its sandboxes' uids from a range of its own (chosen by the home's path), so that two
# servers on one host do not hand out the same uids: per-uid kernel limits and identities stay per sandbox.
UID_RANGES = 1024
UIDS_PER_RANGE = 1 << 20


def first_uid(home: Path) -> int:
    return FIRST_UID + (zlib.crc32(os.fsencode(home.resolve())) % UID_RANGES) * UIDS_PER_RANGE


# Columns SQLAlchemy's JSON type stores as JSON text: so does the writer's own SQL.
_JSON_COLUMNS = frozenset(column.name for column in sandboxes.c if isinstance(column.type, JSON))


@dataclass
class SandboxRecord:
    id: str
    state: str
    created_at: float
    updated_at: float
    last_active_at: float
    uid: int
    spec: dict[str, Any]
    enforced: dict[str, Any]
    labels: dict[str, str] = field(default_factory=dict)
    stop_reason: str | None = None
    expires_at: float | None = None
    idle_timeout: float | None = None
    pid: int | None = None
    init_pid: int | None = None
    tenant_id: str | None = None  # None only while pooled

    @classmethod
    def from_row(cls, row: RowMapping) -> SandboxRecord:
        return cls(**dict(row))


def _update(sandbox_id: str, values: dict[str, Any]) -> Update:
    return update(sandboxes).where(sandboxes.c.id == sandbox_id).values(**values, updated_at=time.time())


class SandboxStore:
    def __init__(self, engine: AsyncEngine, writer: SqliteWriter, uid_base: int = FIRST_UID) -> None:
        self._engine = engine
        self._writer = writer
        self._uid_base = uid_base

    async def next_uid(self) -> int:
        """A host uid no other sandbox has used: uids are never reused, so no stale file can be inherited."""
        async with self._engine.connect() as conn:
            highest = (await conn.execute(select(func.max(sandboxes.c.uid)))).scalar()
        return self._uid_base if highest is None else int(highest) + 1

    async def insert(self, record: SandboxRecord) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(insert(sandboxes).values(**record.__dict__))
            if record.labels:
                await conn.execute(
                    insert(sandbox_labels),
                    [{"sandbox_id": record.id, "key": k, "value": v} for k, v in record.labels.items()],
                )

    async def get(self, sandbox_id: str) -> SandboxRecord | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(sandboxes).where(sandboxes.c.id == sandbox_id))).mappings().first()
        return SandboxRecord.from_row(row) if row else None

    async def list(
        self, *, state: str | None = None, labels: dict[str, str] | None = None, tenant_id: str | None = None
    ) -> list[SandboxRecord]:
        """Sandboxes in ``state`` (every user's sandbox without one), with ``labels``, of ``tenant_id`` (None:
        every tenant's)."""
        query = select(sandboxes).order_by(sandboxes.c.created_at)
        if tenant_id is not None:
            query = query.where(sandboxes.c.tenant_id == tenant_id)
        if state:
            query = query.where(sandboxes.c.state == state)
        else:
            query = query.where(sandboxes.c.state.not_in(HIDDEN_STATES))
        for key, value in (labels or {}).items():
            match = select(sandbox_labels.c.sandbox_id).where(
                and_(sandbox_labels.c.key == key, sandbox_labels.c.value == value)
            )
            query = query.where(sandboxes.c.id.in_(match))
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [SandboxRecord.from_row(row) for row in rows]

    async def update(self, sandbox_id: str, **values: Any) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(_update(sandbox_id, values))

    async def update_returning(self, sandbox_id: str, **values: Any) -> SandboxRecord | None:
        """``update``, answering with the row as it now is, in one statement on the hot-path writer (a claim does
        this on the path of every create: through the engine it took about 2 ms, a third of the create)."""
        values["updated_at"] = time.time()
        columns = [sandboxes.c[name].name for name in values]  # a name that is no column raises here
        statement = f"UPDATE {sandboxes.name} SET {', '.join(f'{c} = ?' for c in columns)} WHERE id = ? RETURNING *"
        parameters = [json.dumps(v) if c in _JSON_COLUMNS else v for c, v in values.items()] + [sandbox_id]

        def write(connection: sqlite3.Connection) -> dict[str, Any] | None:
            cursor = connection.execute(statement, parameters)
            row = cursor.fetchone()
            return dict(zip([d[0] for d in cursor.description], row, strict=True)) if row is not None else None

        row = await self._writer.transaction(write)
        if row is None:
            return None
        return SandboxRecord(**{c: json.loads(v) if c in _JSON_COLUMNS else v for c, v in row.items()})

    async def set_labels(self, sandbox_id: str, labels: dict[str, str]) -> None:
        """Replace a sandbox's labels (a warm-pool sandbox gets its user's labels when it is claimed)."""
        async with self._engine.begin() as conn:
            await conn.execute(update(sandboxes).where(sandboxes.c.id == sandbox_id).values(labels=labels))
            await conn.execute(delete(sandbox_labels).where(sandbox_labels.c.sandbox_id == sandbox_id))
            if labels:
                await conn.execute(
                    insert(sandbox_labels),
                    [{"sandbox_id": sandbox_id, "key": k, "value": v} for k, v in labels.items()],
                )
