"""AuditService: the trail of every call that changed something — who (key or token), for which tenant, what,
on what, with which result, when and from where — and, for the admin, reading it back.

What is recorded is decided where calls come in (``api.audit``: every HTTP request that is not a read, and the
WebSocket commands that act); this service stores it and keeps it for ``keep_days``. A row is written beside the
answer, not before it (an exec's round-trip does not wait on a database commit), and a reading of the trail first
waits for the rows still being written: a client that got its answer finds its call in the trail.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time

from cove.services.principal import Access, Principal
from cove.store.audit import AuditQuery, AuditRecord, AuditStore

log = logging.getLogger("cove.audit")
PRUNE_INTERVAL = 3600.0
MAX_PENDING = 256  # rows being written at once; past it a call's answer waits for its own row


class AuditService:
    def __init__(self, store: AuditStore, keep_days: float) -> None:
        self._store = store
        self._pending: set[asyncio.Task[None]] = set()
        self._keep_seconds = keep_days * 86400

    async def record(
        self, who: Principal | None, action: str, target: str | None, status: int, client: str | None
    ) -> None:
        """One call: ``who`` None when it came without a valid credential. A row that cannot be written is logged
        instead: the call it records has happened, and its answer still goes out."""
        entry = AuditRecord(
            time=time.time(),
            by=who.id if who is not None else None,
            tenant_id=who.tenant_id if who is not None else None,
            action=action,
            target=target,
            status=status,
            client=client,
        )
        task = asyncio.create_task(self._write(entry))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        if len(self._pending) > MAX_PENDING:
            await task

    async def _write(self, entry: AuditRecord) -> None:
        try:
            await self._store.add(entry)
        except (OSError, sqlite3.Error) as exc:
            log.error(
                "audit trail: could not record %s on %s by %s (%s): %s",
                entry.action,
                entry.target,
                entry.by,
                entry.status,
                exc,
            )

    async def flush(self) -> None:
        """Wait until every row recorded so far is written."""
        if self._pending:
            await asyncio.gather(*self._pending)

    async def query(self, who: Principal, query: AuditQuery) -> list[AuditRecord]:
        """Newest first; only the admin reads the trail."""
        who.require(Access.ADMIN, doing="read the audit trail")
        await self.flush()
        return await self._store.query(query)

    async def run_pruner(self) -> None:
        """Drop what is older than the trail keeps, once an hour."""
        while True:
            try:
                dropped = await self._store.prune(time.time() - self._keep_seconds)
                if dropped:
                    log.info("audit trail: dropped %d entries older than the retention", dropped)
            except Exception:
                log.exception("pruning the audit trail failed")
            await asyncio.sleep(PRUNE_INTERVAL)
