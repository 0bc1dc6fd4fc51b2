"""The app the preview tests publish, run inside a sandbox by uvicorn from Cove's venv (bound at /opt/cove/venv,
without lifespan): it echoes what reached it, streams bodies both ways without holding them, and echoes WebSocket
messages.

- ``GET /bytes/{n}``: n bytes of ``PATTERN`` repeated, with a content-length (``?chunked=1``: without one, so
  uvicorn sends them chunked);
- ``POST /sha256``: the request body's size and SHA-256, read as it streams;
- ``GET /redirect``: a 302 to ``/echo``;
- any other request: its method, path, query and headers as JSON;
- WebSocket: each message back as it came (``"close"`` closes with code 4001), on the first subprotocol asked.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

PATTERN = bytes(range(256)) * 256  # 64 KiB


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "websocket":
        await echo_websocket(scope, receive, send)
    else:
        await answer(scope, receive, send)


async def echo_websocket(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await receive()
    subprotocols = scope.get("subprotocols") or [None]
    await send({"type": "websocket.accept", "subprotocol": subprotocols[0]})
    while (message := await receive())["type"] == "websocket.receive":
        if message.get("text") == "close":
            await send({"type": "websocket.close", "code": 4001})
            return
        kind = "text" if message.get("text") is not None else "bytes"
        await send({"type": "websocket.send", kind: message[kind]})


async def answer(scope: dict[str, Any], receive: Any, send: Any) -> None:
    path, query = scope["path"], scope["query_string"].decode()
    if path.startswith("/bytes/"):
        size = int(path.split("/")[2])
        headers = [] if "chunked=1" in query else [(b"content-length", str(size).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        while size:
            piece = PATTERN[: min(size, len(PATTERN))]
            size -= len(piece)
            await send({"type": "http.response.body", "body": piece, "more_body": size > 0})
        return
    if path == "/sha256":
        digest, size = hashlib.sha256(), 0
        more = True
        while more:
            message = await receive()
            digest.update(message.get("body", b""))
            size += len(message.get("body", b""))
            more = message.get("more_body", False)
        await reply(send, 200, {"bytes": size, "sha256": digest.hexdigest()})
        return
    if path == "/redirect":
        await send({"type": "http.response.start", "status": 302, "headers": [(b"location", b"/echo")]})
        await send({"type": "http.response.body", "body": b""})
        return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    headers = {name.decode(): value.decode() for name, value in scope["headers"]}
    echoed = {"method": scope["method"], "path": path, "query": query, "headers": headers, "body": body.decode()}
    await reply(send, 200, echoed)


async def reply(send: Any, status: int, document: dict[str, Any]) -> None:
    body = json.dumps(document).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
