"""Attach, WebSocket and SSE: replay after a cursor, scrollback_end, then live — no gap, no duplicate."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
from websockets.asyncio.client import connect

from cove import AsyncSandbox
from cove.sdk import AgentEvent
from tests.agent.conftest import validate_events
from tests.conftest import CoveServer


def ws_url(server: CoveServer, sandbox_id: str, session_id: str, after: int, batch: int = 1) -> str:
    base = server.url.replace("http://", "ws://")
    return f"{base}/v1/sandboxes/{sandbox_id}/agent/{session_id}/ws?after={after}&batch={batch}"


async def test_websocket_dropped_mid_turn_resumes_without_gap_or_duplicate(
    server: CoveServer, sandbox: AsyncSandbox
) -> None:
    session = await sandbox.agent.start(prompt="@bash sleep 1; echo one\n@bash sleep 1; echo two\n@say finished")
    headers = {"authorization": f"Bearer {server.api_key}"}
    received: list[dict[str, Any]] = []
    async with connect(ws_url(server, sandbox.id, session.session_id, 0), additional_headers=headers) as socket:
        while len(received) < 4:
            message = json.loads(await socket.recv())
            if "seq" in message:
                received.append(message)
    # The connection is gone mid-turn; reconnect from the last seq seen.
    cursor = received[-1]["seq"]
    markers = []
    async with connect(ws_url(server, sandbox.id, session.session_id, cursor), additional_headers=headers) as socket:
        async for raw in socket:
            message = json.loads(raw)
            if message["type"] == "scrollback_end":
                markers.append(message)
                continue
            received.append(message)
            if message["type"] == "turn_complete":
                break
    assert len(markers) == 1
    history = await session.collect_events()
    assert received == [e.data for e in history[: len(received)]]
    validate_events(received)
    await session.kill()


async def test_live_events_published_together_share_a_frame_when_batched(
    server: CoveServer, sandbox: AsyncSandbox
) -> None:
    session = await sandbox.agent.start()
    async for event in session.events():
        if event.type == "ready":
            break
    headers = {"authorization": f"Bearer {server.api_key}"}
    frames: dict[int, list[list[dict[str, Any]]]] = {}
    for batch in (1, 50):
        cursor = (await session.collect_events())[-1].seq
        url = ws_url(server, sandbox.id, session.session_id, cursor, batch)
        async with connect(url, additional_headers=headers) as socket:
            assert json.loads(await socket.recv())["type"] == "scrollback_end"
            await session.send_prompt(f"@say batch {batch}")
            live = frames[batch] = []
            while not live or live[-1][-1]["type"] != "turn_complete":
                live.append([json.loads(line) for line in str(await socket.recv()).split("\n")])

    assert all(len(frame) == 1 for frame in frames[1])  # without batch: one event per frame, as before
    batched = frames[50]
    # Journalled together, sent together (on a busy machine the ingester may also have read the events before).
    assert [e["type"] for e in batched[-1]][-2:] == ["result", "turn_complete"]
    events = [event for frame in batched for event in frame]
    assert [e["seq"] for e in events] == list(range(events[0]["seq"], events[-1]["seq"] + 1))
    history = {e.seq: e.data for e in await session.collect_events()}
    assert events == [history[e["seq"]] for e in events]
    validate_events(events)
    await session.kill()


async def test_sdk_attach_replays_what_was_missed_then_follows(sandbox: AsyncSandbox) -> None:
    session = await sandbox.agent.start(prompt="@say first")
    await asyncio.wait_for(session.done, 60)
    await session.close()

    seen: list[AgentEvent] = []
    attached = await sandbox.agent.attach(session.session_id, on_event=seen.append)
    await asyncio.wait_for(attached.wait_scrollback(), 10)
    replayed = len(seen)
    assert [e.seq for e in seen] == list(range(1, replayed + 1))
    await attached.send_prompt("@say second")
    await asyncio.wait_for(attached.done, 60)
    assert [e.seq for e in seen] == list(range(1, len(seen) + 1)) and len(seen) > replayed

    listed = {s.session_id: s for s in await sandbox.agent.list()}
    assert listed[session.session_id].status == "idle" and listed[session.session_id].running is False
    await attached.kill()


async def test_attach_after_the_last_event_of_an_exited_session_ends(sandbox: AsyncSandbox) -> None:
    """Nothing will ever come after the exit: following from there ends at once instead of waiting forever."""
    session = await sandbox.agent.start(prompt="@say bye")
    await asyncio.wait_for(session.done, 60)
    info = await session.kill()
    assert info.status == "exited"

    seen: list[AgentEvent] = []
    attached = await sandbox.agent.attach(session.session_id, after=info.last_seq, on_event=seen.append)
    followed = await asyncio.wait_for(_all(attached.events()), 30)
    assert followed == seen == []
    exit_event = await asyncio.wait_for(attached.wait_exit(), 10)
    assert exit_event.type == "exit" and exit_event.seq == info.last_seq
    # One before the end: the exit is delivered, and the handle ends after it.
    attached = await sandbox.agent.attach(session.session_id, after=info.last_seq - 1)
    assert [event.type for event in await asyncio.wait_for(_all(attached.events()), 30)] == ["exit"]


async def _all(events: AsyncIterator[AgentEvent]) -> list[AgentEvent]:
    return [event async for event in events]


async def test_sse_replays_after_last_event_id_then_streams(server: CoveServer, sandbox: AsyncSandbox) -> None:
    session = await sandbox.agent.start(prompt="@say over sse")
    await asyncio.wait_for(session.done, 60)
    url = f"{server.url}/v1/sandboxes/{sandbox.id}/agent/{session.session_id}/events"
    headers = {"authorization": f"Bearer {server.api_key}", "accept": "text/event-stream", "last-event-id": "2"}
    ids: list[int] = []
    kinds: list[str] = []
    async with httpx.AsyncClient(timeout=30) as client, client.stream("GET", url, headers=headers) as reply:
        assert reply.headers["content-type"].startswith("text/event-stream")
        async for line in reply.aiter_lines():
            if line.startswith("id: "):
                ids.append(int(line[4:]))
            elif line.startswith("event: "):
                kinds.append(line[7:])
                if kinds[-1] == "scrollback_end":
                    break
    assert ids == list(range(3, ids[-1] + 1)) and kinds[-1] == "scrollback_end"
    assert "turn_complete" in kinds
    await session.kill()


async def test_event_history_pages(server: CoveServer, sandbox: AsyncSandbox) -> None:
    session = await sandbox.agent.start(prompt="@say paging")
    await asyncio.wait_for(session.done, 60)
    with server.http() as client:
        path = f"/v1/sandboxes/{sandbox.id}/agent/{session.session_id}/events"
        first = client.get(path, params={"after": 0, "limit": 2}).json()
        rest = client.get(path, params={"after": 2, "limit": 1000}).json()
    assert [e["seq"] for e in first["events"]] == [1, 2] and first["has_more"]
    assert rest["events"][0]["seq"] == 3 and not rest["has_more"]
    assert rest["last_seq"] == rest["events"][-1]["seq"]
    await session.kill()
