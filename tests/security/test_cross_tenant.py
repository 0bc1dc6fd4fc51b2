"""Tenants are a trust boundary: another tenant's objects do not exist for a key — 404 on every route (each one
of ``/openapi.json``, so a route added later is tried too), every WebSocket and SSE stream, never in a list, never
as the conversation a resume finds — while the admin sees everything and filters by tenant."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from websockets.asyncio.client import connect

from cove import AsyncSandbox, ResumeNotFound
from tests.conftest import CoveServer, Tenant, new_tenant
from tests.security.api_surface import Operation, operations, websocket_paths
from tests.security.conftest import claim_conversation, sh

# What another tenant may get for an object it does not own: the answer for an unknown id.
UNKNOWN = {"sandbox_not_found", "session_not_found", "checkpoint_not_found", "token_not_found"}
# Routes that name no object, each with what the test does with it.
GLOBAL = {
    "GET /healthz": "open to anyone",
    "POST /v1/sandboxes": "a fork of another's checkpoint: 404",
    "GET /v1/sandboxes": "lists only its own",
    "GET /v1/agent-sessions": "lists only its own",
    "GET /v1/model": "server information, no object",
    "GET /v1/whoami": "the caller's own credential, no object",
    "GET /v1/pool": "admin only: 403",
    "DELETE /v1/pool": "admin only: 403",
    "POST /v1/keys": "admin only: 403",
    "GET /v1/keys": "admin only: 403",
    "GET /v1/usage": "its own; another tenant's is 404",
    "GET /v1/tokens": "lists only its own",
    "POST /v1/tokens": "a token for another's sandbox: 404",
    "GET /v1/audit": "admin only: 403",
}
ADMIN_ONLY = ("/v1/keys", "/v1/pool", "/v1/audit")
# What a route answers for a part of an object it found that is not there.
BEYOND = {"file_not_found", "turn_not_found"}


@dataclass(frozen=True)
class Estate:
    """What alice owns (by kind of id), and bob, who is not alice."""

    alice: Tenant
    bob: Tenant
    ids: dict[str, str]
    bob_sandbox: str


@pytest.fixture(scope="module")
def spec(server: CoveServer) -> dict[str, object]:
    spec: dict[str, object] = httpx.get(server.url + "/openapi.json").json()
    return spec


@pytest.fixture(scope="module")
def estate(server: CoveServer) -> Iterator[Estate]:
    alice, bob = new_tenant(server, "alice"), new_tenant(server, "bob")
    with server.http(api_key=alice.key) as client:
        sandbox = client.post("/v1/sandboxes", json={"network": "none"}).json()["id"]
        base = f"/v1/sandboxes/{sandbox}"
        client.put(f"{base}/files", params={"path": "secret.txt"}, content=b"alice's").raise_for_status()
        process = client.post(f"{base}/exec", json={"command": "sleep 600", "background": True}).json()
        pty = client.post(f"{base}/pty", json={"command": "cat"}).json()
        session = client.post(f"{base}/agent", json={}).json()["session_id"]
        checkpoint = client.post(f"{base}/checkpoints", json={"name": "alice's"}).json()["id"]
        token = client.post("/v1/tokens", json={"sandbox_id": sandbox, "scopes": ["read"], "ttl_s": 3600}).json()
        port = client.post(f"{base}/ports", json={"port": 8000}).json()["port"]
    with server.http(api_key=bob.key) as client:
        bob_sandbox = client.post("/v1/sandboxes", json={"network": "none"}).json()["id"]
    ids = {
        "sandbox_id": sandbox,
        "session_id": session,
        "checkpoint_id": checkpoint,
        "process_id": process["process_id"],
        "pty_id": pty["pty_id"],
        "turn": "1",
        "request_id": "perm_0123456789abcdef",
        "key_id": alice.id,
        "token_id": token["id"],
        "token": token["token"],
        "port": str(port),
    }
    yield Estate(alice, bob, ids, bob_sandbox)
    with server.http() as admin:
        for sandbox_id in (sandbox, bob_sandbox):
            admin.delete(f"/v1/sandboxes/{sandbox_id}")
        admin.delete(f"/v1/checkpoints/{checkpoint}")
        for tenant in (alice, bob):
            admin.delete(f"/v1/keys/{tenant.id}")


def _object_routes(spec: dict[str, object]) -> list[Operation]:
    return [op for op in operations(spec) if op.ids]


def test_every_route_names_an_object_or_is_classified(spec: dict[str, object]) -> None:
    assert {op.name for op in operations(spec) if not op.ids} == set(GLOBAL), "classify the new route in GLOBAL"


def test_every_route_on_another_tenants_objects_is_404(
    server: CoveServer, estate: Estate, spec: dict[str, object]
) -> None:
    tried = []
    with server.http(api_key=estate.bob.key) as bob:
        for op in _object_routes(spec):
            reply = op.send(bob, estate.ids)
            error = reply.json()["error"]
            if op.path.startswith(ADMIN_ONLY):
                assert (reply.status_code, error["code"]) == (403, "forbidden"), op.name
            else:
                assert reply.status_code == 404 and error["code"] in UNKNOWN, f"{op.name}: {reply.text}"
            tried.append(op.name)
    assert len(tried) >= 35
    _alice_is_untouched(server, estate)


def test_the_same_route_answers_an_unknown_id_alike(server: CoveServer, estate: Estate) -> None:
    """Whether an id exists is not told apart from whether it is someone else's."""
    with server.http(api_key=estate.bob.key) as bob:
        mine = bob.get(f"/v1/sandboxes/{estate.ids['sandbox_id']}").json()["error"]
        unknown = bob.get("/v1/sandboxes/sbx_00000000deadbeef").json()["error"]
    assert mine["code"] == unknown["code"] == "sandbox_not_found"
    same = mine["message"].replace(estate.ids["sandbox_id"], "X")
    assert same == unknown["message"].replace("sbx_00000000deadbeef", "X")


