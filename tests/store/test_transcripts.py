"""Cove's stored copy of a conversation, over real SQLite: saved whole, then grown turn by turn."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cove.store.db import open_engine
from cove.store.sessions import SessionStore
from cove.store.writer import SqliteWriter

CLAUDE_ID = "0b6f3a1e-claude"
TENANT = "key_a"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SessionStore]:
    engine = await open_engine(tmp_path / "cove.db")
    writer = SqliteWriter(engine)
    yield SessionStore(engine, writer)
    writer.close()
    await engine.dispose()


async def test_appended_turns_follow_the_saved_transcript_in_order(store: SessionStore) -> None:
    await store.save_transcript(CLAUDE_ID, "sbx_1", TENANT, "-workspace", '{"turn":1}\n')
    for turn in range(2, 12):
        assert await store.append_transcript(CLAUDE_ID, f'{{"turn":{turn}}}\n')

    assert await store.transcript(CLAUDE_ID, TENANT) == (
        "-workspace",
        "".join(f'{{"turn":{n}}}\n' for n in range(1, 12)),
    )


async def test_a_full_save_replaces_what_was_appended(store: SessionStore) -> None:
    await store.save_transcript(CLAUDE_ID, "sbx_1", TENANT, "-workspace", "old\n")
    assert await store.append_transcript(CLAUDE_ID, "older tail\n")

    await store.save_transcript(CLAUDE_ID, "sbx_2", TENANT, "-work", "new\n")
    assert await store.append_transcript(CLAUDE_ID, "new tail\n")

    assert await store.transcript(CLAUDE_ID, TENANT) == ("-work", "new\nnew tail\n")


async def test_nothing_is_appended_to_a_conversation_never_saved(store: SessionStore) -> None:
    assert not await store.append_transcript(CLAUDE_ID, "orphan\n")
    assert await store.transcript(CLAUDE_ID, TENANT) is None
    await store.save_transcript(CLAUDE_ID, "sbx_1", TENANT, "-workspace", "first\n")
    assert await store.transcript(CLAUDE_ID, TENANT) == ("-workspace", "first\n")


async def test_a_conversation_is_found_for_its_own_tenant_only(store: SessionStore) -> None:
    await store.save_transcript(CLAUDE_ID, "sbx_1", TENANT, "-workspace", "mine\n")
    assert await store.append_transcript(CLAUDE_ID, "more\n")

    assert await store.transcript(CLAUDE_ID, "key_b") is None
    assert await store.transcript(CLAUDE_ID, TENANT) == ("-workspace", "mine\nmore\n")
    assert await store.transcript_owner(CLAUDE_ID) == ("sbx_1", TENANT)
