"""The event log's storage: events appended in batches, together with their session's cursor, atomically."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from cove.store.tables import agent_sessions, events


@dataclass(frozen=True, slots=True)
class StoredEvent:
    seq: int
    type: str
    data: str  # the event's JSON text


class EventStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def append(self, session_id: str, batch: list[StoredEvent], session_values: dict[str, Any]) -> None:
        """Insert events and move the session's cursor in one transaction: after a crash, either both
        happened or neither, so re-ingesting the journal from the cursor never duplicates an event."""
        session_values = {**session_values, "updated_at": time.time()}
        async with self._engine.begin() as conn:
            if batch:
                await conn.execute(
                    insert(events),
                    [{"session_id": session_id, "seq": e.seq, "type": e.type, "data": e.data} for e in batch],
                )
            await conn.execute(update(agent_sessions).where(agent_sessions.c.id == session_id).values(**session_values))

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