def test_routes_without_an_object_show_only_ones_own(server: CoveServer, estate: Estate) -> None:
    alice_sandbox, checkpoint = estate.ids["sandbox_id"], estate.ids["checkpoint_id"]
    with server.http(api_key=estate.bob.key) as bob:
        assert [s["id"] for s in bob.get("/v1/sandboxes").json()["sandboxes"]] == [estate.bob_sandbox]
        assert bob.get("/v1/sandboxes", params={"tenant_id": estate.alice.id}).json()["sandboxes"] == []
        assert bob.get("/v1/agent-sessions").json()["sessions"] == []
        assert bob.get("/v1/agent-sessions", params={"tenant_id": estate.alice.id}).json()["sessions"] == []
        assert bob.get("/v1/agent-sessions", params={"sandbox_id": alice_sandbox}).status_code == 404
        assert bob.get("/v1/tokens").json()["tokens"] == []
        assert bob.get("/v1/usage").json()["tenant_id"] == estate.bob.id
        assert bob.get("/v1/usage", params={"tenant_id": estate.alice.id}).status_code == 404
        fork = bob.post("/v1/sandboxes", json={"from_checkpoint": checkpoint})
        assert (fork.status_code, fork.json()["error"]["code"]) == (404, "checkpoint_not_found")
        minted = bob.post("/v1/tokens", json={"sandbox_id": alice_sandbox, "scopes": ["read"]})
        assert (minted.status_code, minted.json()["error"]["code"]) == (404, "sandbox_not_found")
        for method, path in [(m, p) for name in GLOBAL for m, p in [name.split(" ")] if p.startswith(ADMIN_ONLY)]:
            reply = bob.request(method, path, json={"name": "x"} if method == "POST" else None)
            assert reply.status_code == 403, (method, path)
        assert bob.get("/v1/model").status_code == 200
    _alice_is_untouched(server, estate)


def test_the_admin_sees_every_tenants_objects_and_filters_by_tenant(
    server: CoveServer, estate: Estate, spec: dict[str, object]
) -> None:
    with server.http() as admin:
        for op in _object_routes(spec):
            if op.reads:  # found (the example's file or turn need not be there: the sandbox or session was reached)
                reply = op.send(admin, estate.ids)
                assert reply.is_success or reply.json()["error"]["code"] in BEYOND, f"{op.name}: {reply.text}"
        of_alice = admin.get("/v1/sandboxes", params={"tenant_id": estate.alice.id}).json()["sandboxes"]
        assert [(s["id"], s["tenant_id"]) for s in of_alice] == [(estate.ids["sandbox_id"], estate.alice.id)]
        everyone = {s["id"] for s in admin.get("/v1/sandboxes").json()["sandboxes"]}
        assert {estate.ids["sandbox_id"], estate.bob_sandbox} <= everyone
        sessions = admin.get("/v1/agent-sessions", params={"tenant_id": estate.alice.id}).json()["sessions"]
        assert [(s["session_id"], s["tenant_id"]) for s in sessions] == [(estate.ids["session_id"], estate.alice.id)]
        assert admin.get("/v1/agent-sessions", params={"tenant_id": estate.bob.id}).json()["sessions"] == []
        checkpoint = admin.get(f"/v1/checkpoints/{estate.ids['checkpoint_id']}").json()
        assert checkpoint["tenant_id"] == estate.alice.id
        assert admin.get("/v1/usage", params={"tenant_id": estate.alice.id}).json()["used"]["running_sandboxes"] == 1
        tokens = admin.get("/v1/tokens").json()["tokens"]
        assert estate.ids["token_id"] in {t["id"] for t in tokens}


