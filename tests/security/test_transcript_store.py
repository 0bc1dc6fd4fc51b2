"""Cove's stored transcripts are keyed by the conversation's ``claude_session_id``, and a session's id comes from
its journal — the sandbox's to write. A sandbox may lie about its own conversation; it must not be able to
replace another conversation's stored copy (which a resume hands to whoever continues it), nor make the
database on the host's disk grow without bound past its disk quota."""

from __future__ import annotations

import asyncio
import contextlib

from cove import AsyncSandbox, SandboxUnavailable
from tests.conftest import CoveServer, until
from tests.security.conftest import claim_conversation, sh


async def test_a_sandbox_cannot_replace_another_conversations_stored_transcript(
    server: CoveServer, attacker: AsyncSandbox, victim: AsyncSandbox, connection: dict[str, str]
) -> None:
    own = await victim.agent.start(prompt="@say the victim's own words")
    conversation = str((await asyncio.wait_for(own.done, 60))["claude_session_id"])
    # The attacker learns the id (a fork of the victim's checkpoint holds it, say) and claims it as its own.
    session = await attacker.agent.start(prompt="@say the attacker's turn")
    await asyncio.wait_for(session.done, 60)
    await claim_conversation(attacker, session, conversation)
    # The victim's owner continues the conversation in a new sandbox, from Cove's stored copy.
    async with await AsyncSandbox.create(**connection) as fresh:
        resumed = await fresh.agent.start(prompt="@say continuing", resume=conversation)
        await asyncio.wait_for(resumed.done, 60)
        handed = await sh(fresh, "cat /home/user/.claude/projects/*/*.jsonl")
    assert "POISONED" not in handed
    assert "the victim's own words" in handed


GROW = """
import json, os, sys, time, uuid
session, journal, seq, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
projects = "/home/user/.claude/projects/-workspace"
os.makedirs(projects, exist_ok=True)
for _ in range(rounds):
    conversation = str(uuid.uuid4())
    path = f"{projects}/{conversation}.jsonl"
    with open(path, "wb") as transcript:  # 64 MiB that take no disk: a hole and a newline
        transcript.truncate(64 * 1024 * 1024 - 1)
        transcript.seek(0, 2)
        transcript.write(b"\\n")
    seq += 1
    with open(journal, "a") as out:
        event = {"seq": seq, "session_id": session, "type": "turn_complete", "claude_session_id": conversation}
        out.write(json.dumps(event) + "\\n")
    time.sleep(2)
    os.unlink(path)
"""


def _database_bytes(server: CoveServer) -> int:
    return sum(path.stat().st_size for path in server.home.glob("cove.db*"))


async def test_forged_conversations_cannot_grow_the_database_past_the_disk_quota(own_server: CoveServer) -> None:
    """Each forged ``turn_complete`` naming a new conversation stored a whole transcript: 64 MiB of a sparse
    file (4 KiB of the sandbox's disk) per round, in a database that no quota counts and that outlives the
    sandbox. Four rounds grew it by 256 MiB from a sandbox whose quota is 80 MiB."""
    connection = {"url": own_server.url, "api_key": own_server.api_key}
    async with await AsyncSandbox.create(**connection, limits={"disk_mb": 80}) as attacker:
        session = await attacker.agent.start()
        async for event in session.events():
            if event.type == "ready":
                break
        before = _database_bytes(own_server)
        await attacker.files.write("/tmp/grow.py", GROW)
        journal = f"/run/cove/agents/{session.session_id}/events.jsonl"
        seq = (await session.refresh()).last_seq
        with contextlib.suppress(SandboxUnavailable):  # the sandbox is stopped mid-attack: what the quota is for
            await sh(attacker, f"python3 /tmp/grow.py {session.session_id} {journal} {seq} 4", timeout=120)
        info = await until(attacker, lambda info: info.state == "stopped")
        assert info.stop_reason == "disk_limit"
        grown = _database_bytes(own_server) - before
    assert grown < 80 * 1024 * 1024, f"the database grew by {grown >> 20} MiB, past the sandbox's 80 MiB quota"
