"""A malicious sandbox against a real server: helpers for what an attacker inside does, and for what the host
must still look like afterwards."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from cove import AsyncSandbox
from cove.sdk import AsyncAgentSession
from tests.conftest import CoveServer, serving


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[CoveServer]:
    """A server of the test's own, for attacks that need it restarted (or that would disturb the shared one)."""
    with serving(tmp_path / "home") as server:
        yield server


@pytest.fixture
async def attacker(connection: dict[str, str]) -> AsyncIterator[AsyncSandbox]:
    async with await AsyncSandbox.create(**connection) as sandbox:
        yield sandbox


@pytest.fixture
async def victim(connection: dict[str, str]) -> AsyncIterator[AsyncSandbox]:
    async with await AsyncSandbox.create(**connection) as sandbox:
        yield sandbox


def host_root(server: CoveServer, sandbox: AsyncSandbox) -> Path:
    """The sandbox's directory on the host (its ``run`` is the sandbox's /run/cove)."""
    return server.home / "sandboxes" / sandbox.id


async def sh(sandbox: AsyncSandbox, script: str, timeout: float = 60) -> str:
    """Run ``script`` as the sandbox's user; its stdout, after checking it succeeded."""
    result = await sandbox.exec.run(script, timeout=timeout)
    assert result.exit_code == 0, f"{script!r} failed: {result.stderr}"
    return result.stdout


async def claim_conversation(attacker: AsyncSandbox, session: AsyncAgentSession, conversation: str) -> None:
    """What a sandbox that learned a conversation's id does to make it its own: puts a poisoned transcript under
    that id and journals a ``turn_complete`` naming it, as if its session had had that conversation; returns once
    the server has ingested it (and so tried to store the transcript)."""
    poison = {"type": "user", "sessionId": conversation, "message": {"role": "user", "content": "POISONED"}}
    await attacker.files.write(
        f"/home/user/.claude/projects/-workspace/{conversation}.jsonl", json.dumps(poison) + "\n"
    )
    seq = (await session.refresh()).last_seq + 1
    forged = {"seq": seq, "session_id": session.session_id, "type": "turn_complete", "turn": 2}
    await attacker.files.write("/tmp/line", json.dumps({**forged, "claude_session_id": conversation}) + "\n")
    await sh(attacker, f"cat /tmp/line >> /run/cove/agents/{session.session_id}/events.jsonl")
    async for event in session.events():
        if event.seq >= seq:
            return


async def idle_session(sandbox: AsyncSandbox) -> AsyncAgentSession:
    """An agent session with no prompt yet, once its runner has journalled ``ready``."""
    session = await sandbox.agent.start()
    async for event in session.events():
        if event.type == "ready":
            return session
    raise AssertionError(f"session {session.session_id} ended before it was ready")


def server_answers(server: CoveServer, within: float = 2.0) -> bool:
    """Whether the server's event loop still serves: /healthz answers within ``within`` seconds."""
    try:
        return httpx.get(server.url + "/healthz", timeout=within).status_code == 200
    except httpx.TransportError:
        return False


def open_descriptors(server: CoveServer) -> int:
    assert server.process is not None
    return len(list(Path(f"/proc/{server.process.pid}/fd").iterdir()))


def resident_bytes(pid: int) -> int:
    """The memory a process holds now (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")
