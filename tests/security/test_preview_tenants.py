"""Previews across the boundary between clients: another tenant's private preview is 404 (as an unexposed port
is), a token for one sandbox opens no other sandbox's preview, the token ``expose`` gives (a scoped token with
the ``preview`` scope) reaches nothing of the API, and what it opened ends when it is revoked."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from cove import AsyncSandbox, PortInfo
from tests.conftest import CoveServer, Tenant, new_tenant
from tests.preview.conftest import APP_PORT, TOKEN_HEADER, start_echo_app, until_listening, ws_url
from tests.security.api_surface import operations, websocket_paths


def ways(token: str) -> list[dict[str, Any]]:
    """Every way a client may bring a token to a preview."""
    return [
        {"headers": {TOKEN_HEADER: token}},
        {"headers": {"authorization": f"Bearer {token}"}},
        {"params": {"token": token}},
        {"cookies": {"cove_preview_token": token}},
    ]


def token_id(token: str) -> str:
    """A scoped token's id: ``cove_tok_<hex>.<expiry>.<signature>`` names ``tok_<hex>``."""
    return token.removeprefix("cove_").split(".")[0]


@pytest.fixture
async def alice(server: CoveServer) -> AsyncIterator[Tenant]:
    tenant = new_tenant(server, "alice")
    yield tenant
    with server.http() as admin:
        admin.delete(f"/v1/keys/{tenant.id}")


@pytest.fixture
async def shop(server: CoveServer, alice: Tenant) -> AsyncIterator[tuple[AsyncSandbox, PortInfo]]:
    """Alice's sandbox with the echo app, its port exposed (private) and answering."""
    async with await AsyncSandbox.create(network="none", **alice.connection(server)) as sandbox:
        await start_echo_app(sandbox)
        preview = await sandbox.ports.expose(APP_PORT)
        await until_listening(preview)
        yield sandbox, preview


async def test_another_tenants_preview_is_404_as_an_unexposed_port_is(
    server: CoveServer, shop: tuple[AsyncSandbox, PortInfo]
) -> None:
    sandbox, preview = shop
    bob = new_tenant(server, "bob")
    async with await AsyncSandbox.create(network="none", **bob.connection(server)) as own:
        bobs_preview = (await own.ports.expose(APP_PORT)).token
        with server.http(api_key=bob.key) as client:
            body = {"sandbox_id": own.id, "scopes": ["read", "exec", "files", "preview"], "ttl_s": 600}
            bobs_everything = client.post("/v1/tokens", json=body).json()["token"]
        unexposed = preview.url.replace(f"/ports/{APP_PORT}/", "/ports/8001/")
        for token in (bobs_preview, bobs_everything):
            for way in ways(token):
                async with httpx.AsyncClient(**way) as client:
                    theirs, nothing = await client.get(preview.url + "echo"), await client.get(unexposed + "echo")
                assert (theirs.status_code, theirs.json()["error"]["code"]) == (404, "port_not_found"), way
                assert theirs.json()["error"]["message"].replace(str(APP_PORT), "P") == nothing.json()["error"][
                    "message"
                ].replace("8001", "P")
            with pytest.raises(InvalidStatus) as refused:
                await connect(ws_url(preview), additional_headers={TOKEN_HEADER: token})
            assert refused.value.response.status_code == 404
            assert json.loads(refused.value.response.body)["error"]["code"] == "port_not_found"
        async with httpx.AsyncClient(headers={TOKEN_HEADER: bobs_preview}) as client:
            # A public preview is anyone's: no credential is looked at, bob's neither.
            await sandbox.ports.expose(APP_PORT, public=True)
            assert (await client.get(preview.url + "echo")).status_code == 200
    with server.http() as admin:
        admin.delete(f"/v1/keys/{bob.id}")


