"""Turns: follow-ups that see earlier turns, queued prompts, interrupts that stop a turn at once."""

from __future__ import annotations

import asyncio
import time

import pytest

from cove import AsyncSandbox, SessionExited
from cove.sdk import AgentEvent
from tests.agent.conftest import main_requests, texts, turn_events, validate_events
from tests.conftest import CoveServer


async def test_follow_up_sees_the_first_turn_and_done_resolves_per_turn(sandbox: AsyncSandbox) -> None:
    seen: list[AgentEvent] = []
    session = await sandbox.agent.start(prompt="remember the word tangerine", on_event=seen.append)
    first = await asyncio.wait_for(session.done, 60)
    assert first.type == "turn_complete" and first["turn"] == 1 and first["claude_session_id"]
    assert (await session.refresh()).status == "idle"  # done is the turn, not the process

    await session.send_prompt("@recall")
    second = await asyncio.wait_for(session.done, 60)
    assert second["turn"] == 2
    events = validate_events(await session.collect_events())
    assert "tangerine" in texts(turn_events(events, 2))
    assert [e.seq for e in seen] == [e["seq"] for e in events]
    info = await session.refresh()
    assert info.turns == 2 and info.usage.input_tokens > 0 and info.total_cost_usd > 0
    assert info.metered_usage.input_tokens > 0
    await session.kill()


async def test_done_of_a_session_started_idle_is_its_first_turn(sandbox: AsyncSandbox) -> None:
    session = await sandbox.agent.start()
    first = session.done  # taken before any prompt: the first turn, not an error
    await session.send_prompt("@say hello")
    assert (await asyncio.wait_for(first, 60))["turn"] == 1
    await session.kill()


async def test_a_session_that_cannot_start_says_why(sandbox: AsyncSandbox) -> None:
    session = await sandbox.agent.start(prompt="@say hi", cwd="/workspace/missing")
    with pytest.raises(SessionExited, match=r"start_failed: cwd '/workspace/missing' is not a directory"):
        await asyncio.wait_for(session.done, 60)


async def test_tools_run_inside_the_sandbox(sandbox: AsyncSandbox) -> None:
    prompt = (
        "write and run a program\n@write hello.py\nprint('hello from', __import__('os').getuid())\n@end\n"
        "@bash python3 hello.py"
    )
    session = await sandbox.agent.start(prompt=prompt)
    await asyncio.wait_for(session.done, 60)
    assert (await sandbox.files.read_text("hello.py")).startswith("print(")
    uid = (await sandbox.exec.run("id -u")).stdout.strip()
    assert f"hello from {uid}" in texts(await session.collect_events())
    await session.kill()


async def test_prompts_sent_during_a_turn_run_in_order_one_turn_each(sandbox: AsyncSandbox) -> None:
    session = await sandbox.agent.start(prompt="@slow 1 first")
    accepted = [await session.send_prompt(f"@say reply-{n}") for n in (2, 3)]
    assert [a.turn for a in accepted] == [2, 3]
    done = await asyncio.wait_for(session.done, 60)
    assert done["turn"] == 3
    events = validate_events(await session.collect_events())
    started = [(e["turn"], e["prompt"]) for e in events if e["type"] == "turn_started"]
    assert started == [(1, "@slow 1 first"), (2, "@say reply-2"), (3, "@say reply-3")]
    for turn in (2, 3):
        assert f"reply-{turn}" in texts(turn_events(events, turn))
    await session.kill()


async def test_interrupt_stops_a_long_streamed_turn_at_once(server: CoveServer, sandbox: AsyncSandbox) -> None:
    session = await sandbox.agent.start()
    idle = await session.interrupt()
    assert idle.interrupted is False

    marker = f"@slow 30 a very long answer {sandbox.id}"
    await session.send_prompt(marker)
    deadline = time.monotonic() + 30
    while not main_requests(server, marker):  # the model is streaming the long answer now
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    asked = time.monotonic()
    result = await session.interrupt()
    assert result.interrupted is True and result.turn == 1
    async for event in session.events():
        if event.type == "interrupted":
            break
    assert time.monotonic() - asked < 1.0
    done = await asyncio.wait_for(session.done, 10)
    assert done["turn"] == 1 and done["interrupted"] is True

    await session.send_prompt("@say still here")
    after = await asyncio.wait_for(session.done, 60)
    assert after["turn"] == 2 and not after["is_error"]
    assert "still here" in texts(turn_events(await session.collect_events(), 2))
    validate_events(await session.collect_events())
    await session.kill()
