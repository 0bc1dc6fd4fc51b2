"""PortService: a sandbox's published ports (preview URLs) — expose, list, close — and the connections preview
requests make to them.

Every preview request asks who may open a port and for a connection to it, so the exposed ports live in memory
(loaded at start-up, kept in step with the store): a request costs no database read. A port is dropped when it is
closed or its sandbox stops, and so are the connections of requests still running on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import socket
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field, replace

from cove.preview.urls import preview_url
from cove.runtime.guest_client import GuestClient, GuestError, GuestUnavailable
from cove.services.errors import (
    BadGateway,
    PortNotFound,
    PortNotListening,
    QuotaExceeded,
    RateLimited,
    SandboxNotFound,
    SandboxNotRunning,
    Unauthorized,
    Unavailable,
)
from cove.services.sandboxes import RUNNING, SandboxService
from cove.store.ports import PortRecord, PortStore, derive_token, new_nonce

MAX_PORTS_PER_SANDBOX = 64
# Preview connections open at once to one sandbox (requests in flight and WebSockets): a browser opens six per
# host, a dev server's page a few dozen; a flood of requests to a public preview gets 429 past this.
MAX_CONNECTIONS_PER_SANDBOX = 256
# Connections kept alive per port between requests (each saves the next request the supervisor's round trip and
# the app a new connection), and for how long.
MAX_IDLE_PER_PORT = 8
MAX_IDLE_SECONDS = 2.0


class PortConnection:
    """A connection to an exposed port for one request: new from the sandbox, or kept alive after an earlier
    request (``reused``). Whoever uses it sets ``reusable`` once an exchange on it ended cleanly enough for the
    next request to follow on it."""

    def __init__(self, sock: socket.socket) -> None:
        self.socket = sock
        self.reused = False
        self.reusable = False
        self.idle_since = 0.0
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def streams(self, limit: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """The connection as asyncio streams (``limit``: the reader's bound on a line or head)."""
        if self._streams is None:
            self._streams = await asyncio.open_connection(sock=self.socket, limit=limit)
        return self._streams

    def stale(self, now: float) -> bool:
        """Whether a kept connection is no use any more: closed by the app, or idle for too long (apps close
        idle connections after a few seconds, and one closed just as a request is sent fails that request)."""
        if self._streams is None:
            return True
        reader, writer = self._streams
        return reader.at_eof() or writer.is_closing() or now - self.idle_since > MAX_IDLE_SECONDS

    def close(self) -> None:
        if self._streams is not None:
            self._streams[1].close()
        else:
            self.socket.close()


@dataclass
class Exposure:
    """An exposed port as the service holds it: its row, its token, its sandbox's supervisor, the connections
    kept alive for its next requests, and the deadlines of the requests running on it (moved to now when the
    port is closed, which ends them)."""

    record: PortRecord
    token: str
    guest: GuestClient
    connections: set[asyncio.Timeout] = field(default_factory=set)
    idle: list[PortConnection] = field(default_factory=list)
    closed: bool = False

    @property
    def sandbox_id(self) -> str:
        return self.record.sandbox_id

    @property
    def port(self) -> int:
        return self.record.port

    @property
    def public(self) -> bool:
        return self.record.public

    def opens(self, token: str | None) -> bool:
        """Whether ``token`` is this preview's (compared in constant time)."""
        return token is not None and hmac.compare_digest(token.encode(), self.token.encode())

    def take_idle(self) -> PortConnection | None:
        """The most recently kept connection that is still of use (the others are closed)."""
        now = time.monotonic()
        while self.idle:
            connection = self.idle.pop()
            if not connection.stale(now):
                connection.reused = True
                return connection
            connection.close()
        return None

    def keep(self, connection: PortConnection) -> bool:
        if self.closed or not connection.reusable or len(self.idle) >= MAX_IDLE_PER_PORT:
            return False
        connection.reusable = False
        connection.idle_since = time.monotonic()
        self.idle.append(connection)
        return True

    def close(self) -> None:
        self.closed = True
        for connection in self.idle:
            connection.close()
        self.idle.clear()
        now = asyncio.get_running_loop().time()
        for deadline in self.connections:
            deadline.reschedule(now)


class PortService:
    def __init__(
        self,
        store: PortStore,
        sandboxes: SandboxService,
        secret: bytes,
        *,
        base_url: str | None = None,
        domain: str | None = None,
    ) -> None:
        self._store = store
        self._sandboxes = sandboxes
        self._secret = secret
        self._base_url = base_url
        self._domain = domain
        self._exposed: dict[tuple[str, int], Exposure] = {}
        self._connections: Counter[str] = Counter()  # open connections per sandbox
        self._lock = asyncio.Lock()  # one change of the exposed ports at a time: the store and the map agree

    def _exposure(self, record: PortRecord, guest: GuestClient) -> Exposure:
        return Exposure(record, derive_token(self._secret, record), guest)

    async def recover(self) -> None:
        """After a (re)start: keep the ports of sandboxes still running, forget those of the rest (stopped while
        no server watched them)."""
        for record in await self._store.all():
            try:
                sandbox = await self._sandboxes.get(record.sandbox_id)
            except SandboxNotFound:
                sandbox = None
            if sandbox is None or sandbox.state != RUNNING:
                await self._store.delete(record.sandbox_id)
                continue
            self._exposed[record.sandbox_id, record.port] = self._exposure(record, self._sandboxes.guest_of(sandbox))

    async def expose(self, sandbox_id: str, port: int, public: bool) -> Exposure:
        """Publish ``port``; exposing it again changes only whether it is public (its token stays)."""
        sandbox = await self._sandboxes.get(sandbox_id)
        if sandbox.state != RUNNING:
            raise SandboxNotRunning(f"sandbox {sandbox_id} is {sandbox.state}; its ports cannot be exposed")
        async with self._lock:
            exposure = self._exposed.get((sandbox_id, port))
            if exposure is not None:
                if exposure.public != public:
                    await self._store.set_public(sandbox_id, port, public)
                    exposure.record = replace(exposure.record, public=public)
                return exposure
            if len(self._ports_of(sandbox_id)) >= MAX_PORTS_PER_SANDBOX:
                raise QuotaExceeded(f"a sandbox may expose at most {MAX_PORTS_PER_SANDBOX} ports")
            record = PortRecord(sandbox_id, port, public, new_nonce(), time.time())
            await self._store.insert(record)
            exposure = self._exposure(record, self._sandboxes.guest_of(sandbox))
            self._exposed[sandbox_id, port] = exposure
            return exposure

    def url(self, exposure: Exposure, default_base: str) -> str:
        """The exposed port's preview URL, on the server's configured address, else on ``default_base`` (where
        the asking client reached the server)."""
        return preview_url(exposure.sandbox_id, exposure.port, self._base_url or default_base, self._domain)

    def _ports_of(self, sandbox_id: str) -> list[Exposure]:
        return sorted((e for e in self._exposed.values() if e.sandbox_id == sandbox_id), key=lambda e: e.port)

    async def list(self, sandbox_id: str) -> list[Exposure]:
        await self._sandboxes.get(sandbox_id)
        return self._ports_of(sandbox_id)

    async def close(self, sandbox_id: str, port: int) -> Exposure:
        """Unpublish ``port``: its preview answers 404 from now on, and requests still running on it end."""
        await self._sandboxes.get(sandbox_id)
        async with self._lock:
            exposure = self._exposed.pop((sandbox_id, port), None)
            if exposure is None:
                raise PortNotFound(f"port {port} of sandbox {sandbox_id} is not exposed")
            await self._store.delete(sandbox_id, port)
        exposure.close()
        return exposure

    async def sandbox_stopped(self, sandbox_id: str) -> None:
        """A sandbox stopped: its ports go with it."""
        async with self._lock:
            for exposure in self._ports_of(sandbox_id):
                del self._exposed[sandbox_id, exposure.port]
                exposure.close()
            await self._store.delete(sandbox_id)

    def authorize(self, sandbox_id: str, port: int, tokens: Iterable[str | None]) -> Exposure:
        """The exposed port a preview request is for, if one of the ``tokens`` it carries opens it (a public one
        needs none). An unknown sandbox and an unexposed port are the same 404: a preview URL says nothing of
        what else exists."""
        exposure = self._exposed.get((sandbox_id, port))
        if exposure is None:
            raise PortNotFound(f"port {port} of sandbox {sandbox_id} is not exposed")
        if not exposure.public and not any(exposure.opens(token) for token in tokens):
            raise Unauthorized(
                f"port {port} of sandbox {sandbox_id} is private: send its token (header X-Cove-Preview-Token, "
                "or ?token= once, which sets a cookie)"
            )
        return exposure

    @contextlib.asynccontextmanager
    async def connect(self, exposure: Exposure, *, reuse: bool = False) -> AsyncIterator[PortConnection]:
        """A connection to the exposed port for one request: one kept alive from an earlier request if ``reuse``
        and there is one, else a new one. Afterwards it is kept for the next request if it was left
        ``reusable``, else closed. The block is ended early, with ``PortNotFound``, if the port is closed or
        its sandbox stops meanwhile."""
        sandbox_id = exposure.sandbox_id
        if self._connections[sandbox_id] >= MAX_CONNECTIONS_PER_SANDBOX:
            raise RateLimited(
                f"sandbox {sandbox_id} has {MAX_CONNECTIONS_PER_SANDBOX} preview connections open; try again later"
            )
        self._connections[sandbox_id] += 1
        deadline = asyncio.timeout(None)
        try:
            async with deadline:
                if exposure.closed:
                    raise PortNotFound(f"port {exposure.port} of sandbox {sandbox_id} is not exposed")
                exposure.connections.add(deadline)
                try:
                    self._sandboxes.touch(sandbox_id)
                    connection = (exposure.take_idle() if reuse else None) or PortConnection(await self._open(exposure))
                    try:
                        yield connection
                    finally:
                        if not exposure.keep(connection):
                            connection.close()
                finally:
                    exposure.connections.discard(deadline)
        except TimeoutError:
            if not deadline.expired():
                raise
            raise PortNotFound(f"port {exposure.port} of sandbox {sandbox_id} was closed") from None
        finally:
            self._connections[sandbox_id] -= 1
            if not self._connections[sandbox_id]:
                del self._connections[sandbox_id]

    @staticmethod
    async def _open(exposure: Exposure) -> socket.socket:
        try:
            return await exposure.guest.open_port(exposure.port)
        except GuestError as exc:
            if exc.code == "port_not_listening":
                raise PortNotListening(f"sandbox {exposure.sandbox_id}: {exc.message}") from None
            raise BadGateway(f"sandbox {exposure.sandbox_id} refused the connection: {exc.message}") from None
        except GuestUnavailable as exc:
            raise Unavailable(f"sandbox {exposure.sandbox_id} does not answer: {exc}") from None
