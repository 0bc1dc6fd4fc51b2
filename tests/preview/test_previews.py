"""Preview URLs against a real server and a real app in a sandbox with no network: HTTP both ways (large,
chunked, streamed), WebSocket, who may open a preview, and what the app gets to see."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from cove import AsyncSandbox, PortInfo, PortNotFound, Sandbox
from tests.conftest import CoveServer, peak_rss
from tests.preview.conftest import APP_PORT, TOKEN_HEADER, start_echo_app, until_listening, ws_url
from tests.preview.echo_app import PATTERN

HUNDRED_MB = 100 * 1024 * 1024


async def test_get_and_post_reach_the_app_below_the_prefix(preview: PortInfo) -> None:
    async with httpx.AsyncClient(headers={TOKEN_HEADER: preview.token}) as client:
        got = (await client.get(preview.url + "a/b%20c", params={"x": "1"})).json()
        assert (got["method"], got["path"], got["query"]) == ("GET", "/a/b c", "x=1")
        posted = (await client.post(preview.url + "form", content=b"hello")).json()
        assert (posted["method"], posted["body"]) == ("POST", "hello")
        for method in ("PUT", "PATCH", "DELETE"):
            assert (await client.request(method, preview.url + "m")).json()["method"] == method
        head = await client.head(preview.url + "bytes/1000")
        assert head.status_code == 200 and head.headers["content-length"] == "1000" and head.content == b""


async def test_the_app_sees_its_forwarding_headers_and_none_of_coves_credentials(
    server: CoveServer, preview: PortInfo
) -> None:
    cookies = {"cove_preview_token": preview.token, "cove_other": "x", "theirs": "kept"}
    headers = {TOKEN_HEADER: preview.token, "authorization": f"Bearer {server.api_key}"}
    made_up = {"forwarded": "for=6.6.6.6", "x-real-ip": "6.6.6.6", "via": "1.1 elsewhere", "x-forwarded-host": "evil"}
    async with httpx.AsyncClient(headers={**headers, **made_up}, cookies=cookies) as client:
        seen = (await client.get(preview.url + "echo")).json()["headers"]
    assert TOKEN_HEADER.lower() not in seen and "authorization" not in seen
    assert seen["cookie"] == "theirs=kept"
    assert not {"forwarded", "x-real-ip", "via"} & set(seen) and seen["x-forwarded-host"] == server.url[7:]
    assert seen["x-forwarded-for"] == "127.0.0.1" and seen["x-forwarded-proto"] == "http"
    assert seen["x-forwarded-prefix"] == preview.url.removeprefix(server.url).rstrip("/")
    assert server.api_key not in str(seen) and preview.token not in str(seen)
    # The app's own Authorization and api_key pass; a Cove API key in the query does not.
    async with httpx.AsyncClient(headers={TOKEN_HEADER: preview.token, "authorization": "Bearer app-token"}) as client:
        echoed = (await client.get(preview.url + f"echo?api_key={server.api_key}&api_key=theirs&x=1")).json()
    assert echoed["headers"]["authorization"] == "Bearer app-token" and echoed["query"] == "api_key=theirs&x=1"


async def test_a_redirect_to_an_absolute_path_stays_under_the_prefix(server: CoveServer, preview: PortInfo) -> None:
    async with httpx.AsyncClient(headers={TOKEN_HEADER: preview.token}) as client:
        moved = await client.get(preview.url + "redirect")
    assert moved.status_code == 302
    assert server.url + moved.headers["location"] == preview.url + "echo"


async def test_chunked_both_ways(preview: PortInfo) -> None:
    async def pieces() -> AsyncIterator[bytes]:
        for index in range(50):
            yield bytes([index]) * 1000

    expected = hashlib.sha256(b"".join(bytes([i]) * 1000 for i in range(50))).hexdigest()
    async with httpx.AsyncClient(headers={TOKEN_HEADER: preview.token}) as client:
        uploaded = (await client.post(preview.url + "sha256", content=pieces())).json()
        assert uploaded == {"bytes": 50_000, "sha256": expected}
        reply = await client.get(preview.url + "bytes/300000", params={"chunked": "1"})
    assert reply.headers["transfer-encoding"] == "chunked" and "content-length" not in reply.headers
    assert reply.content == (PATTERN * 5)[:300_000]


async def test_a_hundred_megabytes_each_way_stream_without_being_held(server: CoveServer, preview: PortInfo) -> None:
    async def upload() -> AsyncIterator[bytes]:
        for _ in range(HUNDRED_MB // len(PATTERN)):
            yield PATTERN

    expected = hashlib.sha256(PATTERN * (HUNDRED_MB // len(PATTERN))).hexdigest()
    async with (
        peak_rss(server) as memory,
        httpx.AsyncClient(headers={TOKEN_HEADER: preview.token}, timeout=120) as client,
    ):
        # Chunked (a generator), then with a content-length.
        assert (await client.post(preview.url + "sha256", content=upload())).json() == {
            "bytes": HUNDRED_MB,
            "sha256": expected,
        }
        sized = await client.post(preview.url + "sha256", content=upload(), headers={"content-length": str(HUNDRED_MB)})
        assert sized.json()["sha256"] == expected
        digest, size = hashlib.sha256(), 0
        async with client.stream("GET", preview.url + f"bytes/{HUNDRED_MB}") as download:
            assert download.headers["content-length"] == str(HUNDRED_MB)
            async for piece in download.aiter_raw():
                digest.update(piece)
                size += len(piece)
        assert (size, digest.hexdigest()) == (HUNDRED_MB, expected)
    grown = memory.peak - memory.before
    assert grown < 40 * 1024 * 1024, f"the server grew by {grown / 2**20:.0f} MiB relaying 100 MB"


async def test_websocket_echo_with_subprotocol_and_close_code(preview: PortInfo) -> None:
    async with connect(
        ws_url(preview), additional_headers={TOKEN_HEADER: preview.token}, subprotocols=["chat", "other"]
    ) as socket:
        assert socket.subprotocol == "chat"
        await socket.send("hello")
        assert await socket.recv() == "hello"
        await socket.send(b"\x00\x01binary")
        assert await socket.recv() == b"\x00\x01binary"
        await socket.send("x" * 1_000_000)
        assert await socket.recv() == "x" * 1_000_000
        await socket.send("close")
        with pytest.raises(ConnectionClosed):
            await socket.recv()
        assert socket.close_code == 4001


async def test_a_websocket_opens_with_the_token_in_its_query(preview: PortInfo) -> None:
    async with connect(ws_url(preview, f"ws?token={preview.token}&theirs=1")) as socket:
        await socket.send("via query")
        assert await socket.recv() == "via query"
    with pytest.raises(InvalidStatus) as refused:
        await connect(ws_url(preview))
    assert refused.value.response.status_code == 401
    assert json.loads(refused.value.response.body)["error"]["code"] == "unauthorized"


async def test_private_needs_its_token_then_the_cookie_does(preview: PortInfo) -> None:
    async with httpx.AsyncClient() as browser:
        refused = await browser.get(preview.url + "echo")
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "unauthorized"
        assert (
            await browser.get(preview.url + "echo", headers={TOKEN_HEADER: "cove_tok_0123456789abcdef.1.wrong"})
        ).status_code == 401
        assert (await browser.get(preview.url + "echo", headers={TOKEN_HEADER: preview.token})).status_code == 200

        # ?token= once: a redirect to the same URL without it, and a cookie for that preview only.
        first = await browser.get(preview.url + "echo", params={"token": preview.token, "page": "2"})
        assert first.status_code == 307
        assert first.headers["location"] == httpx.URL(preview.url).path + "echo?page=2"
        cookie = first.headers["set-cookie"]
        assert f"Path={httpx.URL(preview.url).path};" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
        followed = await browser.get(preview.url + "echo?page=2")
        assert followed.status_code == 200 and followed.json()["query"] == "page=2"
        # The app's own ?token= (not the preview's) is the app's, and passes.
        theirs = await browser.get(preview.url + "echo", params={"token": "app-owned"})
        assert theirs.status_code == 200 and theirs.json()["query"] == "token=app-owned"


async def test_public_needs_nothing_and_private_again_needs_the_same_token(
    app_sandbox: AsyncSandbox, preview: PortInfo
) -> None:
    public = await app_sandbox.ports.expose(APP_PORT, public=True)
    assert (public.url, public.token, public.public) == (preview.url, preview.token, True)
    async with httpx.AsyncClient() as anyone:
        assert (await anyone.get(preview.url + "echo")).status_code == 200
        await app_sandbox.ports.expose(APP_PORT)
        assert (await anyone.get(preview.url + "echo")).status_code == 401
        assert (await anyone.get(preview.url + "echo", headers={TOKEN_HEADER: preview.token})).status_code == 200


async def test_closed_unexposed_and_unknown_answer_404(app_sandbox: AsyncSandbox, preview: PortInfo) -> None:
    closed = await app_sandbox.ports.close(APP_PORT)
    assert closed.port == APP_PORT
    assert await app_sandbox.ports.list() == []
    async with httpx.AsyncClient(headers={TOKEN_HEADER: preview.token}) as client:
        for url in (
            preview.url + "echo",
            preview.url.replace(f"/ports/{APP_PORT}/", "/ports/8001/"),
            preview.url.replace(app_sandbox.id, "sbx_0000000000000000"),
        ):
            gone = await client.get(url)
            assert gone.status_code == 404 and gone.json()["error"]["code"] == "port_not_found", url
    with pytest.raises(PortNotFound):
        await app_sandbox.ports.close(APP_PORT)


async def test_closing_a_port_ends_its_open_websockets(app_sandbox: AsyncSandbox, preview: PortInfo) -> None:
    async with connect(ws_url(preview), additional_headers={TOKEN_HEADER: preview.token}) as socket:
        await socket.send("before")
        assert await socket.recv() == "before"
        await app_sandbox.ports.close(APP_PORT)
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(socket.recv(), 10)


async def test_no_listener_answers_502_with_a_clear_message(app_sandbox: AsyncSandbox) -> None:
    nothing = await app_sandbox.ports.expose(9999, public=True)
    async with httpx.AsyncClient() as client:
        reply = await client.get(nothing.url)
    assert reply.status_code == 502
    error = reply.json()["error"]
    assert error["code"] == "port_not_listening" and "nothing listens on port 9999" in error["message"]


async def test_the_bare_prefix_redirects_to_the_app(preview: PortInfo) -> None:
    async with httpx.AsyncClient(headers={TOKEN_HEADER: preview.token}) as client:
        bare = await client.get(preview.url.rstrip("/"), params={"a": "1"})
    assert bare.status_code == 307 and bare.headers["location"] == httpx.URL(preview.url).path + "?a=1"


async def test_ports_are_listed_and_dropped_when_the_sandbox_stops(connection: dict[str, str]) -> None:
    sandbox = await AsyncSandbox.create(**connection)
    try:
        exposed = [await sandbox.ports.expose(port, public=port == 3000) for port in (8080, 3000)]
        listed = await sandbox.ports.list()
        assert [(p.port, p.public) for p in listed] == [(3000, True), (8080, False)]
        assert {p.token for p in listed} == {p.token for p in exposed} and all(p.token for p in listed)
        assert all(p.url.endswith(f"/v1/sandboxes/{sandbox.id}/ports/{p.port}/") for p in listed)
    finally:
        await sandbox.kill()
    assert await sandbox.ports.list() == []
    async with httpx.AsyncClient() as client:
        assert (await client.get(exposed[1].url)).status_code == 404


def test_the_sync_sdk(connection: dict[str, str]) -> None:
    with Sandbox.create(**connection) as sandbox:
        preview = sandbox.ports.expose(5000)
        assert (preview.port, preview.public) == (5000, False)
        assert sandbox.ports.list() == [preview]
        assert sandbox.ports.close(5000) == preview
        assert sandbox.ports.list() == []


def test_expose_and_close_are_in_the_audit_trail(server: CoveServer, connection: dict[str, str]) -> None:
    with Sandbox.create(**connection) as sandbox:
        sandbox.ports.expose(5000)
        sandbox.ports.expose(5000, public=True)
        sandbox.ports.close(5000)
        with server.http() as admin:
            trail = admin.get("/v1/audit", params={"limit": 10}).json()["entries"]
    ours = [(e["action"], e["target"], e["status"]) for e in reversed(trail) if sandbox.id in e["target"]]
    assert ours[-3:] == [
        ("ports.expose_port", f"{sandbox.id}/5000", 201),
        ("ports.expose_port", f"{sandbox.id}/5000", 201),
        ("ports.close_port", f"{sandbox.id}/5000", 200),
    ]


async def test_exposing_is_bounded_and_checked(server: CoveServer, app_sandbox: AsyncSandbox) -> None:
    with server.http() as client:
        for port in (0, 65536, -1, "http"):
            reply = client.post(f"/v1/sandboxes/{app_sandbox.id}/ports", json={"port": port})
            assert reply.status_code == 422 and "port" in reply.json()["error"]["message"], port
        missing = client.post("/v1/sandboxes/sbx_0000000000000000/ports", json={"port": 80})
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "sandbox_not_found"
        for port in range(1000, 1064):
            assert client.post(f"/v1/sandboxes/{app_sandbox.id}/ports", json={"port": port}).status_code == 201
        over = client.post(f"/v1/sandboxes/{app_sandbox.id}/ports", json={"port": 2000})
        assert over.status_code == 429 and over.json()["error"]["code"] == "quota_exceeded"


async def test_host_based_previews_with_a_preview_domain(tmp_path: Path) -> None:
    server = CoveServer(tmp_path / "home", extra_env={"COVE_PREVIEW_DOMAIN": "preview.test"})
    server.start()
    try:
        async with await AsyncSandbox.create(url=server.url, api_key=server.api_key) as sandbox:
            await start_echo_app(sandbox)
            preview = await sandbox.ports.expose(APP_PORT, public=True)
            host = f"{APP_PORT}-{sandbox.id}.preview.test"
            assert preview.url == f"http://{host}/"
            async with httpx.AsyncClient(base_url=server.url) as client:
                deadline = time.monotonic() + 30
                while (app_root := await client.get("/", headers={"host": host})).status_code == 502:
                    assert time.monotonic() < deadline
                    await asyncio.sleep(0.1)
                # The app owns / of its host, the Cove API's paths included; its redirects are its own.
                assert app_root.json()["path"] == "/"
                api_path = (await client.get("/v1/sandboxes", headers={"host": host.upper() + ":80"})).json()
                assert api_path["path"] == "/v1/sandboxes"
                assert (await client.get("/redirect", headers={"host": host})).headers["location"] == "/echo"
                # The path-based URL answers too; another host is the API's.
                path_based = f"/v1/sandboxes/{sandbox.id}/ports/{APP_PORT}/echo"
                assert (await client.get(path_based)).json()["path"] == "/echo"
                assert (await client.get("/v1/sandboxes", headers={"host": "elsewhere.test"})).status_code == 401
                await sandbox.ports.expose(APP_PORT)
                cookie = (await client.get(f"/?token={preview.token}", headers={"host": host})).headers["set-cookie"]
                assert "Path=/;" in cookie and "Domain" not in cookie
    finally:
        server.kill_all_sandboxes()
        server.kill()


@pytest.mark.parametrize("network", ["none", "egress", {"mode": "egress", "allow": ["192.0.2.1/32"]}])
async def test_a_preview_reaches_the_app_in_every_network_mode(connection: dict[str, str], network: object) -> None:
    async with await AsyncSandbox.create(network=network, **connection) as sandbox:  # type: ignore[arg-type]
        await start_echo_app(sandbox)
        preview = await sandbox.ports.expose(APP_PORT)
        await until_listening(preview)
        async with httpx.AsyncClient(headers={TOKEN_HEADER: preview.token}) as client:
            assert (await client.get(preview.url + "echo")).json()["path"] == "/echo"
