"""Cove's WebSockets: authenticated before they are accepted, and closed when their credential stops being valid.

A refused handshake gets a real HTTP answer (401, 429 with ``Retry-After``), with Cove's JSON error body, rather
than an accept-then-close; once open, a socket lives only as long as the key or token it was opened with: the
moment that is revoked (or a token expires) the socket is closed with code 4401 and the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any

from fastapi import WebSocket, WebSocketDisconnect

from cove.api.auth import SUBPROTOCOL, authenticate
from cove.api.deps import services_of
from cove.api.errors import service_error_response
from cove.services.errors import CoveServiceError
from cove.services.principal import Principal

CLOSED_CREDENTIAL = 4401
# What a WebSocket's pumps raise once its client has gone: WebSocketDisconnect from a receive that sees the close,
# and a RuntimeError (starlette's WebSocketDisconnected among them) from a receive or send after it.
CLIENT_GONE = (WebSocketDisconnect, RuntimeError)


async def accept(websocket: WebSocket) -> Principal | None:
    """The socket's principal, the socket accepted (with the ``cove`` subprotocol when the client offers it);
    or None, the handshake refused with the HTTP error."""
    try:
        who = await authenticate(websocket)
    except CoveServiceError as exc:
        await websocket.send_denial_response(service_error_response(exc))
        return None
    offered = websocket.scope.get("subprotocols", [])
    await websocket.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in offered else None)
    return who


async def race(*work: Coroutine[Any, Any, None]) -> set[asyncio.Task[None]]:
    """Run ``work`` side by side until one piece ends; the others are cancelled, and every piece is waited for —
    also when the caller itself is cancelled (its credential revoked), so that none runs on unowned and none's
    error goes unretrieved. Returns the pieces that ended by themselves."""
    tasks = [asyncio.ensure_future(piece) for piece in work]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return done


async def while_valid(websocket: WebSocket, who: Principal, traffic: Coroutine[Any, Any, None]) -> None:
    """Run the socket's ``traffic`` until it ends, or until ``who``'s credential stops being valid: then the
    traffic is cancelled and the socket closed with 4401."""
    with services_of(websocket.app).streams.watch(who) as ended:
        task = asyncio.ensure_future(traffic)
        either: list[asyncio.Future[Any]] = [task, ended]
        await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            task.result()
            return
        # Closed first, with the reason: the traffic's own clean-up would close it as a normal end.
        with contextlib.suppress(Exception):
            await websocket.close(code=CLOSED_CREDENTIAL, reason=ended.result())
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
