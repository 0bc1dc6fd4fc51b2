"""How large a request may be, enforced before any route sees it.

- The head (request line and headers): at most ``MAX_HEAD_BYTES`` and ``MAX_HEADERS`` lines, checked as the
  parser reads them (uvicorn's httptools protocol has no bound of its own: 5,000 headers, or megabytes of one,
  were taken whole). A longer head is answered 431 and the connection closed.
- The body: at most ``MAX_BODY_BYTES`` for every JSON route, counted as it arrives (a declared
  ``content-length`` over it is refused before reading a byte). File uploads stream to the sandbox and are
  bounded by its disk quota instead.
- Secrets in URLs (``?api_key=``, ``?token=``, which browsers use for WebSockets) never reach a log line.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

MAX_HEAD_BYTES = 64 * 1024
MAX_HEADERS = 100
MAX_BODY_BYTES = 16 * 1024 * 1024 + 64 * 1024  # the largest text field (a prompt, stdin) and its JSON around it
_UPLOAD = re.compile(r"/v1/sandboxes/[^/]+/files")
_SECRET = re.compile(r"((?:api_key|token)=)[^&\s\"']+")
_TOO_LARGE = f"request bodies are limited to {MAX_BODY_BYTES} bytes (files go through the streaming upload)"


class _HeadTooLarge(Exception):
    pass


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a bound on the request head."""

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = 0
        self._head_refused = False

    def _count(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > MAX_HEAD_BYTES or len(self.headers) >= MAX_HEADERS:
            self._head_refused = True
            raise _HeadTooLarge  # stops the parser; uvicorn then answers through send_400_response

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def send_400_response(self, msg: str) -> None:
        if not getattr(self, "_head_refused", False):
            super().send_400_response(msg)
            return
        body = json.dumps(
            {
                "error": {
                    "code": "request_header_fields_too_large",
                    "message": f"the request head is limited to {MAX_HEADERS} headers and {MAX_HEAD_BYTES} bytes",
                }
            }
        ).encode()
        head = (
            "HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
        )
        self.transport.write(head.encode() + body)
        self.transport.close()


class BodyLimit:
    """ASGI middleware: a request body over ``MAX_BODY_BYTES`` gets 413 (uploads excepted)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (scope["method"] == "PUT" and _UPLOAD.fullmatch(scope["path"])):
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and (not value.isdigit() or int(value) > MAX_BODY_BYTES):
                await _too_large(send)
                return
        received = 0

        async def bounded() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > MAX_BODY_BYTES:  # raised where the route reads its body: answered as any HTTP error
                    raise HTTPException(413, _TOO_LARGE)
            return message

        await self.app(scope, bounded, send)


async def _too_large(send: Send) -> None:
    body = json.dumps({"error": {"code": "payload_too_large", "message": _TOO_LARGE}}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class RedactSecrets(logging.Filter):
    """Blanks ``api_key=`` and ``token=`` values in log lines (uvicorn logs request paths with their query)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.args = tuple(_redact(arg) for arg in record.args) if isinstance(record.args, tuple) else record.args
        record.msg = _redact(record.msg)
        return True


def _redact(value: Any) -> Any:
    return _SECRET.sub(r"\1[redacted]", value) if isinstance(value, str) else value
