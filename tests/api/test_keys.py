"""API keys: the admin makes, lists, changes and revokes tenants' keys; a revoked key (or token) stops working at
once, and every WebSocket and SSE stream it holds open is closed within a second."""

from __future__ import annotations

import asyncio
import json
import signal
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from tests.conftest import CoveServer, new_tenant, serving

CLOSED_CREDENTIAL = 4401


@pytest.fixture(scope="module")
def teams_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CoveServer]:
    """A server of this module's own: its revoked credentials make failed attempts, which the shared server's
    other tests must not be charged for."""
    with serving(tmp_path_factory.mktemp("keys") / "home", {"COVE_AUTH_FAILURES_PER_MINUTE": "1000"}) as server:
        yield server


def test_keys_are_made_listed_changed_and_revoked_by_the_admin(teams_server: CoveServer) -> None:
    with teams_server.http() as admin:
        made = admin.post("/v1/keys", json={"name": "ci robot", "quotas": {"running_sandboxes": 3}})
        assert made.status_code == 201
        key = made.json()
        assert key["key"].startswith("cove_") and key["id"].startswith("key_") and not key["admin"]
        assert key["quotas"]["running_sandboxes"] == 3
        assert key["quotas"]["agent_sessions"] == 10  # the server's default for what was left out
        listed = {k["id"]: k for k in admin.get("/v1/keys").json()["keys"]}
        assert "key" not in listed[key["id"]] and listed[key["id"]]["name"] == "ci robot"
        assert any(k["admin"] for k in listed.values())
        changed = admin.patch(f"/v1/keys/{key['id']}", json={"quotas": {"agent_sessions": None}}).json()
        assert (changed["quotas"]["agent_sessions"], changed["quotas"]["running_sandboxes"]) == (None, 3)
        assert admin.post("/v1/keys", json={"name": "bad\nname"}).status_code == 422
        admin_id = next(k["id"] for k in listed.values() if k["admin"])
        assert admin.delete(f"/v1/keys/{admin_id}").status_code == 409
        assert admin.delete("/v1/keys/key_000000000000").json()["error"]["code"] == "key_not_found"

        with teams_server.http(api_key=key["key"]) as tenant:
            assert tenant.get("/v1/sandboxes").status_code == 200
            assert tenant.get("/v1/keys").status_code == 403
            assert tenant.post("/v1/keys", json={"name": "escalate"}).status_code == 403
            assert admin.delete(f"/v1/keys/{key['id']}").json()["revoked_at"] is not None
            assert tenant.get("/v1/sandboxes").status_code == 401
        assert key["id"] not in {k["id"] for k in admin.get("/v1/keys").json()["keys"]}
        revoked = admin.get("/v1/keys", params={"include_revoked": True}).json()["keys"]
        assert any(k["id"] == key["id"] and k["revoked_at"] for k in revoked)


def test_whoami_says_what_a_key_or_a_token_is_and_may_do(teams_server: CoveServer) -> None:
    tenant = new_tenant(teams_server, "whoami")
    with teams_server.http() as admin:
        assert admin.get("/v1/whoami").json() | {"id": "", "tenant_id": ""} == {
            "id": "",
            "kind": "key",
            "tenant_id": "",
            "admin": True,
            "scopes": None,
            "sandbox_id": None,
            "session_id": None,
            "expires_at": None,
        }
    with teams_server.http(api_key=tenant.key) as client:
        me = client.get("/v1/whoami").json()
        assert (me["id"], me["tenant_id"], me["admin"]) == (tenant.id, tenant.id, False)
        sandbox = client.post("/v1/sandboxes", json={"network": "none"}).json()["id"]
        body = {"sandbox_id": sandbox, "scopes": ["read", "approve"], "ttl_s": 60}
        minted = client.post("/v1/tokens", json=body).json()
    with teams_server.http(api_key=minted["token"]) as page:
        token = page.get("/v1/whoami").json()
    assert token == {
        "id": minted["id"],
        "kind": "token",
        "tenant_id": tenant.id,
        "admin": False,
        "scopes": ["approve", "read"],
        "sandbox_id": sandbox,
        "session_id": None,
        "expires_at": minted["expires_at"],
    }
    with teams_server.http() as admin:
        admin.delete(f"/v1/sandboxes/{sandbox}")
        admin.delete(f"/v1/keys/{tenant.id}")


def test_the_token_secret_is_the_servers_alone(teams_server: CoveServer) -> None:
    secret = teams_server.home / "token_secret"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600 and len(secret.read_bytes()) == 32


async def _scrollback(socket: ClientConnection) -> None:
    while json.loads(await socket.recv()).get("type") != "scrollback_end":
        pass


async def _closed_within(socket: ClientConnection, seconds: float) -> tuple[int | None, float]:
    started = time.monotonic()
    await asyncio.wait_for(socket.wait_closed(), seconds)
    return socket.close_code, time.monotonic() - started


