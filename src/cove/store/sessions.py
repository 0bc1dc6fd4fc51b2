"""Agent session metadata: the durable list that survives restarts, and each session's ingest cursor."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, func, insert, literal, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine

from cove.store.tables import agent_sessions, events, transcript_parts, transcripts
from cove.store.writer import SqliteWriter

USAGE_KEYS = ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")


def zero_usage() -> dict[str, int]:
    return dict.fromkeys(USAGE_KEYS, 0)


@dataclass
class SessionRecord:
    id: str
    sandbox_id: str
    status: str
    token_hash: str
    config: dict[str, Any]
    created_at: float
    updated_at: float
    claude_session_id: str | None = None
    process_id: str | None = None
    turns: int = 0
    usage: dict[str, int] = field(default_factory=zero_usage)
    proxy_usage: dict[str, int] = field(default_factory=zero_usage)
    total_cost_usd: float = 0.0
    resume: str | None = None
    fork: int = 0
    exit_code: int | None = None
    error: dict[str, Any] | None = None
    last_seq: int = 0
    journal_offset: int = 0
    tenant_id: str | None = None  # its sandbox's

    @classmethod
    def from_row(cls, row: RowMapping) -> SessionRecord:
        return cls(**dict(row))


_TOUCH_TRANSCRIPT = f"UPDATE {transcripts.name} SET updated_at = ? WHERE claude_session_id = ?"
_APPEND_TRANSCRIPT_PART = (
    f"INSERT INTO {transcript_parts.name} (claude_session_id, part, content) "
    f"SELECT ?, COALESCE(MAX(part), 0) + 1, ? FROM {transcript_parts.name} WHERE claude_session_id = ?"
)


class SessionStore:
    def __init__(self, engine: AsyncEngine, writer: SqliteWriter) -> None:
        self._engine = engine
        self._writer = writer

    async def insert(self, record: SessionRecord) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(insert(agent_sessions).values(**record.__dict__))

    async def get(self, session_id: str) -> SessionRecord | None:
        query = select(agent_sessions).where(agent_sessions.c.id == session_id)
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        return SessionRecord.from_row(row) if row else None

    async def by_token_hash(self, token_hash: str) -> SessionRecord | None:
        query = select(agent_sessions).where(agent_sessions.c.token_hash == token_hash)
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        return SessionRecord.from_row(row) if row else None

    async def list(
        self, *, sandbox_id: str | None = None, status: str | None = None, tenant_id: str | None = None
    ) -> list[SessionRecord]:
        query = select(agent_sessions).order_by(agent_sessions.c.created_at)
        if tenant_id is not None:
            query = query.where(agent_sessions.c.tenant_id == tenant_id)
        if sandbox_id:
            query = query.where(agent_sessions.c.sandbox_id == sandbox_id)
        if status:
            query = query.where(agent_sessions.c.status == status)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [SessionRecord.from_row(row) for row in rows]

    async def update(self, session_id: str, **values: Any) -> None:
        values["updated_at"] = time.time()
        async with self._engine.begin() as conn:
            await conn.execute(update(agent_sessions).where(agent_sessions.c.id == session_id).values(**values))

    async def save_transcript(
        self, claude_session_id: str, sandbox_id: str, tenant_id: str | None, project: str, content: str
    ) -> None:
        row = {
            "claude_session_id": claude_session_id,
            "sandbox_id": sandbox_id,
            "tenant_id": tenant_id,
            "project": project,
            "content": content,
            "updated_at": time.time(),
        }
        async with self._engine.begin() as conn:
            exists = (
                await conn.execute(
                    select(transcripts.c.claude_session_id).where(transcripts.c.claude_session_id == claude_session_id)
                )
            ).first()
            await conn.execute(
                delete(transcript_parts).where(transcript_parts.c.claude_session_id == claude_session_id)
            )
            if exists:
                await conn.execute(
                    update(transcripts).where(transcripts.c.claude_session_id == claude_session_id).values(**row)
                )
            else:
                await conn.execute(insert(transcripts).values(**row))

    async def append_transcript(self, claude_session_id: str, tail: str) -> bool:
        """Add what was appended to a stored conversation since it was last saved; False if none is stored.
        After every turn: on the hot-path writer."""

        def write(connection: sqlite3.Connection) -> bool:
            if connection.execute(_TOUCH_TRANSCRIPT, (time.time(), claude_session_id)).rowcount == 0:
                return False
            connection.execute(_APPEND_TRANSCRIPT_PART, (claude_session_id, tail, claude_session_id))
            return True

        return await self._writer.transaction(write)

    async def transcript_owner(self, claude_session_id: str) -> tuple[str, str | None] | None:
        """The sandbox whose session saved the stored copy of a conversation last, and its tenant, if one is
        stored."""
        query = select(transcripts.c.sandbox_id, transcripts.c.tenant_id).where(
            transcripts.c.claude_session_id == claude_session_id
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return (str(row.sandbox_id), row.tenant_id) if row is not None else None

    async def stored_bytes(self, sandbox_id: str) -> int:
        """What the database holds for a sandbox's sessions: their events and the conversations it saved last."""
        of_sandbox = select(agent_sessions.c.id).where(agent_sessions.c.sandbox_id == sandbox_id)
        saved = select(transcripts.c.claude_session_id).where(transcripts.c.sandbox_id == sandbox_id)
        queries = [
            select(func.sum(func.length(events.c.data))).where(events.c.session_id.in_(of_sandbox)),
            select(func.sum(func.length(transcripts.c.content))).where(transcripts.c.sandbox_id == sandbox_id),
            select(func.sum(func.length(transcript_parts.c.content))).where(
                transcript_parts.c.claude_session_id.in_(saved)
            ),
        ]
        total = 0
        async with self._engine.connect() as conn:
            for query in queries:
                total += int((await conn.execute(query)).scalar() or 0)
        return total

    async def transcript(self, claude_session_id: str, tenant_id: str | None) -> tuple[str, str] | None:
        """The stored copy of a conversation, if ``tenant_id``'s: (project directory name, JSONL content)."""
        # One statement, so the saved content and the parts appended to it are read from one snapshot.
        base = select(literal(0).label("part"), transcripts.c.project, transcripts.c.content).where(
            transcripts.c.claude_session_id == claude_session_id, transcripts.c.tenant_id == tenant_id
        )
        appended = select(transcript_parts.c.part, literal(""), transcript_parts.c.content).where(
            transcript_parts.c.claude_session_id == claude_session_id
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(base.union_all(appended).order_by("part"))).all()
        if not rows or rows[0].part != 0:
            return None  # parts without their conversation: nothing that can be resumed
        return str(rows[0].project), "".join(str(row.content) for row in rows)
