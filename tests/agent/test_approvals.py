"""Approvals: a tool that needs permission waits for one answer, from any client, across drops and restarts."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from cove import AlreadyResolved, AsyncSandbox, Forbidden, InvalidRequest, PermissionNotFound, Sandbox
from cove.sdk import AgentEvent, AsyncAgentSession, PermissionAnswer, PermissionRequest
from tests.agent.conftest import main_requests, validate_events
from tests.agent.test_streams import ws_url
from tests.conftest import CoveServer, serving


def write(name: str, marker: str = "") -> str:
    """A prompt whose agent writes ``name`` (a Write tool use: asked about in the default permission mode)."""
    return f"@write {name}\ncontent of {name}\n@end\n@say wrote {name}\n{marker}"


async def requested(session: AsyncAgentSession) -> AgentEvent:
    async for event in session.events():
        if event.type == "permission_requested":
            return event
    raise AssertionError("the session ended without asking")


async def test_allow_and_deny_each_reach_the_agent_once(server: CoveServer, sandbox: AsyncSandbox) -> None:
    session = await sandbox.agent.start(write("allowed.txt"), permission_mode="default")
    asked = await requested(session)
    assert (asked["tool_name"], asked["input"]["file_path"]) == ("Write", "/workspace/allowed.txt")
    [pending] = session.pending_permissions
    assert (pending.request_id, pending.tool_name) == (asked["request_id"], "Write")
    assert not await sandbox.files.exists("allowed.txt")  # the turn waits
    assert (await session.refresh()).status == "running"

    resolved = await session.approve(asked["request_id"])
    assert resolved.decision == "allow" and resolved.by.startswith("key_")
    with pytest.raises(AlreadyResolved) as twice:
        await session.deny(asked["request_id"])
    assert twice.value.status is None or twice.value.status == 409
    assert twice.value.code == "already_resolved"
    await asyncio.wait_for(session.done, 60)
    assert await sandbox.files.read_text("allowed.txt") == "content of allowed.txt\n"
    assert session.pending_permissions == []

    marker = f"deny-{sandbox.id}"
    await session.send_prompt(write("denied.txt", marker))
    asked = await requested_after(session, asked.seq)
    await session.deny(asked["request_id"], message=f"not today ({marker})")
    done = await asyncio.wait_for(session.done, 60)
    assert not done["is_error"] and not await sandbox.files.exists("denied.txt")
    assert main_requests(server, marker)[-1]["last_tool_result"] == f"not today ({marker})"

    with server.http() as client:  # over REST, as a second answer and as an unknown id
        path = f"/v1/sandboxes/{sandbox.id}/agent/{session.session_id}/permissions"
        reply = client.post(f"{path}/{asked['request_id']}", json={"decision": "allow"})
        assert reply.status_code == 409 and reply.json()["error"]["code"] == "already_resolved"
        reply = client.post(f"{path}/perm_0123456789abcdef", json={"decision": "allow"})
        assert reply.status_code == 404 and reply.json()["error"]["code"] == "permission_not_found"
        reply = client.post(f"{path}/{asked['request_id']}", json={"decision": "allow", "by": "key_forged"})
        assert reply.status_code == 422  # who answers is the server's to say
        reply = client.post(f"{path}/{asked['request_id']}", json={"decision": "deny", "remember": True})
        assert reply.status_code == 422
    events = validate_events(await session.collect_events())
    resolutions = [e for e in events if e["type"] == "permission_resolved"]
    assert [(e["decision"], e["reason"]) for e in resolutions] == [("allow", "answered"), ("deny", "answered")]
    assert {e["by"] for e in resolutions} == {resolved.by}
    await session.kill()


async def requested_after(session: AsyncAgentSession, seq: int) -> AgentEvent:
    async for event in session.events():
        if event.type == "permission_requested" and event.seq > seq:
            return event
    raise AssertionError("the session ended without asking")


async def test_on_permission_decides_as_requests_come(server: CoveServer, sandbox: AsyncSandbox) -> None:
    seen: list[PermissionRequest] = []

    async def only_notes(request: PermissionRequest) -> PermissionAnswer:
        seen.append(request)
        if request.input.get("file_path", "").endswith("notes.txt"):
            return PermissionAnswer(decision="allow")
        return PermissionAnswer(decision="deny", message="only notes.txt")

    prompt = write("notes.txt") + "\n" + write("other.txt")
    session = await sandbox.agent.start(prompt, permission_mode="default", on_permission=only_notes)
    await asyncio.wait_for(session.done, 60)
    assert [r.input["file_path"] for r in seen] == ["/workspace/notes.txt", "/workspace/other.txt"]
    assert await sandbox.files.exists("notes.txt") and not await sandbox.files.exists("other.txt")
    await session.kill()


def test_a_blocking_on_permission_of_the_sync_sdk_answers_too(connection: dict[str, str]) -> None:
    asked_in: list[str] = []

    def ask(request: PermissionRequest) -> str:
        asked_in.append(threading.current_thread().name)  # a worker thread: blocking here stalls nothing
        return "always"

    with Sandbox.create(**connection) as sandbox:
        session = sandbox.agent.start(
            write("a.txt") + "\n" + write("b.txt"), permission_mode="default", on_permission=ask
        )
        session.wait(60)
        assert sandbox.files.exists("a.txt") and sandbox.files.exists("b.txt")
        assert len(asked_in) == 1  # "always": Claude Code's suggestion (accept edits) covers the second write
        session.kill()


async def test_a_second_client_answers_while_the_first_is_away(server: CoveServer, sandbox: AsyncSandbox) -> None:
    first = await sandbox.agent.start(write("shared.txt"), permission_mode="default")
    asked = await requested(first)
    await first.close()  # the first client drops; the request stays pending

    other = await AsyncSandbox.connect(sandbox.id, url=server.url, api_key=server.api_key)  # another client
    second = await other.agent.attach(first.session_id)
    await asyncio.wait_for(second.wait_scrollback(), 30)
    assert [r.request_id for r in second.pending_permissions] == [asked["request_id"]]
    await second.approve(asked["request_id"])
    await asyncio.wait_for(second.done, 60)
    await second.close()
    await other.close()

    back = await sandbox.agent.attach(first.session_id)
    await asyncio.wait_for(back.wait_scrollback(), 30)
    assert back.pending_permissions == []
    events = await back.collect_events()
    [resolved] = [e for e in events if e.type == "permission_resolved"]
    assert (resolved["request_id"], resolved["decision"]) == (asked["request_id"], "allow")
    assert await sandbox.files.exists("shared.txt")
    await back.kill()


async def test_a_browser_holding_a_sessions_token_answers_as_that_token(
    server: CoveServer, sandbox: AsyncSandbox
) -> None:
    """A page is handed a token for one session (read + approve), never the key: its answer names the token."""
    session = await sandbox.agent.start(write("by-token.txt"), permission_mode="default")
    asked = await requested(session)
    token = await session.create_token(["read", "approve"], ttl_s=600)
    assert (token.session_id, token.scopes) == (session.session_id, ["approve", "read"])
    page = await AsyncSandbox.connect(sandbox.id, url=server.url, api_key=token.token)
    watching = await page.agent.attach(session.session_id)
    await asyncio.wait_for(watching.wait_scrollback(), 30)
    resolved = await watching.approve(asked["request_id"])
    assert resolved.by == token.id
    with pytest.raises(Forbidden):  # approve, not prompt
        await watching.send_prompt("@say from the page")
    await asyncio.wait_for(session.done, 60)
    [event] = [e for e in await session.collect_events() if e.type == "permission_resolved"]
    assert (event["by"], event["decision"]) == (token.id, "allow")
    await watching.close()
    await page.close()
    await session.kill()


async def test_a_pending_approval_survives_a_server_sigkill(tmp_path: Path) -> None:
    with serving(tmp_path / "home") as server:
        sandbox = await AsyncSandbox.create(url=server.url, api_key=server.api_key)
        session = await sandbox.agent.start(write("durable.txt"), permission_mode="default")
        asked = await requested(session)
        await session.close()
        server.kill()  # SIGKILL while the agent waits for an answer
        server.start()

        answered: list[str] = []
        attached = await sandbox.agent.attach(
            session.session_id, on_permission=lambda request: answered.append(request.request_id) or True
        )
        done = await asyncio.wait_for(attached.done, 60)
        assert answered == [asked["request_id"]] and not done["is_error"]
        assert await sandbox.files.read_text("durable.txt") == "content of durable.txt\n"
        with pytest.raises(AlreadyResolved):
            await attached.approve(asked["request_id"])
        events = validate_events(await attached.collect_events())
        assert [e["type"] for e in events].count("permission_resolved") == 1
        await attached.kill()
        await sandbox.close()


async def test_an_interrupt_denies_the_pending_request(sandbox: AsyncSandbox) -> None:
    session = await sandbox.agent.start(write("never.txt"), permission_mode="default")
    asked = await requested(session)
    result = await session.interrupt()
    assert result.interrupted and result.turn == 1
    done = await asyncio.wait_for(session.done, 30)
    assert done["interrupted"] is True
    events = await session.collect_events()
    [resolved] = [e for e in events if e.type == "permission_resolved"]
    assert (resolved["request_id"], resolved["decision"], resolved["reason"]) == (
        asked["request_id"],
        "deny",
        "interrupted",
    )
    assert resolved["by"].startswith("key_")  # who interrupted
    assert [e.type for e in events].index("permission_resolved") < [e.type for e in events].index("interrupted")
    assert not await sandbox.files.exists("never.txt")
    with pytest.raises(AlreadyResolved):
        await session.approve(asked["request_id"])
    await session.kill()


async def test_an_unanswered_request_is_denied_after_the_timeout(sandbox: AsyncSandbox) -> None:
    session = await sandbox.agent.start(write("late.txt"), permission_mode="default", permission_timeout_s=1)
    assert session.info.config["permission_timeout_s"] == 1
    done = await asyncio.wait_for(session.done, 60)
    assert not done["is_error"]
    [resolved] = [e for e in await session.collect_events() if e.type == "permission_resolved"]
    assert (resolved["decision"], resolved["by"], resolved["reason"]) == ("deny", "session", "timeout")
    assert "1 s" in resolved["message"]
    assert not await sandbox.files.exists("late.txt")
    info = await session.configure(permission_timeout_s=None)
    assert info.config["permission_timeout_s"] is None
    with pytest.raises(InvalidRequest):
        await session.configure(permission_timeout_s=0)
    await session.kill()


async def test_the_websocket_takes_answers_as_a_command(server: CoveServer, sandbox: AsyncSandbox) -> None:
    session = await sandbox.agent.start(write("socket.txt"), permission_mode="default")
    asked = await requested(session)
    headers = {"authorization": f"Bearer {server.api_key}"}
    url = ws_url(server, sandbox.id, session.session_id, asked.seq)
    async with connect(url, additional_headers=headers) as socket:
        frames = [
            {"op": "permission", "id": 1, "decision": "allow"},  # no request_id
            {"op": "permission", "id": 2, "request_id": asked["request_id"], "decision": "allow", "by": "me"},
            {"op": "permission", "id": 3, "request_id": asked["request_id"], "decision": "allow"},
            {"op": "permission", "id": 4, "request_id": asked["request_id"], "decision": "deny"},
        ]
        for frame in frames:
            await socket.send(json.dumps(frame))
        acks = {}
        while len(acks) < len(frames):
            message = json.loads(await socket.recv())
            if message.get("type") == "ack":
                acks[message["id"]] = message
    assert acks[1]["error"]["code"] == "invalid_frame"
    assert acks[2]["error"]["code"] == "validation_error"
    assert acks[3]["ok"] and acks[3]["result"]["decision"] == "allow" and acks[3]["result"]["by"].startswith("key_")
    assert acks[4]["error"] == {**acks[4]["error"], "code": "already_resolved", "status": 409}
    await asyncio.wait_for(session.done, 60)
    await session.kill()


async def test_a_forged_request_id_is_refused_not_a_server_error(server: CoveServer, sandbox: AsyncSandbox) -> None:
    session = await sandbox.agent.start(permission_mode="default")
    with pytest.raises(PermissionNotFound):
        await session.approve("perm_does_not_exist")
    with server.http() as client:
        path = f"/v1/sandboxes/{sandbox.id}/agent/{session.session_id}/permissions"
        assert client.post(f"{path}/../../kill", json={"decision": "allow"}).status_code in (404, 405, 422)
        assert client.post(f"{path}/{'x' * 65}", json={"decision": "allow"}).status_code == 422
    await session.kill()
