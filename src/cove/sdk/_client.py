"""The transport every SDK object shares: HTTP through httpx, WebSockets through ``websockets``."""

from __future__ import annotations

import contextlib
import functools
import json
import ssl
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import urlencode

import httpx
from websockets.asyncio.client import ClientConnection, connect

from cove.sdk._config import resolve_key, resolve_url
from cove.sdk._errors import ConnectionLost, CoveError, error_from

DEFAULT_TIMEOUT = httpx.Timeout(30.0, read=None)


@functools.cache
def _tls() -> ssl.SSLContext:
    """One TLS context per process: loading the CA bundle costs 20-50 ms, and ``AsyncSandbox.create(url=...)``
    without a shared client makes a client per call (it used to be most of a warm-pool create)."""
    return httpx.create_ssl_context()


def unreachable(url: str, reason: object) -> ConnectionLost:
    """The error for a server that does not answer at all — usually one that is not running."""
    return ConnectionLost(
        f"cannot reach the Cove server at {url} ({reason}); start one with `cove serve`, "
        "or point COVE_URL at a running one"
    )


def _raise_for(response: httpx.Response) -> None:
    if response.is_success:
        return
    code, message = "http_error", response.text or response.reason_phrase
    try:
        body = response.json()
        code, message = body["error"]["code"], body["error"]["message"]
    except (ValueError, KeyError, TypeError):
        pass
    raise error_from(response.status_code, code, message)


def _refusal(status: int, body: bytes, exc: Exception) -> CoveError:
    """A refused WebSocket handshake as the server's own error (it answers with the same JSON as REST)."""
    try:
        error = json.loads(body)["error"]
        return error_from(status, str(error["code"]), str(error["message"]))
    except (ValueError, KeyError, TypeError):
        return error_from(status, "websocket_rejected", f"WebSocket refused: {exc}")


class AsyncClient:
    """One connection pool to one server; sandboxes created through it share it."""

    def __init__(self, url: str | None = None, api_key: str | None = None, timeout: float | None = None) -> None:
        self.url = resolve_url(url)
        self.api_key = resolve_key(self.url, api_key)
        headers = {"authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        self._http = httpx.AsyncClient(
            base_url=self.url,
            headers=headers,
            timeout=httpx.Timeout(timeout) if timeout else DEFAULT_TIMEOUT,
            verify=_tls(),
        )

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | list[tuple[str, Any]] | None = None,
        content: Any = None,
    ) -> Any:
        if self._http.is_closed:
            raise CoveError(
                f"this handle's connection to {self.url} is closed (close() was called, or its with block ended); "
                "Sandbox.connect(id) makes a new one",
                code="closed",
            )
        try:
            response = await self._http.request(method, path, json=json, params=params, content=content)
        except httpx.ConnectError as exc:
            raise unreachable(self.url, exc) from exc
        except httpx.TransportError as exc:
            raise ConnectionLost(f"the request to the Cove server at {self.url} failed: {exc}") from exc
        _raise_for(response)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    @contextlib.asynccontextmanager
    async def stream_download(
        self, path: str, params: Mapping[str, Any]
    ) -> AsyncIterator[tuple[int | None, AsyncIterator[bytes]]]:
        """The size the server announced (if it did) and the body's chunks; an error reply raises on entry,
        before a single byte is handed out."""
        try:
            async with self._http.stream("GET", path, params=params) as response:
                if not response.is_success:
                    await response.aread()
                    _raise_for(response)
                length = response.headers.get("content-length")
                yield (int(length) if length and length.isdigit() else None), response.aiter_raw()
        except httpx.ConnectError as exc:
            raise unreachable(self.url, exc) from exc
        except httpx.TransportError as exc:
            raise ConnectionLost(f"download from {self.url} broke: {exc}") from exc

    async def websocket(self, path: str, params: Mapping[str, Any] | None = None) -> ClientConnection:
        base = self.url.replace("http://", "ws://", 1).replace("https://", "wss://", 1)
        query = f"?{urlencode(params)}" if params else ""
        headers = {"authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        try:
            # No per-message deflate: the server does not compress (CPU on both ends for loopback/LAN bytes).
            return await connect(
                base + path + query, additional_headers=headers, max_size=16 * 1024 * 1024, compression=None
            )
        except OSError as exc:
            raise unreachable(self.url, exc) from exc
        except Exception as exc:
            response = getattr(exc, "response", None)
            status = getattr(response, "status_code", None)
            if status is not None:
                raise _refusal(int(status), getattr(response, "body", None) or b"", exc) from exc
            raise CoveError(f"WebSocket failed: {exc}") from exc

    async def aclose(self) -> None:
        await self._http.aclose()
