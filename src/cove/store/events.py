"""The event log's storage: events appended in batches, together with their session's cursor, atomically.

Appends are the hot path of every agent turn, so they go through the hot-path writer (``store.writer``): one
hand-off and plain SQL per batch. Reads stay on the engine.
"""

from __future__ import annotations

import functools
import json
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import JSON, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from cove.store.tables import agent_sessions, events
from cove.store.writer import SqliteWriter


@dataclass(frozen=True, slots=True)
class StoredEvent:
    seq: int
    type: str
    data: str  # the event's JSON text


_INSERT = f"INSERT INTO {events.name} (session_id, seq, type, data) VALUES (?, ?, ?, ?)"
# Looked up once: SQLAlchemy's column lookups cost more than the rest of a batch's preparation.
_JSON_COLUMNS = frozenset(column.name for column in agent_sessions.c if isinstance(column.type, JSON))


@functools.cache
def _update_statement(columns: tuple[str, ...]) -> str:
    return f"UPDATE {agent_sessions.name} SET {', '.join(f'{c} = ?' for c in columns)} WHERE id = ?"


class EventStore:
    def __init__(self, engine: AsyncEngine, writer: SqliteWriter) -> None:
        self._engine = engine
        self._writer = writer

    async def append(self, session_id: str, batch: list[StoredEvent], session_values: dict[str, Any]) -> None:
        """Insert events and move the session's cursor in one transaction: after a crash, either both
        happened or neither, so re-ingesting the journal from the cursor never duplicates an event."""
        values = {**session_values, "updated_at": time.time()}
        rows = [(session_id, e.seq, e.type, e.data) for e in batch]
        update = _update_statement(tuple(values))
        encoded = [json.dumps(value) if column in _JSON_COLUMNS else value for column, value in values.items()]

        def write(connection: sqlite3.Connection) -> None:
            connection.executemany(_INSERT, rows)
            connection.execute(update, [*encoded, session_id])

        await self._writer.transaction(write)

    async def read(self, session_id: str, after: int, limit: int) -> list[StoredEvent]:
        query = (
            select(events.c.seq, events.c.type, events.c.data)
            .where(events.c.session_id == session_id, events.c.seq > after)
            .order_by(events.c.seq)
            .limit(limit)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [StoredEvent(int(r[0]), str(r[1]), str(r[2])) for r in rows]

    async def last_seq(self, session_id: str) -> int:
        query = select(func.max(events.c.seq)).where(events.c.session_id == session_id)
        async with self._engine.connect() as conn:
            value = (await conn.execute(query)).scalar()
        return int(value or 0)
