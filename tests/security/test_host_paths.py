"""Links, FIFOs, hard links and devices a sandbox plants where the root server reads: the server never follows
them, never blocks on them, and never creates, truncates or chowns anything on the host because of them."""

from __future__ import annotations

import asyncio
import json
import os
import stat
from pathlib import Path

import pytest

from cove import AsyncSandbox
from cove.sdk import AsyncAgentSession
from tests.conftest import CoveServer
from tests.security.conftest import host_root, idle_session, server_answers, sh


async def _ended_turn(sandbox: AsyncSandbox, prompt: str) -> tuple[AsyncAgentSession, str]:
    session = await sandbox.agent.start(prompt=prompt)
    done = await asyncio.wait_for(session.done, 60)
    return session, str(done["claude_session_id"])


async def _forge(sandbox: AsyncSandbox, session: AsyncAgentSession, event_type: str, **fields: object) -> int:
    """Append an event of the attacker's making to the session's journal, as the next seq; returns the seq."""
    info = await session.refresh()
    seq = info.last_seq + 1
    event = {"seq": seq, "session_id": session.session_id, "type": event_type, "time": "2026-01-01T00:00:00Z"}
    line = json.dumps({**event, **fields})
    await sh(sandbox, f"printf '%s\\n' '{line}' >> /run/cove/agents/{session.session_id}/events.jsonl")
    return seq


async def _ingested(session: AsyncAgentSession, seq: int) -> None:
    async for event in session.events():
        if event.seq >= seq:
            return
    raise AssertionError(f"the session ended before seq {seq} was ingested")


async def test_a_transcript_linked_to_the_admin_key_is_never_stored_nor_handed_to_another_sandbox(
    server: CoveServer, attacker: AsyncSandbox, victim: AsyncSandbox
) -> None:
    session, claude_session_id = await _ended_turn(attacker, "@say first turn")
    admin_key = server.api_key
    transcript = (await sh(attacker, f"ls /home/user/.claude/projects/*/{claude_session_id}.jsonl")).strip()
    # The attacker points its transcript at the server's admin key and claims a turn ended, so the server saves it.
    await sh(attacker, f"ln -sf {server.home / 'admin_key'} {transcript}")
    seq = await _forge(attacker, session, "turn_complete", turn=2, claude_session_id=claude_session_id)
    await _ingested(session, seq)
    # An ordinary resume in another sandbox puts Cove's stored copy of the conversation in place.
    resumed = await victim.agent.start(prompt="@say resumed", resume=claude_session_id)
    await asyncio.wait_for(resumed.done, 60)
    handed = await sh(victim, "cat /home/user/.claude/projects/*/*.jsonl")
    assert "first turn" in handed
    assert admin_key not in handed
    assert admin_key not in await sh(victim, "grep -r . /home/user /workspace 2>/dev/null || true")
    assert server_answers(server)


async def test_agents_dir_linked_to_a_root_only_host_directory_is_left_alone(
    server: CoveServer, attacker: AsyncSandbox, tmp_path: Path
) -> None:
    private = tmp_path / "root-only"
    private.mkdir(mode=0o700)
    (private / "secret").write_text("host data\n")
    before = (private.stat().st_uid, stat.S_IMODE(private.stat().st_mode), sorted(os.listdir(private)))
    await sh(attacker, f"rm -rf /run/cove/agents && ln -s {private} /run/cove/agents")
    with pytest.raises(Exception) as refused:
        await attacker.agent.start(prompt="@say hi")
    assert "could not prepare the agent session" in str(refused.value)
    after = (private.stat().st_uid, stat.S_IMODE(private.stat().st_mode), sorted(os.listdir(private)))
    assert after == before
    assert (private / "secret").read_text() == "host data\n"


async def test_a_journal_linked_to_host_files_is_not_followed_when_the_runner_dies(
    server: CoveServer, attacker: AsyncSandbox, tmp_path: Path
) -> None:
    precious = tmp_path / "precious"
    precious.write_text("keep me\n")
    absent = tmp_path / "never-created"
    session = await idle_session(attacker)
    journal = f"/run/cove/agents/{session.session_id}/events.jsonl"
    await sh(attacker, f"mv {journal} {journal}.real && ln -s {precious} {journal}")
    await sh(attacker, f"ln -s {absent} /run/cove/agents/{session.session_id}/exit-here")
    await sh(attacker, "pkill -9 -f cove.guest.agent_runner")
    exit_event = await asyncio.wait_for(session.wait_exit(), 60)
    assert exit_event["exit_code"] == 137
    assert precious.read_text() == "keep me\n"
    assert not absent.exists()


