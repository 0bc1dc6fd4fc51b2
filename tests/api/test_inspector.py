"""Serving the Inspector: /ui/ and its deep links, the built files and their compressed twins, the headers every
reply carries, a server whose page was never built — and the WebSocket subprotocol the page authenticates with."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from cove.api import inspector
from tests.conftest import CoveServer


@pytest.fixture
def built(tmp_path: Path) -> Path:
    """A page as ``ui/build.mjs`` lays one out: index.html, hashed assets, and gzip and brotli twins."""
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text("<!doctype html><title>page</title>")
    (tmp_path / "assets" / "main-ABC.js").write_text("console.log('plain')")
    (tmp_path / "assets" / "main-ABC.js.gz").write_bytes(b"gzip twin")
    (tmp_path / "assets" / "main-ABC.js.br").write_bytes(b"brotli twin")
    return tmp_path


def client_for(directory: Path) -> TestClient:
    app = FastAPI()
    inspector.install(app, directory)
    return TestClient(app, follow_redirects=False)


def test_root_and_bare_prefix_redirect_to_the_page(built: Path) -> None:
    client = client_for(built)
    for path in ("/", "/ui"):
        for method in ("GET", "HEAD"):
            reply = client.request(method, path)
            assert reply.status_code == 307 and reply.headers["location"] == "/ui/"


def test_every_view_is_the_page_with_a_strict_policy(built: Path) -> None:
    client = client_for(built)
    for path in ("/ui/", "/ui/sandboxes/sbx_1", "/ui/sandboxes/sbx_1/sessions/ses_1?token=t"):
        reply = client.get(path, headers={"accept-encoding": "identity"})
        assert reply.status_code == 200 and "<title>page</title>" in reply.text
        assert reply.headers["content-type"] == "text/html; charset=utf-8"
        assert reply.headers["cache-control"] == "no-cache"
        policy = reply.headers["content-security-policy"]
        assert "default-src 'none'" in policy and "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
        assert "require-trusted-types-for 'script'" in policy
        assert reply.headers["referrer-policy"] == "no-referrer"
        assert reply.headers["x-content-type-options"] == "nosniff"


def test_assets_are_immutable_and_sent_compressed_when_accepted(built: Path) -> None:
    client = client_for(built)
    path = "/ui/assets/main-ABC.js"
    plain = client.get(path, headers={"accept-encoding": "identity"})
    assert plain.text == "console.log('plain')" and "content-encoding" not in plain.headers
    assert plain.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert plain.headers["content-type"].startswith(("text/javascript", "application/javascript"))
    for accepted, coding in (("gzip, br", "br"), ("gzip", "gzip")):
        with client.stream("GET", path, headers={"accept-encoding": accepted}) as reply:  # headers only
            assert reply.headers["content-encoding"] == coding and reply.headers["vary"] == "accept-encoding"
            assert "content-security-policy" in reply.headers


def test_only_built_files_are_served(built: Path) -> None:
    client = client_for(built)
    assert client.get("/ui/assets/main-OLD.js").status_code == 404  # a stale name is not the page
    assert client.get("/ui/assets/main-ABC.js.gz").status_code == 404  # twins only as a content-coding


def test_a_page_never_built_says_how_to_build_it(tmp_path: Path) -> None:
    reply = client_for(tmp_path / "missing").get("/ui/sandboxes/sbx_1")
    assert reply.status_code == 503 and "make ui" in reply.text
    assert "content-security-policy" in reply.headers


def test_the_page_needs_no_key_but_the_api_still_does(server: CoveServer) -> None:
    assert httpx.get(server.url + "/", follow_redirects=False).headers["location"] == "/ui/"
    assert httpx.get(server.url + "/v1/sandboxes").status_code == 401
    assert "/ui/" not in json.dumps(httpx.get(server.url + "/openapi.json").json()["paths"])


def _subprotocols(key: str) -> list[str]:
    return ["cove", f"cove.bearer.{key}"]


async def test_a_websocket_authenticates_by_subprotocol(server: CoveServer) -> None:
    with server.http() as client:
        sandbox = client.post("/v1/sandboxes", json={}).json()["id"]
        session = client.post(f"/v1/sandboxes/{sandbox}/agent", json={}).json()["session_id"]
    url = server.url.replace("http", "ws") + f"/v1/sandboxes/{sandbox}/agent/{session}/ws?after=0"
    try:
        async with connect(url, subprotocols=_subprotocols(server.api_key)) as socket:  # type: ignore[arg-type]
            assert socket.subprotocol == "cove"
            while json.loads(await asyncio.wait_for(socket.recv(), 30))["type"] != "scrollback_end":
                pass
        exec_url = server.url.replace("http", "ws") + f"/v1/sandboxes/{sandbox}/exec/ws"
        async with connect(exec_url, subprotocols=_subprotocols(server.api_key)) as socket:  # type: ignore[arg-type]
            await socket.send(json.dumps({"command": "echo hi"}))
            assert json.loads(await socket.recv())["type"] == "started"
        with pytest.raises(InvalidStatus):
            async with connect(url, subprotocols=_subprotocols("cove_wrong")):  # type: ignore[arg-type]
                pass
        with pytest.raises(InvalidStatus):
            async with connect(url, subprotocols=["cove", "cove.bearer."]):  # type: ignore[list-item]
                pass
    finally:
        with server.http() as client:
            client.delete(f"/v1/sandboxes/{sandbox}")
