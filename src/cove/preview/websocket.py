"""One WebSocket relayed to a sandbox's app: the handshake made with the app first (so that the client is
accepted with the subprotocol the app chose, or refused when the app refuses), then messages both ways until
either side closes, the other then closed with the same code.

The app's side is the ``websockets`` client on the connection the supervisor passed, with its bounds: a
handshake answer of at most 128 headers of 8 KiB within ``HEAD_TIMEOUT``, messages of at most ``MAX_MESSAGE``
(the same as a client's to Cove), and at most ``MAX_QUEUE`` of them read ahead of a slow client.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket

from starlette.types import Receive, Scope, Send
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException
from websockets.typing import Origin, Subprotocol

from cove.preview.http import HEAD_TIMEOUT, Headers
from cove.services.errors import BadGateway, GatewayTimeout

MAX_MESSAGE = 16 * 1024 * 1024
MAX_QUEUE = 4
# Headers the WebSocket client writes itself (the handshake and framing), or that belong to one hop only.
_OWN = {
    b"host",
    b"origin",
    b"upgrade",
    b"connection",
    b"keep-alive",
    b"te",
    b"trailer",
    b"transfer-encoding",
    b"content-length",
    b"sec-websocket-key",
    b"sec-websocket-version",
    b"sec-websocket-extensions",
    b"sec-websocket-protocol",
    b"sec-websocket-accept",
}
_HOST = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(:[0-9]{1,5})?")
# Close codes a close frame may carry (RFC 6455 7.4); others (1005, 1006, 1015: "none", "abnormal") are not sent.
_SENDABLE = {1000, 1001, 1002, 1003, *range(1007, 1015), *range(3000, 5000)}


async def handshake(connection: socket.socket, scope: Scope, target: bytes, headers: Headers) -> ClientConnection:
    """Open the WebSocket with the app, as the client asked for it (target, headers, subprotocols, origin).

    Raises ``Refused`` when the app refuses, ``BadGateway`` or ``GatewayTimeout`` when it does not speak
    WebSocket in time."""
    values = dict(headers)
    host = values.get(b"host", b"").decode("latin-1")
    origin = values.get(b"origin")
    try:
        return await connect(
            f"ws://{host if _HOST.fullmatch(host) else 'localhost'}{target.decode('latin-1')}",
            sock=connection,
            additional_headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers if k not in _OWN],
            origin=Origin(origin.decode("latin-1")) if origin else None,
            subprotocols=[Subprotocol(name) for name in scope.get("subprotocols", [])] or None,
            compression=None,
            user_agent_header=None,
            open_timeout=HEAD_TIMEOUT,
            ping_interval=None,
            max_size=MAX_MESSAGE,
            max_queue=MAX_QUEUE,
        )
    except InvalidStatus as refusal:
        raise Refused(f"the app refused the WebSocket with status {refusal.response.status_code}") from None
    except TimeoutError:
        raise GatewayTimeout(f"the app did not answer the WebSocket handshake within {HEAD_TIMEOUT:.0f} s") from None
    except (WebSocketException, OSError, EOFError, ValueError) as error:
        raise BadGateway(f"the app did not open the WebSocket: {type(error).__name__}: {error}") from None


def close_reason(text: str) -> str:
    """``text`` cut to what a close frame can carry (123 bytes of UTF-8)."""
    return text.encode()[:120].decode(errors="ignore")


class Refused(Exception):
    """The app answered the handshake with something other than 101."""


async def relay(app: ClientConnection, receive: Receive, send: Send) -> None:
    """Messages both ways between the accepted client and the app until either closes; the other is then closed
    with the same code."""
    to_app = asyncio.create_task(_client_to_app(receive, app))
    try:
        with contextlib.suppress(ConnectionClosed):
            async for message in app:
                kind = "text" if isinstance(message, str) else "bytes"
                await send({"type": "websocket.send", kind: message})
        code = app.close_code if app.close_code in _SENDABLE else 1000
        with contextlib.suppress(OSError):  # the client went first
            await send({"type": "websocket.close", "code": code, "reason": close_reason(app.close_reason or "")})
    finally:
        to_app.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await to_app
        await app.close()


async def _client_to_app(receive: Receive, app: ClientConnection) -> None:
    """The client's messages to the app; when the client goes, the app's side is closed with its code (which
    ends the app's side of ``relay`` too)."""
    while True:
        message = await receive()
        if message["type"] == "websocket.receive":
            text: str | None = message.get("text")
            with contextlib.suppress(ConnectionClosed):
                await app.send(text if text is not None else message.get("bytes") or b"")
        elif message["type"] == "websocket.disconnect":
            code = message.get("code", 1000)
            await app.close(code if code in _SENDABLE else 1000, close_reason(str(message.get("reason") or "")))
            return
