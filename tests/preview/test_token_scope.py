"""A preview's token opens that preview and nothing else: every route of the API refuses it, however it is sent,
and so does every other private preview."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute, APIWebSocketRoute
from starlette.routing import BaseRoute, Route
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from cove import AsyncSandbox, PortInfo
from cove.api.app import create_app
from cove.config import ServerSettings
from tests.conftest import CoveServer
from tests.preview.conftest import APP_PORT, TOKEN_HEADER

# The only routes that need no key at all: health and the API's own description.
OPEN_ROUTES = {"/healthz", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}


def _walk(routes: Sequence[BaseRoute]) -> Iterator[BaseRoute]:
    for route in routes:
        included = getattr(route, "original_router", None)  # FastAPI's include_router keeps the router whole
        yield from _walk(included.routes) if included is not None else [route]


ROUTES = list(_walk(create_app(ServerSettings(home=Path("/nonexistent"))).routes))


def _url(path: str, sandbox: AsyncSandbox) -> str:
    values = {
        "sandbox_id": sandbox.id,
        "port": str(APP_PORT),
        "process_id": "p1",
        "session_id": "ses_0000000000000000",
        "checkpoint_id": "ckpt_0000000000000000",
        "request_id": "req_0000000000000000",
    }
    return re.sub(r"\{(\w+)\}", lambda name: values[name[1]], path)


def _ways(token: str) -> list[dict[str, Any]]:
    """Every way a client may present a preview token, and a bearer header as an API key would be."""
    return [
        {"headers": {"authorization": f"Bearer {token}"}},
        {"headers": {TOKEN_HEADER: token}},
        {"cookies": {"cove_preview_token": token}},
        {"params": {"token": token, "api_key": token}},
    ]


def test_the_walk_finds_every_route() -> None:
    http_routes = [r for r in ROUTES if isinstance(r, APIRoute)]
    assert len(http_routes) > 35 and len([r for r in ROUTES if isinstance(r, APIWebSocketRoute)]) == 3
    unprotected = {r.path for r in ROUTES if isinstance(r, Route) and not isinstance(r, APIRoute)}
    assert unprotected | {"/healthz"} == OPEN_ROUTES


async def test_every_http_route_refuses_a_preview_token(
    server: CoveServer, preview: PortInfo, app_sandbox: AsyncSandbox
) -> None:
    refused = []
    for way in _ways(preview.token):
        async with httpx.AsyncClient(base_url=server.url, timeout=30, **way) as client:
            for route in ROUTES:
                if not isinstance(route, APIRoute) or route.path in OPEN_ROUTES:
                    continue
                for method in route.methods:
                    reply = await client.request(method, _url(route.path, app_sandbox), json={})
                    assert reply.status_code == 401, (method, route.path, way, reply.text)
                    refused.append(route.path)
    assert len(refused) > 4 * 35


async def test_every_websocket_route_refuses_a_preview_token(
    server: CoveServer, preview: PortInfo, app_sandbox: AsyncSandbox
) -> None:
    for route in ROUTES:
        if not isinstance(route, APIWebSocketRoute):
            continue
        url = server.url.replace("http://", "ws://", 1) + _url(route.path, app_sandbox)
        for way in [
            {"additional_headers": {"authorization": f"Bearer {preview.token}"}},
            {"additional_headers": {TOKEN_HEADER: preview.token, "cookie": f"cove_preview_token={preview.token}"}},
        ]:
            with pytest.raises(InvalidStatus) as rejected:
                await connect(url, **way)
            assert rejected.value.response.status_code == 403, (route.path, way)
        with pytest.raises(InvalidStatus):
            await connect(f"{url}?api_key={preview.token}&token={preview.token}")


async def test_one_previews_token_opens_no_other_preview(
    connection: dict[str, str], preview: PortInfo, app_sandbox: AsyncSandbox
) -> None:
    same_sandbox = await app_sandbox.ports.expose(APP_PORT + 1)
    async with await AsyncSandbox.create(**connection) as other:
        other_sandbox = await other.ports.expose(APP_PORT)
        for way in _ways(preview.token):
            async with httpx.AsyncClient(**way) as client:
                for elsewhere in (same_sandbox, other_sandbox):
                    assert (await client.get(elsewhere.url)).status_code == 401, (elsewhere.url, way)
        assert preview.token not in (same_sandbox.token, other_sandbox.token)
