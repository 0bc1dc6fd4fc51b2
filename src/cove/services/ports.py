"""PortService: a sandbox's published ports (preview URLs) — expose, list, close — and the connections preview
requests make to them.

Every preview request asks who may open a port and for a connection to it, so the exposed ports live in memory
(loaded at start-up, kept in step with the store): a request costs no database read. A port is dropped when it is
closed or its sandbox stops, and so are the connections of requests still running on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
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
    TokenNotFound,
    Unauthorized,
    Unavailable,
)
from cove.services.principal import SYSTEM, Access, Principal
from cove.services.sandboxes import RUNNING, SandboxService
from cove.services.streams import OpenStreams
from cove.services.tokens import TokenService
from cove.store.ports import PortRecord, PortStore

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
    """An exposed port as the service holds it: its row, the token its expose gives (a scoped token with the
    ``preview`` scope for its sandbox), its sandbox's supervisor, the connections kept alive for its next
    requests, and the deadlines of the requests running on it (moved to now when the port is closed, which ends
    them)."""

    record: PortRecord
    token: str
    expires_at: float  # the token's
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

    def end(self, deadline: asyncio.Timeout) -> None:
        """End the request running under ``deadline`` now, unless it is ending already (its port was closed and
        its token revoked one after the other): a deadline is set once."""
        if deadline in self.connections and deadline.when() is None:
            deadline.reschedule(asyncio.get_running_loop().time())

    def close(self) -> None:
        self.closed = True
        for connection in self.idle:
            connection.close()
        self.idle.clear()
        for deadline in list(self.connections):
            self.end(deadline)


class PortService:
    def __init__(
        self,
        store: PortStore,
        sandboxes: SandboxService,
        tokens: TokenService,
        streams: OpenStreams,
        *,
        base_url: str | None = None,
        domain: str | None = None,
    ) -> None:
        self._store = store
        self._sandboxes = sandboxes
        self._tokens = tokens
        self._streams = streams
        self._base_url = base_url
        self._domain = domain
        self._exposed: dict[tuple[str, int], Exposure] = {}
        self._connections: Counter[str] = Counter()  # open connections per sandbox
        self._lock = asyncio.Lock()  # one change of the exposed ports at a time: the store and the map agree

    async def recover(self) -> None:
        """After a (re)start: keep the ports of sandboxes still running, forget those of the rest (stopped while
        no server watched them) and revoke their tokens."""
        for record in await self._store.all():
            try:
                sandbox = await self._sandboxes.get(record.sandbox_id)
            except SandboxNotFound:
                sandbox = None
            token = await self._tokens.reissue(record.token_id)
            if sandbox is None or sandbox.state != RUNNING or token is None:
                await self._store.delete(record.sandbox_id, record.port)
                await self._revoke(record.token_id)
                continue
            minted, secret = token
            exposure = Exposure(record, secret, minted.expires_at, self._sandboxes.guest_of(sandbox))
            self._exposed[record.sandbox_id, record.port] = exposure

    async def expose(self, who: Principal, sandbox_id: str, port: int, public: bool, ttl_s: int) -> Exposure:
        """Publish ``port``, with a new token for its previews (``ttl_s`` seconds). Exposing it again changes
        whether it is public, and gives the same token while that still opens it (a new one once it does not)."""
        sandbox = await self._sandboxes.authorize(who, sandbox_id, Access.OWN, doing="expose ports")
        if sandbox.state != RUNNING:
            raise SandboxNotRunning(f"sandbox {sandbox_id} is {sandbox.state}; its ports cannot be exposed")
        async with self._lock:
            exposure = self._exposed.get((sandbox_id, port))
            if exposure is None and len(self._ports_of(sandbox_id)) >= MAX_PORTS_PER_SANDBOX:
                raise QuotaExceeded(f"a sandbox may expose at most {MAX_PORTS_PER_SANDBOX} ports")
            if exposure is not None and await self._tokens.principal(exposure.token) is not None:
                token_id, secret, expires_at = exposure.record.token_id, exposure.token, exposure.expires_at
            else:
                minted, secret = await self._tokens.mint(who, sandbox_id, None, ["preview"], ttl_s)
                token_id, expires_at = minted.id, minted.expires_at
            if exposure is None:
                record = PortRecord(sandbox_id, port, public, token_id, time.time(), sandbox.tenant_id)
                await self._store.insert(record)
                exposure = Exposure(record, secret, expires_at, self._sandboxes.guest_of(sandbox))
                self._exposed[sandbox_id, port] = exposure
            elif (public, token_id) != (exposure.public, exposure.record.token_id):
                exposure.record = replace(exposure.record, public=public, token_id=token_id)
                await self._store.update(exposure.record)
                exposure.token, exposure.expires_at = secret, expires_at
            return exposure

    def url(self, exposure: Exposure, default_base: str) -> str:
        """The exposed port's preview URL, on the server's configured address, else on ``default_base`` (where
        the asking client reached the server)."""
        return preview_url(exposure.sandbox_id, exposure.port, self._base_url or default_base, self._domain)

    def _ports_of(self, sandbox_id: str) -> list[Exposure]:
        return sorted((e for e in self._exposed.values() if e.sandbox_id == sandbox_id), key=lambda e: e.port)

    async def list(self, who: Principal, sandbox_id: str) -> list[Exposure]:
        """The sandbox's exposed ports, with their tokens: an owner's to see, as minting them is."""
        await self._sandboxes.authorize(who, sandbox_id, Access.OWN, doing="list published ports")
        return self._ports_of(sandbox_id)

    async def close(self, who: Principal, sandbox_id: str, port: int) -> Exposure:
        """Unpublish ``port``: its preview answers 404 from now on, requests still running on it end, and the
        token its expose gave is revoked."""
        await self._sandboxes.authorize(who, sandbox_id, Access.OWN, doing="close ports")
        async with self._lock:
            exposure = self._exposed.pop((sandbox_id, port), None)
            if exposure is None:
                raise PortNotFound(f"port {port} of sandbox {sandbox_id} is not exposed")
            await self._store.delete(sandbox_id, port)
        exposure.close()
        await self._revoke(exposure.record.token_id)
        return exposure

    async def sandbox_stopped(self, sandbox_id: str) -> None:
        """A sandbox stopped: its ports go with it, and their tokens are revoked."""
        async with self._lock:
            gone = self._ports_of(sandbox_id)
            for exposure in gone:
                del self._exposed[sandbox_id, exposure.port]
                exposure.close()
            await self._store.delete(sandbox_id)
        for exposure in gone:
            await self._revoke(exposure.record.token_id)

    async def _revoke(self, token_id: str) -> None:
        with contextlib.suppress(TokenNotFound):
            await self._tokens.revoke(SYSTEM, token_id)

    def find(self, sandbox_id: str, port: int) -> Exposure:
        """The exposed port a preview request is for. An unknown sandbox and an unexposed port are the same 404:
        a preview URL says nothing of what else exists."""
        exposure = self._exposed.get((sandbox_id, port))
        if exposure is None:
            raise PortNotFound(f"port {port} of sandbox {sandbox_id} is not exposed")
        return exposure

    def admit(self, who: Principal | None, exposure: Exposure) -> None:
        """Let ``who`` open a preview: anyone a public one; a private one, a token with the ``preview`` scope for
        its sandbox. Another tenant's token, or one for another sandbox, finds nothing there (404)."""
        if exposure.public:
            return
        sandbox_id, port = exposure.sandbox_id, exposure.port
        if who is None:
            raise Unauthorized(
                f"port {port} of sandbox {sandbox_id} is private: send a token with the 'preview' scope for its "
                "sandbox (header X-Cove-Preview-Token, or ?token= once, which sets a cookie)"
            )
        if not who.sees(exposure.record.tenant_id, sandbox_id):
            raise PortNotFound(f"port {port} of sandbox {sandbox_id} is not exposed")
        who.require(Access.PREVIEW, f"of sandbox {sandbox_id}")

    @contextlib.asynccontextmanager
    async def connect(
        self, exposure: Exposure, who: Principal | None, *, reuse: bool = False
    ) -> AsyncIterator[PortConnection]:
        """A connection to the exposed port for one request (``who``: the token that opened it, if one did): one
        kept alive from an earlier request if ``reuse`` and there is one, else a new one. Afterwards it is kept
        for the next request if it was left ``reusable``, else closed. The block is ended early, with
        ``PortNotFound``, if the port is closed or its sandbox stops meanwhile, and with ``Unauthorized`` if the
        token is revoked or expires (a preview's WebSocket or event stream may stay open for days)."""
        sandbox_id = exposure.sandbox_id
        if self._connections[sandbox_id] >= MAX_CONNECTIONS_PER_SANDBOX:
            raise RateLimited(
                f"sandbox {sandbox_id} has {MAX_CONNECTIONS_PER_SANDBOX} preview connections open; try again later",
                retry_after=1,  # a request's connection is soon given back
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
                        with self._ended_with(who, exposure, deadline):
                            yield connection
                    finally:
                        if not exposure.keep(connection):
                            connection.close()
                finally:
                    exposure.connections.discard(deadline)
        except TimeoutError:
            if not deadline.expired():
                raise
            if exposure.closed:
                raise PortNotFound(f"port {exposure.port} of sandbox {sandbox_id} was closed") from None
            raise Unauthorized(
                f"the token that opened port {exposure.port} of {sandbox_id} stopped being valid"
            ) from None
        finally:
            self._connections[sandbox_id] -= 1
            if not self._connections[sandbox_id]:
                del self._connections[sandbox_id]

    @contextlib.contextmanager
    def _ended_with(self, who: Principal | None, exposure: Exposure, deadline: asyncio.Timeout) -> Iterator[None]:
        """For the block: the request under ``deadline`` ends when ``who`` stops being valid."""
        if who is None:
            yield
            return
        with self._streams.watch(who) as ended:
            ended.add_done_callback(lambda done: None if done.cancelled() else exposure.end(deadline))
            yield

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
