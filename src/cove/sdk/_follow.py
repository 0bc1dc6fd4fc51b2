"""Following a stream over a WebSocket that the server lets a client resume (a process's output, a terminal's):
what the SDK's handles share."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from cove.sdk._errors import ConnectionLost, CoveError

RECONNECT_ATTEMPTS = 5


async def follow(
    socket: ClientConnection,
    take: Callable[[str | bytes], bool],
    reopen: Callable[[], Awaitable[ClientConnection]],
    lost: str,
) -> CoveError | None:
    """Hand every frame to ``take`` until it says the stream is over (then None), or until an error ends it (that
    error). A socket that drops is replaced by ``reopen()`` (which resumes where the stream got to), at most
    ``RECONNECT_ATTEMPTS`` times in a row; ``lost`` says what could not be resumed."""
    attempts = 0
    while True:
        try:
            async for frame in socket:
                attempts = 0
                if take(frame):
                    return None
        except ConnectionClosed:
            pass
        except CoveError as exc:
            return exc
        attempts += 1
        if attempts > RECONNECT_ATTEMPTS:
            return ConnectionLost(lost)
        await asyncio.sleep(0.05 * attempts)
        with contextlib.suppress(CoveError, OSError, ConnectionClosed):
            socket = await reopen()
