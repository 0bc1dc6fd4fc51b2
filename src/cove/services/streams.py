"""Open streams by credential: every WebSocket and SSE stream is watched for as long as it is open, and ends
when the key or token it was opened with is revoked, or when the token expires.

A credential is checked when a stream opens; a stream can stay open for days. Each open stream holds a future
here that resolves (with the reason) the moment its credential stops being valid: the stream's own code waits
on it beside its work, so it ends within the same turn of the event loop, without polling.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator

from cove.services.principal import Principal

REVOKED = "the credential was revoked"
EXPIRED = "the token expired"


class OpenStreams:
    def __init__(self) -> None:
        self._open: dict[asyncio.Future[str], Principal] = {}

    @contextlib.contextmanager
    def watch(self, who: Principal) -> Iterator[asyncio.Future[str]]:
        """A future that resolves, with the reason, when ``who`` stops being valid; for the ``with`` block."""
        loop = asyncio.get_running_loop()
        ended: asyncio.Future[str] = loop.create_future()
        timer = None
        if who.expires_at is not None:
            timer = loop.call_later(max(0.0, who.expires_at - time.time()), _end, ended, EXPIRED)
        self._open[ended] = who
        try:
            yield ended
        finally:
            del self._open[ended]
            if timer is not None:
                timer.cancel()
            ended.cancel()

    def end(self, credential_id: str) -> int:
        """End every stream opened with ``credential_id``: as it, with a token it minted, or for its tenant.
        Returns how many were ended."""
        ended = 0
        for future, who in list(self._open.items()):
            if credential_id in (who.id, who.key_id, who.tenant_id) and not future.done():
                future.set_result(REVOKED)
                ended += 1
        return ended


def _end(future: asyncio.Future[str], reason: str) -> None:
    if not future.done():
        future.set_result(reason)
