"""Configure mid-session keeps the conversation; resume continues it in a new session, or fails loudly."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from cove import AsyncSandbox
from cove.sdk import NotFound
from tests.agent.conftest import main_requests, texts, transcript_path, turn_events, validate_events
from tests.conftest import CoveServer


async def test_configure_takes_effect_next_turn_and_keeps_the_conversation(
    server: CoveServer, sandbox: AsyncSandbox
) -> None:
    await sandbox.files.mkdir("sub")
    session = await sandbox.agent.start(prompt="the secret is persimmon")
    await asyncio.wait_for(session.done, 60)

    info = await session.configure(model="claude-sim-configured")
    assert info.config["model"] == "claude-sim-configured"
    marker = f"@model check {sandbox.id}"
    await session.send_prompt(marker)
    await asyncio.wait_for(session.done, 60)
    assert {r["model"] for r in main_requests(server, marker)} == {"claude-sim-configured"}

    await session.configure(
        max_turns=7, cwd="/workspace/sub", system_prompt="You are Cove's test agent.", allowed_tools=["Bash", "Read"]
    )
    marker = f"@recall {sandbox.id}"
    await session.send_prompt(marker)
    done = await asyncio.wait_for(session.done, 60)
    events = validate_events(await session.collect_events())
    assert "persimmon" in texts(turn_events(events, done["turn"]))
    [request, *_] = main_requests(server, marker)
    assert "You are Cove's test agent." in request["system"]
    assert "/workspace/sub" in (request.get("cwd") or "")
    assert any(e["type"] == "configured" for e in events)
    await session.kill()


async def test_resume_continues_the_conversation_in_a_new_session(sandbox: AsyncSandbox) -> None:
    first = await sandbox.agent.start(prompt="my favourite colour is vermilion")
    claude_id = (await asyncio.wait_for(first.done, 60))["claude_session_id"]
    await first.kill()

    second = await sandbox.agent.start(prompt="@recall", resume=claude_id)
    done = await asyncio.wait_for(second.done, 60)
    assert done["claude_session_id"] == claude_id
    assert "vermilion" in texts(await second.collect_events())
    assert second.session_id != first.session_id
    await second.kill()


async def test_unknown_resume_fails_and_starts_nothing(server: CoveServer, sandbox: AsyncSandbox) -> None:
    before = await sandbox.agent.list()
    with pytest.raises(NotFound) as error:
        await sandbox.agent.start(prompt="hello", resume="00000000-0000-0000-0000-000000000000")
    assert error.value.code == "resume_not_found" and error.value.status == 404
    assert await sandbox.agent.list() == before
    with server.http() as client:
        reply = client.post(f"/v1/sandboxes/{sandbox.id}/agent", json={"resume": "nope", "prompt": "x"})
        assert reply.status_code == 404 and reply.json()["error"]["code"] == "resume_not_found"


async def test_fork_branches_and_leaves_the_original_unchanged(server: CoveServer, sandbox: AsyncSandbox) -> None:
    original = await sandbox.agent.start(prompt="the password is saffron")
    claude_id = (await asyncio.wait_for(original.done, 60))["claude_session_id"]
    await original.kill()
    path = transcript_path(server, sandbox.id, claude_id)
    before = path.read_bytes()

    branch = await sandbox.agent.start(prompt="@recall", resume=claude_id, fork=True)
    done = await asyncio.wait_for(branch.done, 60)
    assert done["claude_session_id"] != claude_id
    assert "saffron" in texts(await branch.collect_events())
    assert path.read_bytes() == before
    await branch.kill()


async def test_resume_in_another_sandbox_uses_coves_stored_transcript(connection: dict[str, str]) -> None:
    async with await AsyncSandbox.create(**connection) as origin:
        session = await origin.agent.start(prompt="the river is called Isis")
        await asyncio.wait_for(session.done, 60)
        # A second and third turn: the stored copy grows by what each adds (not rewritten whole).
        for prompt in ("the city is called Oxford", "the college is called Merton"):
            await session.send_prompt(prompt)
            claude_id = (await asyncio.wait_for(session.done, 60))["claude_session_id"]
        await session.kill()
    async with await AsyncSandbox.create(**connection) as elsewhere:
        resumed = await elsewhere.agent.start(prompt="@recall", resume=claude_id)
        await asyncio.wait_for(resumed.done, 60)
        recalled = texts(await resumed.collect_events())
        assert "Isis" in recalled and "Oxford" in recalled and "Merton" in recalled
        await resumed.kill()


def test_model_info_names_the_simulator(server: CoveServer) -> None:
    with server.http() as client:
        info = client.get("/v1/model").json()
    assert info["upstream"] == "simulator" and httpx.get(info["simulator_url"] + "/_sim/health").status_code == 200
