"""The warm pool: sandboxes started ahead of time, so a create is a claim instead of a ~100 ms cold start.

Most of a cold start is the supervisor's Python start-up inside bwrap; none of it depends on what the user
asks for, as long as the sandbox has a network namespace of its own (``"egress"`` or ``"none"``: pooled sandboxes
have the server's default egress network where the host gives it, a pool of their own for ``"host"``). What
does depend on the request is applied when a pooled sandbox is claimed: the network's rules (or its removal),
the files a fork starts from (the storage is swapped under the idle sandbox and attached again, see
``SandboxPaths.slots``), cgroup limits (the backend's ``create`` is idempotent, and the
pooled sandbox's processes already sit in its groups), rlimits, env and cwd (through the supervisor's
``configure`` op), and the database row (labels, timeouts, spec, enforced limits).

A pooled sandbox is a real sandbox with its id, uid, directories and mounts from the moment it is spawned; its
row says ``pooled`` so that it never shows in lists, is never reaped and cannot be reached by id. A pooled
sandbox is never handed to a user by a server other than the one that started it: on shutdown the pool is
drained, and on start-up pooled sandboxes left by a server that died are killed (not re-adopted — they may come
from another version of the code, and spawning fresh ones costs a fraction of a second in the background).
Their rows stay, as ``unclaimed``, because uids are never reused.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from cove.store.sandboxes import SandboxRecord

log = logging.getLogger("cove.pool")


class WarmPool:
    """Keeps ``size`` pooled sandboxes ready; ``take`` hands one out at once and a background task refills.

    Spawning and discarding are the sandbox service's (``spawn`` returns a ready pooled record, ``discard``
    kills one and frees what it held); the pool only decides when, and never blocks a create on either.
    """

    def __init__(
        self,
        size: int,
        spawn: Callable[[], Awaitable[SandboxRecord]],
        discard: Callable[[SandboxRecord], Awaitable[None]],
    ) -> None:
        self.size = max(0, size)
        self._spawn = spawn
        self._discard = discard
        self._ready: collections.deque[SandboxRecord] = collections.deque()
        self._filler: asyncio.Task[None] | None = None
        self._changed = asyncio.Condition()
        self._closed = False
        self.failures = 0

    @property
    def ready(self) -> list[str]:
        return [record.id for record in self._ready]

    @property
    def filling(self) -> bool:
        return self._filler is not None and not self._filler.done()

    def take(self) -> SandboxRecord | None:
        """A ready pooled sandbox, or None when the pool is empty (the caller starts one cold)."""
        if not self._ready:
            return None
        return self._ready.popleft()

    def refill(self, delay: float = 0.0) -> None:
        """Start topping the pool up in the background (after ``delay`` seconds), unless that is already
        happening."""
        if self._closed or self.size == 0 or self.filling or len(self._ready) >= self.size:
            return
        self._filler = asyncio.create_task(self._fill(delay), name="cove-pool-fill")

    async def _fill(self, delay: float = 0.0) -> None:
        if delay:
            await asyncio.sleep(delay)
        # One spawn at a time: each costs a CPU core for ~100 ms, and the claims it replaces must not queue
        # behind a burst of them on a small machine.
        while not self._closed and len(self._ready) < self.size:
            try:
                record = await self._spawn()
            except Exception:
                # Tried again on the next claim (or restart), not in a loop that would spin on a broken host.
                self.failures += 1
                log.exception("could not start a sandbox for the warm pool")
                break
            if self._closed:
                await self._discard(record)
                break
            self._ready.append(record)
            await self._notify()
        await self._notify()

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_full(self, timeout: float) -> bool:
        """Wait (at most ``timeout`` s) until the pool holds ``size`` ready sandboxes or stops filling."""
        deadline = time.monotonic() + timeout
        async with self._changed:
            while len(self._ready) < self.size and self.filling:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), remaining)
        return len(self._ready) >= self.size

    async def drain(self) -> None:
        """Stop refilling and discard every pooled sandbox (server shutdown, or an operator's request)."""
        self._closed = True
        self.size = 0
        if self._filler is not None:
            # Let a spawn in flight finish rather than cancel it half-way: it discards its own sandbox.
            with contextlib.suppress(Exception):
                await self._filler
        while self._ready:
            await self._discard(self._ready.popleft())
        await self._notify()
