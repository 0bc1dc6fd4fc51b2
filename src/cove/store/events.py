"""The event log's storage: events appended in batches, together with their session's cursor, atomically.

Appends are the hot path of every agent turn (several batches a turn, each a transaction), so they do not go
through the async engine: there a transaction is half a dozen hand-offs to aiosqlite's thread (begin, insert,
update, commit, the pool's reset), each with SQLAlchemy's statement handling around it — measured at about a
quarter of the server's CPU per agent turn, on the same two cores as the agent. Here one hand-off to a
dedicated writer thread runs the whole transaction on a plain ``sqlite3`` connection to the same database.
Reads stay on the engine: WAL lets them run beside the writer. This is SQLite's event store; a PostgreSQL one
would batch in its own way.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from sqlalchemy import JSON, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from cove.store.tables import agent_sessions, events


@dataclass(frozen=True, slots=True)
class StoredEvent:
    seq: int
    type: str
    data: str  # the event's JSON text


_INSERT = f"INSERT INTO {events.name} (session_id, seq, type, data) VALUES (?, ?, ?, ?)"


class EventStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        database = engine.url.database
        if engine.url.get_backend_name() != "sqlite" or not database:
            raise ValueError("the event store writes to a SQLite database file")
        self._path = database
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cove-events")
        self._connection: sqlite3.Connection | None = None  # opened on the writer thread

    async def append(self, session_id: str, batch: list[StoredEvent], session_values: dict[str, Any]) -> None:
        """Insert events and move the session's cursor in one transaction: after a crash, either both
        happened or neither, so re-ingesting the journal from the cursor never duplicates an event."""
        values = {**session_values, "updated_at": time.time()}
        rows = [(session_id, e.seq, e.type, e.data) for e in batch]
        await asyncio.get_running_loop().run_in_executor(self._writer, self._append, session_id, rows, values)

    def _append(self, session_id: str, rows: list[tuple[str, int, str, str]], values: dict[str, Any]) -> None:
        if self._connection is None:
            self._connection = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            self._connection.execute("PRAGMA synchronous=NORMAL")
            self._connection.execute("PRAGMA busy_timeout=5000")
        columns = list(values)
        update = f"UPDATE {agent_sessions.name} SET {', '.join(f'{c} = ?' for c in columns)} WHERE id = ?"
        encoded = [json.dumps(values[c]) if isinstance(agent_sessions.c[c].type, JSON) else values[c] for c in columns]
        connection = self._connection
        connection.execute("BEGIN IMMEDIATE")
        try:
            connection.executemany(_INSERT, rows)
            connection.execute(update, [*encoded, session_id])
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")

    def close(self) -> None:
        def close_connection() -> None:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

        self._writer.submit(close_connection).result()
        self._writer.shutdown()

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