def _sse_closed(url: str, params: dict[str, str], opened: threading.Event, ended: list[float]) -> None:
    """Follow an SSE stream until the server ends it; ``ended`` gets when."""
    with httpx.stream("GET", url, params=params, headers={"accept": "text/event-stream"}, timeout=30) as reply:
        for line in reply.iter_lines():
            if line.startswith("event: scrollback_end"):
                opened.set()
    ended.append(time.monotonic())


async def test_a_revoked_keys_streams_and_its_tokens_streams_close_within_a_second(teams_server: CoveServer) -> None:
    tenant = new_tenant(teams_server, "leaving")
    with teams_server.http(api_key=tenant.key) as client:
        sandbox = client.post("/v1/sandboxes", json={"network": "none"}).json()["id"]
        session = client.post(f"/v1/sandboxes/{sandbox}/agent", json={}).json()["session_id"]
        token = client.post("/v1/tokens", json={"sandbox_id": sandbox, "scopes": ["read", "exec"]}).json()["token"]
    base = f"/v1/sandboxes/{sandbox}"
    ws = teams_server.url.replace("http", "ws")
    events = f"{teams_server.url}{base}/agent/{session}/events"
    opened, ended = threading.Event(), []
    follower = threading.Thread(target=_sse_closed, args=(events, {"token": token}, opened, ended))
    follower.start()
    headers = {"authorization": f"Bearer {tenant.key}"}
    async with (
        connect(f"{ws}{base}/agent/{session}/ws", additional_headers=headers) as by_key,
        connect(f"{ws}{base}/agent/{session}/ws?token={token}") as by_token,
        connect(f"{ws}{base}/exec/ws?token={token}") as streaming,
    ):
        await _scrollback(by_key)
        await _scrollback(by_token)
        await streaming.send(json.dumps({"command": "sleep 600"}))
        assert json.loads(await streaming.recv())["type"] == "started"
        assert await asyncio.to_thread(opened.wait, 10)
        revoked_at = time.monotonic()
        with teams_server.http() as admin:
            assert admin.delete(f"/v1/keys/{tenant.id}").status_code == 200
        for socket in (by_key, by_token, streaming):
            code, _ = await _closed_within(socket, 1.0)
            assert code == CLOSED_CREDENTIAL
            assert socket.close_reason == "the credential was revoked"
    await asyncio.to_thread(follower.join, 5)
    assert ended and ended[0] - revoked_at < 1.0
    with teams_server.http() as admin:  # what the tenant owned stays, for the admin to see and stop
        assert admin.get(f"{base}").json()["state"] == "running"
        admin.delete(base)


async def test_a_revoked_or_expired_tokens_stream_closes_and_the_keys_stay_open(teams_server: CoveServer) -> None:
    tenant = new_tenant(teams_server, "staying")
    with teams_server.http(api_key=tenant.key) as client:
        sandbox = client.post("/v1/sandboxes", json={"network": "none"}).json()["id"]
        session = client.post(f"/v1/sandboxes/{sandbox}/agent", json={}).json()["session_id"]
        mint = {"sandbox_id": sandbox, "session_id": session, "scopes": ["read"]}
        revoked = client.post("/v1/tokens", json={**mint, "ttl_s": 600}).json()
        expiring = client.post("/v1/tokens", json={**mint, "ttl_s": 2}).json()
    path = teams_server.url.replace("http", "ws") + f"/v1/sandboxes/{sandbox}/agent/{session}/ws"
    async with (
        connect(f"{path}?token={revoked['token']}") as by_revoked,
        connect(f"{path}?token={expiring['token']}") as by_expiring,
        connect(path, additional_headers={"authorization": f"Bearer {tenant.key}"}) as by_key,
    ):
        for socket in (by_revoked, by_expiring, by_key):
            await _scrollback(socket)
        with teams_server.http(api_key=tenant.key) as client:
            assert client.delete(f"/v1/tokens/{revoked['id']}").status_code == 200
        assert await _closed_within(by_revoked, 1.0) == (CLOSED_CREDENTIAL, pytest.approx(0, abs=1.0))
        code, _ = await _closed_within(by_expiring, expiring["expires_at"] - time.time() + 1.0)
        assert code == CLOSED_CREDENTIAL and by_expiring.close_reason == "the token expired"
        await by_key.send(json.dumps({"op": "configure", "max_turns": 2, "id": 1}))
        while (ack := json.loads(await by_key.recv())).get("type") != "ack":
            pass
        assert ack["ok"]
    with teams_server.http() as admin:
        admin.delete(f"/v1/sandboxes/{sandbox}")


def test_keys_are_cached_from_the_database_across_a_restart(tmp_path: Path) -> None:
    with serving(tmp_path / "home", {"COVE_POOL_SIZE": "0"}) as server:
        tenant = new_tenant(server, "durable")
        with server.http() as admin:
            gone = new_tenant(server, "gone")
            admin.delete(f"/v1/keys/{gone.id}")
        server.kill(signal.SIGTERM)
        server.start()
        with server.http(api_key=tenant.key) as client:
            assert client.get("/v1/usage").json()["tenant_id"] == tenant.id
        with server.http(api_key=gone.key) as client:
            assert client.get("/v1/usage").status_code == 401