def test_every_websocket_and_sse_stream_of_another_tenant_is_404(server: CoveServer, estate: Estate) -> None:
    assert websocket_paths() == {
        "/v1/sandboxes/{sandbox_id}/exec/ws",
        "/v1/sandboxes/{sandbox_id}/processes/{process_id}/ws",
        "/v1/sandboxes/{sandbox_id}/pty/{pty_id}/ws",
        "/v1/sandboxes/{sandbox_id}/agent/{session_id}/ws",
    }, "a new WebSocket route: try it across tenants below"
    ids = estate.ids

    async def refused(path: str, first: str | None = None) -> None:
        url = server.url.replace("http", "ws") + path
        async with connect(url, additional_headers={"authorization": f"Bearer {estate.bob.key}"}) as socket:
            if first is not None:
                await socket.send(first)
            error = json.loads(await asyncio.wait_for(socket.recv(), 10))
            assert error["type"] == "error" and error["code"] in UNKNOWN, (path, error)
            await asyncio.wait_for(socket.wait_closed(), 10)
            assert socket.close_code == 4404, path

    async def all_of_them() -> None:
        base = f"/v1/sandboxes/{ids['sandbox_id']}"
        await refused(f"{base}/agent/{ids['session_id']}/ws?after=0")
        await refused(f"{base}/exec/ws", json.dumps({"command": "cat secret.txt"}))
        await refused(f"{base}/processes/{ids['process_id']}/ws")
        await refused(f"{base}/pty/{ids['pty_id']}/ws")

    asyncio.run(all_of_them())
    events = f"/v1/sandboxes/{ids['sandbox_id']}/agent/{ids['session_id']}/events"
    with server.http(api_key=estate.bob.key) as bob:
        reply = bob.get(events, headers={"accept": "text/event-stream"})
        assert (reply.status_code, reply.json()["error"]["code"]) == (404, "session_not_found")
    with server.http(api_key="") as anonymous:  # another tenant's token, the browser's way
        own = anonymous.get(f"/v1/sandboxes/{estate.bob_sandbox}", params={"token": ids["token"]})
        assert own.status_code == 401  # ?token= is for streams only: the REST routes take headers
        reply = anonymous.get(
            events,
            params={"token": _token_of(server, estate.bob, estate.bob_sandbox)},
            headers={"accept": "text/event-stream"},
        )
        assert (reply.status_code, reply.json()["error"]["code"]) == (404, "session_not_found")
    _alice_is_untouched(server, estate)


async def test_a_resume_finds_only_its_own_tenants_conversations(server: CoveServer) -> None:
    alice, bob = new_tenant(server, "alice"), new_tenant(server, "bob")
    async with await AsyncSandbox.create(**alice.connection(server)) as own:
        session = await own.agent.start(prompt="@say alice's own words")
        conversation = str((await asyncio.wait_for(session.done, 60))["claude_session_id"])
        async with await AsyncSandbox.create(**bob.connection(server)) as other:
            with pytest.raises(ResumeNotFound):
                await other.agent.start(prompt="@say go on", resume=conversation)
            # bob claims the conversation as his own sandbox's: what his sandbox stores is never alice's copy.
            mine = await other.agent.start(prompt="@say bob's turn")
            await asyncio.wait_for(mine.done, 60)
            await claim_conversation(other, mine, conversation)
        async with await AsyncSandbox.create(**alice.connection(server)) as fresh:
            resumed = await fresh.agent.start(prompt="@say continuing", resume=conversation)
            await asyncio.wait_for(resumed.done, 60)
            handed = await sh(fresh, "cat /home/user/.claude/projects/*/*.jsonl")
    assert "POISONED" not in handed and "alice's own words" in handed


def _token_of(server: CoveServer, tenant: Tenant, sandbox_id: str) -> str:
    with server.http(api_key=tenant.key) as client:
        reply = client.post("/v1/tokens", json={"sandbox_id": sandbox_id, "scopes": ["read"], "ttl_s": 600})
    token: str = reply.json()["token"]
    return token


def _alice_is_untouched(server: CoveServer, estate: Estate) -> None:
    ids = estate.ids
    base = f"/v1/sandboxes/{ids['sandbox_id']}"
    with server.http(api_key=estate.alice.key) as alice:
        assert alice.get(base).json()["state"] == "running"
        assert alice.get(f"{base}/processes/{ids['process_id']}").json()["running"]
        assert alice.get(f"{base}/pty/{ids['pty_id']}").json()["running"]
        assert alice.get(f"{base}/agent/{ids['session_id']}").json()["status"] in ("starting", "idle")
        assert alice.get(f"/v1/checkpoints/{ids['checkpoint_id']}").status_code == 200
        assert alice.get(f"{base}/files", params={"path": "secret.txt"}).content == b"alice's"
        assert alice.get(f"{base}/files/exists", params={"path": "example"}).json() == {"exists": False}
        assert [p["port"] for p in alice.get(f"{base}/ports").json()["ports"]] == [int(ids["port"])]
    with server.http(api_key=ids["token"]) as token:
        assert token.get(base).status_code == 200