async def test_a_token_for_one_sandbox_opens_no_other_sandboxs_preview(
    server: CoveServer, alice: Tenant, shop: tuple[AsyncSandbox, PortInfo]
) -> None:
    sandbox, preview = shop
    async with await AsyncSandbox.create(network="none", **alice.connection(server)) as other:
        others = await other.ports.expose(APP_PORT)
        for way in ways(preview.token):
            async with httpx.AsyncClient(**way) as client:
                reply = await client.get(others.url)
                assert (reply.status_code, reply.json()["error"]["code"]) == (404, "port_not_found"), way
        for way in ways(others.token):
            async with httpx.AsyncClient(**way) as client:
                assert (await client.get(preview.url + "echo")).status_code == 404, way
    # Within its sandbox a token opens every preview its scopes allow: another port (nothing listens there: 502),
    # not with a token without the preview scope (403).
    unlistened = await sandbox.ports.expose(9999)
    async with httpx.AsyncClient(headers={TOKEN_HEADER: preview.token}) as client:
        assert (await client.get(unlistened.url)).json()["error"]["code"] == "port_not_listening"
    with server.http(api_key=alice.key) as client:
        body = {"sandbox_id": sandbox.id, "scopes": ["read", "exec", "files"], "ttl_s": 600}
        reader = client.post("/v1/tokens", json=body).json()["token"]
    async with httpx.AsyncClient(headers={TOKEN_HEADER: reader}) as client:
        reply = await client.get(preview.url + "echo")
    assert (reply.status_code, reply.json()["error"]["code"]) == (403, "forbidden")
    assert "'preview' scope" in reply.json()["error"]["message"]


async def test_the_preview_token_and_cookie_reach_nothing_of_the_api(
    server: CoveServer, alice: Tenant, shop: tuple[AsyncSandbox, PortInfo]
) -> None:
    sandbox, preview = shop
    with server.http(api_key=alice.key) as client:
        minted = {t["id"]: t for t in client.get("/v1/tokens").json()["tokens"]}[token_id(preview.token)]
    assert (minted["scopes"], minted["sandbox_id"], minted["session_id"]) == (["preview"], sandbox.id, None)
    ids = {
        "sandbox_id": sandbox.id,
        "session_id": "ses_0000000000000000",
        "checkpoint_id": "ckpt_0000000000000000",
        "process_id": "p1",
        "pty_id": "pty1",
        "turn": "1",
        "request_id": "perm_0123456789abcdef",
        "key_id": alice.id,
        "token_id": minted["id"],
        "port": str(APP_PORT),
    }
    spec = httpx.get(server.url + "/openapi.json").json()
    tried = 0
    for op in operations(spec):
        if op.name == "GET /healthz":
            continue
        for way in ({"cookies": {"cove_preview_token": preview.token}}, {"headers": {TOKEN_HEADER: preview.token}}):
            with httpx.Client(base_url=server.url, timeout=60, **way) as client:  # not the API's credentials
                reply = op.send(client, ids)
                assert (reply.status_code, reply.json()["error"]["code"]) == (401, "unauthorized"), op.name
        if op.ids:  # as a bearer token it is a token of the preview scope alone: nothing it names opens
            with server.http(api_key=preview.token) as client:
                reply = op.send(client, ids)
            assert reply.status_code in (403, 404), f"{op.name}: {reply.text}"
        tried += 1
    assert tried > 40
    for path in websocket_paths():
        url = server.url.replace("http", "ws") + path.format(**ids)
        with pytest.raises(InvalidStatus) as refused:
            await connect(url, additional_headers={"cookie": f"cove_preview_token={preview.token}"})
        assert refused.value.response.status_code == 401, path
    # The port's routes are an API key's: the token cannot list the ports (and their tokens) or expose another.
    with server.http(api_key=preview.token) as client:
        assert client.get(f"/v1/sandboxes/{sandbox.id}/ports").status_code == 403
        assert client.post(f"/v1/sandboxes/{sandbox.id}/ports", json={"port": 3000, "public": True}).status_code == 403


async def test_revoking_the_token_ends_what_it_opened_and_closing_the_port_revokes_it(
    server: CoveServer, alice: Tenant, shop: tuple[AsyncSandbox, PortInfo]
) -> None:
    sandbox, preview = shop
    async with connect(ws_url(preview), additional_headers={TOKEN_HEADER: preview.token}) as socket:
        await socket.send("before")
        assert await socket.recv() == "before"
        with server.http(api_key=alice.key) as client:
            assert client.delete(f"/v1/tokens/{token_id(preview.token)}").status_code == 200
        with pytest.raises(ConnectionClosed):
            await socket.recv()
        assert socket.close_code == 4401
    async with httpx.AsyncClient(headers={TOKEN_HEADER: preview.token}) as client:
        assert (await client.get(preview.url + "echo")).status_code == 401
    again = await sandbox.ports.expose(APP_PORT)  # its token was revoked: a new one
    assert again.token != preview.token and again.url == preview.url
    await sandbox.ports.close(APP_PORT)
    exposed = await sandbox.ports.expose(APP_PORT)
    async with httpx.AsyncClient() as client:
        assert (await client.get(preview.url + "echo", headers={TOKEN_HEADER: again.token})).status_code == 401
        assert (await client.get(preview.url + "echo", headers={TOKEN_HEADER: exposed.token})).status_code == 200
