"""Scoped tokens open their sandbox (or session) for what their scopes name, and nothing else: every scope is
tried against every route of ``/openapi.json`` and every stream it must not open (403 inside its sandbox, 404
outside it), and a token that expired, was revoked, or whose key was revoked opens nothing at all (401)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.conftest import CoveServer, Tenant, new_tenant
from tests.security.api_surface import operations, websocket_paths

SCOPES = ("read", "prompt", "approve", "exec", "files", "preview")
# What each route needs (as the services decide it; docs/teams.md has the table): a scope and how far into a
# sandbox it reaches ("session": a session's token too), "key" (no token), "admin", or "any" credential.
NEEDS: dict[str, tuple[str, str]] = {
    "GET /healthz": ("any", ""),
    "POST /v1/sandboxes": ("key", ""),
    "GET /v1/sandboxes": ("read", "session"),
    "GET /v1/sandboxes/{sandbox_id}": ("read", "session"),
    "DELETE /v1/sandboxes/{sandbox_id}": ("key", ""),
    "POST /v1/sandboxes/{sandbox_id}/timeout": ("key", ""),
    "PUT /v1/sandboxes/{sandbox_id}/network": ("key", ""),
    "POST /v1/sandboxes/{sandbox_id}/exec": ("exec", "sandbox"),
    "GET /v1/sandboxes/{sandbox_id}/processes": ("read", "sandbox"),
    "GET /v1/sandboxes/{sandbox_id}/processes/{process_id}": ("read", "sandbox"),
    "DELETE /v1/sandboxes/{sandbox_id}/processes/{process_id}": ("exec", "sandbox"),
    "POST /v1/sandboxes/{sandbox_id}/processes/{process_id}/signal": ("exec", "sandbox"),
    "POST /v1/sandboxes/{sandbox_id}/pty": ("exec", "sandbox"),
    "GET /v1/sandboxes/{sandbox_id}/pty": ("read", "sandbox"),
    "GET /v1/sandboxes/{sandbox_id}/pty/{pty_id}": ("read", "sandbox"),
    "DELETE /v1/sandboxes/{sandbox_id}/pty/{pty_id}": ("exec", "sandbox"),
    "POST /v1/sandboxes/{sandbox_id}/pty/{pty_id}/resize": ("exec", "sandbox"),
    "POST /v1/sandboxes/{sandbox_id}/pty/{pty_id}/signal": ("exec", "sandbox"),
    "GET /v1/sandboxes/{sandbox_id}/files": ("read", "sandbox"),
    "PUT /v1/sandboxes/{sandbox_id}/files": ("files", "sandbox"),
    "DELETE /v1/sandboxes/{sandbox_id}/files": ("files", "sandbox"),
    "GET /v1/sandboxes/{sandbox_id}/files/list": ("read", "sandbox"),
    "GET /v1/sandboxes/{sandbox_id}/files/stat": ("read", "sandbox"),
    "GET /v1/sandboxes/{sandbox_id}/files/exists": ("read", "sandbox"),
    "POST /v1/sandboxes/{sandbox_id}/files/mkdir": ("files", "sandbox"),
    "POST /v1/sandboxes/{sandbox_id}/files/rename": ("files", "sandbox"),
    "POST /v1/sandboxes/{sandbox_id}/checkpoints": ("key", ""),
    "GET /v1/sandboxes/{sandbox_id}/checkpoints": ("read", "sandbox"),
    "GET /v1/checkpoints/{checkpoint_id}": ("read", "sandbox"),
    "DELETE /v1/checkpoints/{checkpoint_id}": ("key", ""),
    "POST /v1/sandboxes/{sandbox_id}/restore": ("key", ""),
    "POST /v1/sandboxes/{sandbox_id}/agent": ("prompt", "sandbox"),
    "GET /v1/sandboxes/{sandbox_id}/agent": ("read", "session"),
    "GET /v1/agent-sessions": ("read", "session"),
    "GET /v1/sandboxes/{sandbox_id}/agent/{session_id}": ("read", "session"),
    "POST /v1/sandboxes/{sandbox_id}/agent/{session_id}/prompt": ("prompt", "session"),
    "POST /v1/sandboxes/{sandbox_id}/agent/{session_id}/interrupt": ("prompt", "session"),
    "POST /v1/sandboxes/{sandbox_id}/agent/{session_id}/permissions/{request_id}": ("approve", "session"),
    "POST /v1/sandboxes/{sandbox_id}/agent/{session_id}/configure": ("prompt", "session"),
    "POST /v1/sandboxes/{sandbox_id}/agent/{session_id}/kill": ("key", ""),
    "GET /v1/sandboxes/{sandbox_id}/agent/{session_id}/events": ("read", "session"),
    "GET /v1/sandboxes/{sandbox_id}/agent/{session_id}/turns/{turn}/diff": ("read", "session"),
    "GET /v1/model": ("any", ""),
    "GET /v1/pool": ("admin", ""),
    "DELETE /v1/pool": ("admin", ""),
    "POST /v1/keys": ("admin", ""),
    "GET /v1/keys": ("admin", ""),
    "GET /v1/keys/{key_id}": ("admin", ""),
    "PATCH /v1/keys/{key_id}": ("admin", ""),
    "DELETE /v1/keys/{key_id}": ("admin", ""),
    "GET /v1/usage": ("key", ""),
    "GET /v1/tokens": ("key", ""),
    "POST /v1/tokens": ("key", ""),
    "DELETE /v1/tokens/{token_id}": ("key", ""),
    "GET /v1/whoami": ("any", ""),
    "GET /v1/audit": ("admin", ""),
    "POST /v1/sandboxes/{sandbox_id}/ports": ("key", ""),
    "GET /v1/sandboxes/{sandbox_id}/ports": ("key", ""),
    "DELETE /v1/sandboxes/{sandbox_id}/ports/{port}": ("key", ""),
}
STREAMS = {
    "/v1/sandboxes/{sandbox_id}/exec/ws": ("exec", "sandbox"),
    "/v1/sandboxes/{sandbox_id}/processes/{process_id}/ws": ("exec", "sandbox"),
    "/v1/sandboxes/{sandbox_id}/pty/{pty_id}/ws": ("exec", "sandbox"),
    "/v1/sandboxes/{sandbox_id}/agent/{session_id}/ws": ("read", "session"),
}


@dataclass(frozen=True)
class Token:
    scopes: tuple[str, ...]
    session: bool  # for the session alone, or the whole sandbox
    secret: str

    def opens(self, need: tuple[str, str]) -> bool:
        scope, reach = need
        if scope in ("key", "admin"):
            return False
        if scope == "any":
            return True
        return scope in self.scopes and not (reach == "sandbox" and self.session)


@dataclass(frozen=True)
class Scene:
    alice: Tenant
    ids: dict[str, str]  # the sandbox, session… the tokens are for
    elsewhere: dict[str, str]  # alice's too, but another sandbox (and another session)
    tokens: list[Token]


@pytest.fixture(scope="module")
def scene(server: CoveServer) -> Iterator[Scene]:
    alice = new_tenant(server, "alice")
    made = []
    with server.http(api_key=alice.key) as client:
        for _ in range(2):
            sandbox = client.post("/v1/sandboxes", json={"network": "none"}).json()["id"]
            base = f"/v1/sandboxes/{sandbox}"
            process = client.post(f"{base}/exec", json={"command": "sleep 600", "background": True}).json()
            made.append(
                {
                    "sandbox_id": sandbox,
                    "session_id": client.post(f"{base}/agent", json={}).json()["session_id"],
                    "checkpoint_id": client.post(f"{base}/checkpoints", json={}).json()["id"],
                    "process_id": process["process_id"],
                    "pty_id": client.post(f"{base}/pty", json={"command": "sleep 600"}).json()["pty_id"],
                    "turn": "1",
                    "request_id": "perm_0123456789abcdef",
                    "key_id": alice.id,
                    "port": "8000",
                }
            )
        ids, elsewhere = made
        ids["other_session"] = client.post(f"/v1/sandboxes/{ids['sandbox_id']}/agent", json={}).json()["session_id"]
        tokens = []
        for scopes, session in [
            *[((scope,), False) for scope in SCOPES],
            *[((scope,), True) for scope in ("read", "prompt", "approve")],
            (SCOPES, True),
        ]:
            body = {"sandbox_id": ids["sandbox_id"], "scopes": list(scopes), "ttl_s": 3600}
            if session:
                body["session_id"] = ids["session_id"]
            minted = client.post("/v1/tokens", json=body).json()
            tokens.append(Token(scopes, session, minted["token"]))
        ids["token_id"] = minted["id"]
    yield Scene(alice, ids, elsewhere, tokens)
    with server.http() as admin:
        for made_ids in made:
            admin.delete(f"/v1/sandboxes/{made_ids['sandbox_id']}")
            admin.delete(f"/v1/checkpoints/{made_ids['checkpoint_id']}")
        admin.delete(f"/v1/keys/{alice.id}")


def test_every_route_and_stream_has_what_it_needs_written_down(server: CoveServer) -> None:
    spec = httpx.get(server.url + "/openapi.json").json()
    assert {op.name for op in operations(spec)} == set(NEEDS), "write down what the new route needs in NEEDS"
    assert websocket_paths() == set(STREAMS)


def test_no_scope_opens_a_route_it_does_not_name(server: CoveServer, scene: Scene) -> None:
    spec = httpx.get(server.url + "/openapi.json").json()
    refused = 0
    for token in scene.tokens:
        with server.http(api_key=token.secret) as client:
            for op in operations(spec):
                if token.opens(NEEDS[op.name]):
                    continue
                reply = op.send(client, {**scene.ids, "token_id": scene.ids["token_id"]})
                assert (reply.status_code, reply.json()["error"]["code"]) == (403, "forbidden"), (
                    f"{op.name} with {token.scopes} (session: {token.session}): {reply.text}"
                )
                refused += 1
    assert refused > 250


def test_no_token_reaches_outside_its_sandbox_or_session(server: CoveServer, scene: Scene) -> None:
    spec = httpx.get(server.url + "/openapi.json").json()
    full = scene.tokens[-1]  # every scope, for one session
    for token in scene.tokens:
        with server.http(api_key=token.secret) as client:
            for op in operations(spec):
                if not op.ids or not token.opens(NEEDS[op.name]):
                    continue
                reply = op.send(client, scene.elsewhere)  # alice's too, but another sandbox
                assert reply.status_code == 404, f"{op.name} with {token.scopes}: {reply.text}"
            sandboxes = client.get("/v1/sandboxes").json().get("sandboxes", [])
            assert {s["id"] for s in sandboxes} <= {scene.ids["sandbox_id"]}
    with server.http(api_key=full.secret) as client:
        for op in operations(spec):
            if "{session_id}" in op.path and full.opens(NEEDS[op.name]):
                reply = op.send(client, {**scene.ids, "session_id": scene.ids["other_session"]})
                assert (reply.status_code, reply.json()["error"]["code"]) == (404, "session_not_found"), op.name
        listed = client.get(f"/v1/sandboxes/{scene.ids['sandbox_id']}/agent").json()["sessions"]
        assert [s["session_id"] for s in listed] == [scene.ids["session_id"]]
        assert [s["session_id"] for s in client.get("/v1/agent-sessions").json()["sessions"]] == [
            scene.ids["session_id"]
        ]


def test_each_scope_opens_what_it_names(server: CoveServer, scene: Scene) -> None:
    base = f"/v1/sandboxes/{scene.ids['sandbox_id']}"
    session = f"{base}/agent/{scene.ids['session_id']}"
    by_scope = {(t.scopes, t.session): t.secret for t in scene.tokens}
    with server.http(api_key=by_scope[("read",), False]) as reader:
        assert reader.get(base).json()["id"] == scene.ids["sandbox_id"]
        assert reader.get(f"{base}/files/list").status_code == 200
        assert reader.get(f"{session}/events").status_code == 200
        assert reader.get(f"{base}/pty/{scene.ids['pty_id']}").json()["running"]
    with server.http(api_key=by_scope[("read",), True]) as session_reader:
        reply = session_reader.get(f"{session}/turns/1/diff")
        assert reply.json()["error"]["code"] == "turn_not_found"  # it reached the session's turns
    with server.http(api_key=by_scope[("exec",), False]) as runner:
        assert runner.post(f"{base}/exec", json={"command": "echo ran"}).json()["stdout"] == "ran\n"
        made = runner.post(f"{base}/pty", json={"command": "sleep 600"}).json()
        assert runner.delete(f"{base}/pty/{made['pty_id']}").json()["pty_id"] == made["pty_id"]
    with server.http(api_key=by_scope[("files",), False]) as writer:
        assert writer.put(f"{base}/files", params={"path": "by-token.txt"}, content=b"hi").status_code == 200
    with server.http(api_key=by_scope[("approve",), True]) as approver:
        reply = approver.post(f"{session}/permissions/perm_0123456789abcdef", json={"decision": "allow"})
        assert reply.json()["error"]["code"] == "permission_not_found"  # it reached the session's runner
    with server.http(api_key=by_scope[("prompt",), True]) as prompter:
        assert prompter.post(f"{session}/configure", json={"max_turns": 3}).json()["config"]["max_turns"] == 3


def test_streams_open_for_their_scope_only(server: CoveServer, scene: Scene) -> None:
    ids = scene.ids
    by_scope = {(t.scopes, t.session): t.secret for t in scene.tokens}
    base = server.url.replace("http", "ws") + f"/v1/sandboxes/{ids['sandbox_id']}"

    async def check() -> None:
        # read: the session's events, but not its commands
        async with connect(f"{base}/agent/{ids['session_id']}/ws?token={by_scope[('read',), True]}") as socket:
            while json.loads(await socket.recv()).get("type") != "scrollback_end":
                pass
            await socket.send(json.dumps({"op": "prompt", "text": "@say no", "id": 1}))
            while (ack := json.loads(await socket.recv())).get("type") != "ack":
                pass
            assert (ack["ok"], ack["error"]["status"], ack["error"]["code"]) == (False, 403, "forbidden")
            await socket.send(json.dumps({"op": "kill", "id": 2}))
            while (ack := json.loads(await socket.recv())).get("type") != "ack":
                pass
            assert ack["error"]["status"] == 403
        for path, first in [
            (f"{base}/exec/ws", json.dumps({"command": "true"})),
            (f"{base}/processes/{ids['process_id']}/ws", None),
            (f"{base}/pty/{ids['pty_id']}/ws", None),
        ]:
            for secret in (by_scope[("read",), False], by_scope[SCOPES, True]):
                async with connect(f"{path}?token={secret}") as socket:
                    if first is not None:
                        await socket.send(first)
                    error = json.loads(await socket.recv())
                    assert error["code"] == "forbidden", path
                    await socket.wait_closed()
                    assert socket.close_code == 4403
        async with connect(
            f"{base}/exec/ws", subprotocols=["cove", f"cove.bearer.{by_scope[('exec',), False]}"]
        ) as socket:
            assert socket.subprotocol == "cove"
            await socket.send(json.dumps({"command": "echo streamed"}))
            assert json.loads(await socket.recv())["type"] == "started"
        async with connect(f"{base}/pty/{ids['pty_id']}/ws?token={by_scope[('exec',), False]}") as socket:
            assert json.loads(await socket.recv())["type"] == "attached"

    asyncio.run(check())
    reply = httpx.get(
        f"{server.url}/v1/sandboxes/{ids['sandbox_id']}/agent/{ids['session_id']}/events",
        params={"token": by_scope[("prompt",), True]},
        headers={"accept": "text/event-stream"},
    )
    assert (reply.status_code, reply.json()["error"]["code"]) == (403, "forbidden")


async def test_expired_and_revoked_tokens_and_revoked_keys_open_nothing(own_server: CoveServer) -> None:
    """401, as for a token that never was: on REST, on SSE, on a WebSocket handshake."""
    alice = new_tenant(own_server, "alice")
    with own_server.http(api_key=alice.key) as client:
        sandbox = client.post("/v1/sandboxes", json={"network": "none"}).json()["id"]

        def mint(ttl_s: int = 600) -> dict[str, str]:
            body = {"sandbox_id": sandbox, "scopes": ["read"], "ttl_s": ttl_s}
            minted: dict[str, str] = client.post("/v1/tokens", json=body).json()
            return minted

        expiring, revoked, orphaned = mint(1), mint(), mint()
        assert client.delete(f"/v1/tokens/{revoked['id']}").json()["revoked_at"] is not None
        assert revoked["id"] not in {t["id"] for t in client.get("/v1/tokens").json()["tokens"]}
        forged = orphaned["token"][:-4] + ("AAAA" if not orphaned["token"].endswith("AAAA") else "BBBB")
    time.sleep(1.5)  # the 1 s token's lifetime running out is what is tested: time itself is the event
    with own_server.http() as admin:
        assert admin.delete(f"/v1/keys/{alice.id}").status_code == 200
    url = own_server.url + f"/v1/sandboxes/{sandbox}"
    for secret in (expiring["token"], revoked["token"], orphaned["token"], forged, alice.key):
        reply = httpx.get(url, headers={"authorization": f"Bearer {secret}"})
        assert (reply.status_code, reply.json()["error"]["code"]) == (401, "unauthorized"), secret
        with pytest.raises(InvalidStatus) as refused:
            async with connect(url.replace("http", "ws") + f"/processes/p1/ws?token={secret}"):
                pass
        assert refused.value.response.status_code == 401
        assert json.loads(refused.value.response.body)["error"]["code"] == "unauthorized"
    with own_server.http() as admin:
        admin.delete(f"/v1/sandboxes/{sandbox}")


def test_a_token_that_may_only_exec_signals_and_kills_what_it_runs(server: CoveServer) -> None:
    """What a signal or a kill answers is the process as it is then: the token that may send it is told that much."""
    with server.http() as admin:
        sandbox = admin.post("/v1/sandboxes", json={"network": "none"}).json()["id"]
        try:
            minted = admin.post("/v1/tokens", json={"sandbox_id": sandbox, "scopes": ["exec"], "ttl_s": 600}).json()
            with server.http(api_key=minted["token"]) as client:
                base = f"/v1/sandboxes/{sandbox}/processes"
                for ask in ("signal", "kill"):
                    started = client.post(
                        f"/v1/sandboxes/{sandbox}/exec", json={"command": "sleep 600", "background": True}
                    )
                    process_id = started.json()["process_id"]
                    if ask == "signal":
                        reply = client.post(f"{base}/{process_id}/signal", json={"signal": "SIGTERM"})
                    else:
                        reply = client.delete(f"{base}/{process_id}")
                    assert reply.status_code == 200, reply.text
                    assert reply.json()["process_id"] == process_id
                    assert client.get(f"{base}/{process_id}").status_code == 403  # reading it needs "read"
        finally:
            admin.delete(f"/v1/sandboxes/{sandbox}")
