"""The model proxy: the only road from a sandbox to a model provider.

A runner presents its per-session token where the CLI puts an API key; the proxy checks it, swaps in the real
credentials (which never enter a sandbox), forwards to the upstream and meters the tokens each session used by
reading the ``usage`` the Messages API reports, streaming or not.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

TokenResolver = Callable[[str], Awaitable[str | None]]
UsageSink = Callable[[str, dict[str, int]], Coroutine[Any, Any, None]]
ANTHROPIC_URL = "https://api.anthropic.com"
_HOP_HEADERS = {"host", "content-length", "x-api-key", "authorization", "connection", "accept-encoding"}
_METERED = ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")


@dataclass(frozen=True)
class Upstream:
    """Where model requests go and with which credentials, as Anthropic-compatible gateways expect them."""

    base_url: str
    api_key: str | None = None
    auth_token: str | None = None

    @classmethod
    def from_env(cls, simulator_url: str | None = None) -> Upstream | None:
        """``ANTHROPIC_API_KEY``/``ANTHROPIC_AUTH_TOKEN`` and ``ANTHROPIC_BASE_URL``; None without a key."""
        key = os.environ.get("ANTHROPIC_API_KEY") or None
        token = os.environ.get("ANTHROPIC_AUTH_TOKEN") or None
        if not key and not token:
            return cls(simulator_url) if simulator_url else None
        return cls(os.environ.get("ANTHROPIC_BASE_URL") or ANTHROPIC_URL, key, token)

    def headers(self) -> dict[str, str]:
        if self.api_key:
            return {"x-api-key": self.api_key}
        if self.auth_token:
            return {"authorization": f"Bearer {self.auth_token}"}
        return {"x-api-key": "cove-simulator"}


def _error(status: int, kind: str, message: str) -> JSONResponse:
    return JSONResponse({"type": "error", "error": {"type": kind, "message": message}}, status_code=status)


def _presented_token(request: Request) -> str | None:
    key = request.headers.get("x-api-key")
    if key:
        return key
    auth = request.headers.get("authorization", "")
    return auth[7:].strip() if auth.lower().startswith("bearer ") else None


class _Meter:
    """Adds up the usage fields seen in a response, whether one JSON body or a stream of SSE events."""

    def __init__(self) -> None:
        self.usage = dict.fromkeys(_METERED, 0)
        self._pending = b""

    def _take(self, usage: object) -> None:
        if isinstance(usage, dict):
            for key in _METERED:
                value = usage.get(key)
                if isinstance(value, int):
                    # message_delta repeats cumulative output_tokens: keep the largest, not the sum.
                    self.usage[key] = max(self.usage[key], value) if key == "output_tokens" else self.usage[key] + value

    def feed_sse(self, chunk: bytes) -> None:
        self._pending += chunk
        *lines, self._pending = self._pending.split(b"\n")
        for line in lines:
            if not line.startswith(b"data:"):
                continue
            try:
                event = json.loads(line[5:])
            except ValueError:
                continue
            if not isinstance(event, dict):
                continue
            message = event.get("message")
            if isinstance(message, dict):
                self._take(message.get("usage"))
            self._take(event.get("usage"))

    def feed_json(self, body: bytes) -> None:
        try:
            document = json.loads(body)
        except ValueError:
            return
        if isinstance(document, dict):
            self._take(document.get("usage"))


def create_proxy_app(
    resolve: TokenResolver, upstream: Upstream, record_usage: UsageSink, client: httpx.AsyncClient
) -> FastAPI:
    """The proxy as an ASGI app; ``client`` (owned by the caller) carries requests to the upstream."""
    app = FastAPI(title="Cove model proxy", openapi_url=None, docs_url=None, redoc_url=None)
    pending: set[asyncio.Task[None]] = set()

    @app.api_route("/{path:path}", methods=["GET", "POST", "HEAD"])
    async def forward(path: str, request: Request) -> Response:
        token = _presented_token(request)
        session_id = await resolve(token) if token else None
        if session_id is None:
            return _error(401, "authentication_error", "invalid or missing Cove session token")
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_HEADERS}
        headers.update(upstream.headers())
        headers["accept-encoding"] = "identity"  # metering reads the bytes as they pass
        outgoing = client.build_request(
            request.method,
            upstream.base_url.rstrip("/") + "/" + path,
            params=request.query_params,
            headers=headers,
            content=await request.body(),
        )
        try:
            response = await client.send(outgoing, stream=True)
        except httpx.TransportError as exc:
            return _error(502, "api_error", f"model upstream unreachable: {exc}")
        streaming = response.headers.get("content-type", "").startswith("text/event-stream")
        meter = _Meter()

        async def relay() -> AsyncIterator[bytes]:
            body = bytearray()
            try:
                async for chunk in response.aiter_raw():
                    if streaming:
                        meter.feed_sse(chunk)
                    else:
                        body += chunk
                    yield chunk
            finally:
                await response.aclose()
                if not streaming:
                    meter.feed_json(bytes(body))
                if any(meter.usage.values()):
                    # Off the response path: the client has its answer; metering must not make it wait.
                    task = asyncio.create_task(record_usage(session_id, meter.usage))
                    pending.add(task)
                    task.add_done_callback(pending.discard)

        passthrough = {
            k: v for k, v in response.headers.items() if k.lower() not in ("content-length", "transfer-encoding")
        }
        return StreamingResponse(relay(), status_code=response.status_code, headers=passthrough)

    return app
