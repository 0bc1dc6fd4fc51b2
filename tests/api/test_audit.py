"""The audit trail holds every call of this test that changed something — over REST and over WebSockets, done,
refused or failed — with who made it (key or token), for which tenant, what, on what, its status and from where;
reads are not in it, and only the admin reads it."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
from websockets.asyncio.client import connect

from tests.conftest import CoveServer, new_tenant


def _trail(server: CoveServer, **filters: Any) -> list[dict[str, Any]]:
    with server.http() as admin:
        reply = admin.get("/v1/audit", params=filters)
    assert reply.status_code == 200, reply.text
    entries: list[dict[str, Any]] = reply.json()["entries"]
    return entries


async def _over_websockets(server: CoveServer, key: str, sandbox: str, session: str) -> None:
    base = server.url.replace("http", "ws") + f"/v1/sandboxes/{sandbox}"
    headers = {"authorization": f"Bearer {key}"}
    async with connect(f"{base}/agent/{session}/ws", additional_headers=headers) as socket:
        await socket.send(json.dumps({"op": "prompt", "text": "@say audited", "id": 1}))
        while json.loads(await socket.recv()).get("type") != "ack":
            pass
    async with connect(f"{base}/exec/ws", additional_headers=headers) as socket:
        await socket.send(json.dumps({"command": "echo streamed"}))
        while json.loads(await socket.recv()).get("type") != "exit":
            pass


def test_every_call_that_changes_something_is_recorded(server: CoveServer) -> None:
    started = time.time()
    alice, bob = new_tenant(server, "alice"), new_tenant(server, "bob")
    with server.http(api_key=alice.key) as client:
        sandbox = client.post("/v1/sandboxes", json={"network": "none"}).json()["id"]
        base = f"/v1/sandboxes/{sandbox}"
        client.post(f"{base}/exec", json={"command": "true"}).raise_for_status()
        client.put(f"{base}/files", params={"path": "notes.txt"}, content=b"hello").raise_for_status()
        pty = client.post(f"{base}/pty", json={"command": "sleep 600"}).json()["pty_id"]
        client.delete(f"{base}/pty/{pty}").raise_for_status()
        session = client.post(f"{base}/agent", json={}).json()["session_id"]
        asyncio.run(_over_websockets(server, alice.key, sandbox, session))
        client.post(f"{base}/agent/{session}/configure", json={"max_turns": 4}).raise_for_status()
        checkpoint = client.post(f"{base}/checkpoints", json={}).json()["id"]
        token = client.post("/v1/tokens", json={"sandbox_id": sandbox, "scopes": ["read", "prompt"]}).json()
        with server.http(api_key=token["token"]) as by_token:
            assert by_token.post(f"{base}/agent/{session}/kill").status_code == 403
        client.delete(f"/v1/tokens/{token['id']}").raise_for_status()
        client.get(f"{base}/files", params={"path": "notes.txt"}).raise_for_status()  # a read: not recorded
    with server.http(api_key=bob.key) as other:
        assert other.delete(base).status_code == 404
    with server.http(api_key="cove_not_a_key") as nobody:
        assert nobody.post("/v1/sandboxes", json={}).status_code == 401
    with server.http(api_key=alice.key) as client:
        client.post(f"{base}/agent/{session}/kill").raise_for_status()
        client.delete(f"/v1/checkpoints/{checkpoint}").raise_for_status()
        client.delete(base).raise_for_status()
        assert client.get("/v1/audit").status_code == 403
    with server.http() as admin:
        admin.delete(f"/v1/keys/{bob.id}").raise_for_status()

    of_alice = [(e["by"], e["action"], e["target"], e["status"]) for e in reversed(_trail(server, tenant_id=alice.id))]
    tok = token["id"]
    assert of_alice == [
        (alice.id, "sandboxes.create_sandbox", sandbox, 201),
        (alice.id, "execs.run_command", sandbox, 200),
        (alice.id, "files.upload", f"{sandbox}:notes.txt", 200),
        (alice.id, "ptys.create_pty", f"{sandbox}/{pty}", 201),
        (alice.id, "ptys.kill_pty", f"{sandbox}/{pty}", 200),
        (alice.id, "agents.start_session", f"{sandbox}/{session}", 201),
        (alice.id, "agents.prompt", f"{sandbox}/{session}", 200),
        (alice.id, "execs.exec_stream", sandbox, 200),
        (alice.id, "agents.configure", f"{sandbox}/{session}", 200),
        (alice.id, "checkpoints.create_checkpoint", f"{sandbox}/{checkpoint}", 201),
        (alice.id, "tokens.create_token", tok, 201),
        (tok, "agents.kill", f"{sandbox}/{session}", 403),
        (alice.id, "tokens.revoke_token", tok, 200),
        (alice.id, "agents.kill", f"{sandbox}/{session}", 200),
        (alice.id, "checkpoints.delete_checkpoint", checkpoint, 200),
        (alice.id, "sandboxes.kill_sandbox", sandbox, 200),
    ]
    entries = _trail(server, since=started)
    assert all(e["client"] == "127.0.0.1" and started <= e["time"] <= time.time() for e in entries)
    assert [(e["by"], e["action"], e["status"]) for e in _trail(server, tenant_id=bob.id)] == [
        (bob.id, "sandboxes.kill_sandbox", 404)
    ]
    summary = {(e["by"], e["action"], e["target"], e["status"]) for e in entries}
    admin_id = next(e["by"] for e in entries if e["action"] == "keys.create_key")
    assert {
        (admin_id, "keys.create_key", alice.id, 201),
        (admin_id, "keys.create_key", bob.id, 201),
        (admin_id, "keys.revoke_key", bob.id, 200),
        (None, "sandboxes.create_sandbox", "", 401),
    } <= summary
    kills = _trail(server, action="sandboxes.kill_sandbox", since=started)
    assert {e["by"] for e in kills} == {alice.id, bob.id}


def test_the_trail_is_read_newest_first_a_page_at_a_time(server: CoveServer) -> None:
    tenant = new_tenant(server, "paged")
    with server.http(api_key=tenant.key) as client:
        for _ in range(5):
            client.post("/v1/tokens", json={"sandbox_id": "sbx_missing", "scopes": ["read"]})
    with server.http() as admin:
        first = admin.get("/v1/audit", params={"tenant_id": tenant.id, "limit": 3}).json()
        assert len(first["entries"]) == 3 and first["has_more"]
        rest = admin.get("/v1/audit", params={"tenant_id": tenant.id, "before": first["entries"][-1]["id"]}).json()
    ids = [e["id"] for e in first["entries"] + rest["entries"]]
    assert len(ids) == 5 and ids == sorted(ids, reverse=True) and not rest["has_more"]


def test_the_audit_page_is_documented(server: CoveServer) -> None:
    spec = httpx.get(server.url + "/openapi.json").json()
    assert "/v1/audit" in spec["paths"] and "AuditEntry" in spec["components"]["schemas"]