async def test_fifos_devices_and_hard_links_at_the_journal_neither_block_nor_feed_the_server(
    own_server: CoveServer,
) -> None:
    """After a restart the server opens every live session's journal again: one is a FIFO (an open for reading
    would block), one a hard link (to another of the sandbox's files), one a device node (put there from the
    host: a sandbox cannot make one). The server serves on, and a session elsewhere is unaffected."""
    connection = {"url": own_server.url, "api_key": own_server.api_key}
    async with await AsyncSandbox.create(**connection) as attacker, await AsyncSandbox.create(**connection) as victim:
        fifo, linked, device = [(await idle_session(attacker)).session_id for _ in range(3)]
        bystander = await idle_session(victim)
        assert "Operation not permitted" in (await attacker.exec.run("mknod /run/cove/dev c 1 5")).stderr
        assert (await attacker.exec.run("ln /etc/shadow /run/cove/shadow")).exit_code != 0
        await sh(attacker, f"cd /run/cove/agents && rm {fifo}/events.jsonl && mkfifo {fifo}/events.jsonl")
        await sh(attacker, f"cd /run/cove/agents && ln {linked}/events.jsonl {linked}/second-name")
        own_server.kill()
        journal = host_root(own_server, attacker) / "run" / "agents" / device / "events.jsonl"
        uid = journal.stat().st_uid
        journal.unlink()
        os.mknod(journal, stat.S_IFCHR | 0o644, os.makedev(1, 5))  # /dev/zero: a read that never ends
        os.chown(journal, uid, uid)
        own_server.start()
        assert server_answers(own_server)
        attached = await victim.agent.attach(bystander.session_id)
        await attached.send_prompt("@say still served")
        done = await asyncio.wait_for(attached.done, 60)
        assert done["type"] == "turn_complete"
        assert server_answers(own_server)


async def test_a_transcript_fifo_or_device_is_refused_without_blocking(
    server: CoveServer, attacker: AsyncSandbox
) -> None:
    session, claude_session_id = await _ended_turn(attacker, "@say a turn")
    transcript = (await sh(attacker, f"ls /home/user/.claude/projects/*/{claude_session_id}.jsonl")).strip()
    await sh(attacker, f"rm {transcript} && mkfifo {transcript}")
    seq = await _forge(attacker, session, "turn_complete", turn=2, claude_session_id=claude_session_id)
    await _ingested(session, seq)
    assert server_answers(server)
    # The conversation goes on: the runner's next turn is ingested as ever.
    await session.send_prompt("@say next")
    assert server_answers(server)


async def test_a_control_socket_linked_to_another_sandbox_reaches_nobody(
    server: CoveServer, attacker: AsyncSandbox, victim: AsyncSandbox
) -> None:
    session = await idle_session(attacker)
    before = [p.id for p in await victim.exec.list()]
    other = host_root(server, victim) / "guest.sock"
    await sh(attacker, f"ln -sf {other} /run/cove/agents/{session.session_id}/control.sock")
    with pytest.raises(Exception) as refused:
        await session.send_prompt("@bash touch /workspace/owned")
    assert "control.sock" in str(refused.value) or "link" in str(refused.value)
    assert [p.id for p in await victim.exec.list()] == before
    assert not await victim.files.exists("owned")


async def test_the_supervisor_socket_is_out_of_the_sandboxs_reach(
    server: CoveServer, attacker: AsyncSandbox, victim: AsyncSandbox
) -> None:
    assert "guest.sock" not in await sh(attacker, "ls -a /run/cove")
    other = host_root(server, victim) / "guest.sock"
    await sh(attacker, f"ln -s {other} /run/cove/guest.sock")
    # The attacker's owner still reaches the attacker, never the victim.
    assert (await sh(attacker, "echo $COVE_SANDBOX_ID")).strip() == attacker.id
    await attacker.files.write("mine.txt", "attacker's upload")
    assert not await victim.files.exists("mine.txt")
