"""Live text: deltas arrive while the reply is generated, add up to the final text, and replay like any event."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from cove import AsyncSandbox
from cove.sdk import AgentEvent
from tests.agent.conftest import validate_events


async def test_deltas_arrive_before_the_turn_ends_and_add_up_to_the_text(sandbox: AsyncSandbox) -> None:
    reply = " ".join(f"token{n}" for n in range(80))
    thinking = "considering every token in turn " * 6
    arrivals: list[tuple[float, AgentEvent]] = []
    session = await sandbox.agent.start(
        f"@slow 2 {reply}\n@think {thinking}", on_event=lambda e: arrivals.append((time.monotonic(), e))
    )
    await asyncio.wait_for(session.done, 60)
    received = {event.type: at for at, event in reversed(arrivals)}  # the first arrival of each type
    assert len([e for _at, e in arrivals if e.type == "text_delta"]) > 10  # over 1.5 s, ~30 ms apart at most
    finished = next(at for at, event in arrivals if event.type == "turn_complete")
    assert finished - received["text_delta"] > 0.5  # streamed while the model wrote, not all at the end
    assert received["thinking_delta"] < received["text_delta"]

    events = [event for _at, event in arrivals]
    [thinking_message, text_message] = [e for e in events if e.type == "assistant"][-2:]
    for kind, message, field in (
        ("thinking_delta", thinking_message, "thinking"),
        ("text_delta", text_message, "text"),
    ):
        deltas = [e for e in events if e.type == kind]
        assert len(deltas) > 1  # streamed: more than one event per block
        assert "".join(d["text"] for d in deltas) == message["content"][0][field]
        assert {d["message_id"] for d in deltas} == {message["message_id"]}
        assert all(d.seq < message.seq for d in deltas)
    validate_events(e.data for e in events)
    await session.kill()


async def test_deltas_replay_on_attach_like_any_event(sandbox: AsyncSandbox) -> None:
    session = await sandbox.agent.start("@slow 1 " + "streamed and replayed " * 10)
    live = [event async for event in _until_turn_complete(session.events())]
    await session.close()

    attached = await sandbox.agent.attach(session.session_id)
    await asyncio.wait_for(attached.wait_scrollback(), 30)
    replayed = [event async for event in _until_turn_complete(attached.events())]
    assert [e.data for e in replayed] == [e.data for e in live]
    deltas = [e for e in replayed if e.type == "text_delta"]
    assert len(deltas) > 2
    middle = deltas[len(deltas) // 2].seq
    resumed = await sandbox.agent.attach(session.session_id, after=middle)
    await asyncio.wait_for(resumed.wait_scrollback(), 30)
    rest = [event async for event in _until_turn_complete(resumed.events())]
    assert [e.data for e in rest] == [e.data for e in live if e.seq > middle]
    await resumed.kill()
    await attached.close()


async def _until_turn_complete(events: AsyncIterator[AgentEvent]) -> AsyncIterator[AgentEvent]:
    async for event in events:
        yield event
        if event.type == "turn_complete":
            return
