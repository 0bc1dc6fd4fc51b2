"""Kill, bad input, and a server SIGKILL in the middle of a turn."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from cove import AsyncSandbox, Conflict, InvalidRequest
from tests.agent.conftest import texts, validate_events
from tests.agent.test_streams import ws_url
from tests.conftest import CoveServer


async def test_kill_emits_exit_and_later_prompts_get_409(server: CoveServer, sandbox: AsyncSandbox) -> None:
    session = await sandbox.agent.start(prompt="@say bye")
    await asyncio.wait_for(session.done, 60)
    info = await session.kill()
    assert info.status == "exited" and info.exit_code == 0
    events = validate_events(await session.collect_events())
    assert events[-1]["type"] == "exit" and events[-1]["exit_code"] == 0
    with pytest.raises(Conflict) as error:
        await session.send_prompt("are you there?")
    assert error.value.status == 409 and "exited" in error.value.message

    killed = await sandbox.agent.start()
    info = await killed.kill("SIGKILL")
    assert info.status == "exited" and info.exit_code == 137
    assert (await killed.collect_events())[-1]["exit_code"] == 137


async def test_bad_input_gets_clear_errors(server: CoveServer, sandbox: AsyncSandbox) -> None:
    session = await sandbox.agent.start()
    base = f"/v1/sandboxes/{sandbox.id}/agent"
    with server.http() as client:
        reply = client.get(f"{base}/ses_unknown")
        assert reply.status_code == 404 and reply.json()["error"]["code"] == "session_not_found"
        reply = client.post(f"{base}/{session.session_id}/prompt", json={"text": ""})
        assert reply.status_code == 422 and "text" in reply.json()["error"]["message"]
        reply = client.post(f"{base}/{session.session_id}/prompt", json={})
        assert reply.status_code == 422
        reply = client.post(base, json={"max_turns": 0})
        assert reply.status_code == 422 and "max_turns" in reply.json()["error"]["message"]
        reply = client.post(base, json={"permission_mode": "yolo"})
        assert reply.status_code == 422 and "permission_mode" in reply.json()["error"]["message"]
        reply = client.post(f"{base}/{session.session_id}/configure", json={})
        assert reply.status_code == 422

    headers = {"authorization": f"Bearer {server.api_key}"}
    async with connect(ws_url(server, sandbox.id, session.session_id, 0), additional_headers=headers) as socket:
        await socket.send("{not json")
        await socket.send(json.dumps({"op": "fly", "id": 7}))
        await socket.send(json.dumps({"op": "prompt", "text": "", "id": 8}))
        await socket.send(json.dumps({"op": "interrupt", "id": 9}))
        acks = {}
        while len(acks) < 4:
            message = json.loads(await socket.recv())
            if message.get("type") == "ack":
                acks[message["id"] if message["id"] is not None else "malformed"] = message
        assert acks["malformed"]["ok"] is False and acks["malformed"]["error"]["code"] == "invalid_frame"
        assert acks[7]["ok"] is False and "unknown op" in acks[7]["error"]["message"]
        assert acks[8]["ok"] is False and acks[8]["error"]["code"] == "validation_error"
        assert acks[8]["error"]["status"] == 422  # what the same refusal gets over HTTP
        assert acks[9] == {
            "type": "ack",
            "id": 9,
            "op": "interrupt",
            "ok": True,
            "result": {"interrupted": False, "turn": None},
        }
    # The SDK sends prompts over its connected event stream: refusals are the same errors as over HTTP.
    await session.wait_scrollback()
    with pytest.raises(InvalidRequest) as refused:
        await session.send_prompt("   ")
    assert refused.value.status == 422 and refused.value.code == "validation_error"
    await session.kill()


async def test_server_sigkill_during_a_turn_loses_nothing(tmp_path: Path) -> None:
    server = CoveServer(tmp_path / "home")
    server.start()
    try:
        connection = {"url": server.url, "api_key": server.api_key}
        sandbox = await AsyncSandbox.create(**connection)
        session = await sandbox.agent.start(prompt="remember kumquat")
        await asyncio.wait_for(session.done, 60)
        await session.send_prompt("@slow 3 still going")
        async for event in session.events():
            if event.type == "turn_started" and event["turn"] == 2:
                break
        await session.close()
        server.kill()  # SIGKILL, mid-turn
        server.start()

        attached = await sandbox.agent.attach(session.session_id)
        done = await asyncio.wait_for(attached.done, 60)
        assert done["turn"] == 2 and not done["is_error"]
        events = validate_events(await attached.collect_events())  # every seq exactly once
        assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
        listed = {s.session_id: s for s in await sandbox.agent.list()}
        assert listed[session.session_id].turns == 2
        await attached.send_prompt("@recall")
        await asyncio.wait_for(attached.done, 60)
        assert "kumquat" in texts(await attached.collect_events())
        await attached.kill()
        await sandbox.kill()
        await sandbox.close()
    finally:
        server.kill_all_sandboxes()
        server.kill()
