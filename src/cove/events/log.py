"""EventLog: append · read(after) · subscribe(after) — replay then live, with no gap and no duplicate.

A subscriber registers for live events *before* it reads the stored ones, and every read of the store first
waits until the batches published so far are committed; so every event is either in what the replay reads or
in the subscriber's queue (or both — duplicates are dropped by seq). The writer publishes a batch as it starts
storing it, not after: live subscribers do not wait for the commit (a thread hand-off and a transaction, on
the path of every event to every client). The journal the events come from is the durable copy: a batch whose
commit fails is ingested again from it after a restart, with the same seqs.

A subscriber that falls too far behind is not allowed to grow memory without bound: it is switched back to
reading the store from its cursor.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Any

from cove.store.events import EventStore, StoredEvent

PAGE = 5000
QUEUE_LIMIT = 10_000


@dataclass(frozen=True, slots=True)
class ScrollbackEnd:
    last_seq: int


class _Subscriber:
    __slots__ = ("ended", "lagging", "queue", "wake")

    def __init__(self) -> None:
        self.queue: list[StoredEvent] = []
        self.wake = asyncio.Event()
        self.lagging = False
        self.ended = False

    def end(self, _until: object = None) -> None:
        self.ended = True
        self.wake.set()


class EventLog:
    def __init__(self, store: EventStore) -> None:
        self._store = store
        self._subscribers: dict[str, set[_Subscriber]] = defaultdict(set)
        self._closed: set[str] = set()
        # Batches published and batches stored, per session (appends of one session come one after another).
        self._published: defaultdict[str, int] = defaultdict(int)
        self._stored: defaultdict[str, int] = defaultdict(int)
        self._storing = asyncio.Condition()

    async def append(self, session_id: str, batch: list[StoredEvent], session_values: dict[str, Any]) -> None:
        self._published[session_id] += 1
        self._publish(session_id, batch)
        try:
            await self._store.append(session_id, batch, session_values)
        finally:
            self._stored[session_id] += 1
            async with self._storing:
                self._storing.notify_all()

    async def _stored_so_far(self, session_id: str) -> None:
        """Wait until every batch published until now is committed (at most the one being stored)."""
        target = self._published[session_id]
        async with self._storing:
            await self._storing.wait_for(lambda: self._stored[session_id] >= target)

    def _publish(self, session_id: str, batch: list[StoredEvent]) -> None:
        for subscriber in self._subscribers.get(session_id, ()):
            if subscriber.lagging:
                continue
            if len(subscriber.queue) + len(batch) > QUEUE_LIMIT:
                subscriber.queue.clear()
                subscriber.lagging = True
            else:
                subscriber.queue.extend(batch)
            subscriber.wake.set()

    async def read(self, session_id: str, after: int = 0, limit: int = 1000) -> list[StoredEvent]:
        await self._stored_so_far(session_id)  # what a live subscriber was sent, a read finds
        return await self._store.read(session_id, after, limit)

    def close(self, session_id: str) -> None:
        """No more events will come for this session: live subscribers end after the last one."""
        self._closed.add(session_id)
        for subscriber in self._subscribers.get(session_id, ()):
            subscriber.wake.set()

    def reopen(self, session_id: str) -> None:
        self._closed.discard(session_id)

    async def subscribe(
        self, session_id: str, after: int = 0, *, follow: bool = True, until: asyncio.Future[Any] | None = None
    ) -> AsyncGenerator[list[StoredEvent] | ScrollbackEnd, None]:
        """Every event after ``after``, then ``ScrollbackEnd``, then (with ``follow``) live events until the
        session is closed, or until ``until`` is done. Events come in lists: pages of the replay, then live
        events as they were published together (a turn's ``result`` and ``turn_complete`` are one batch), so a
        writer sends each list at once.
        """
        subscriber = _Subscriber()
        self._subscribers[session_id].add(subscriber)
        if until is not None:
            until.add_done_callback(subscriber.end)
        cursor = after
        try:
            async for page in self._replay(session_id, cursor):
                if subscriber.ended:
                    return
                cursor = page[-1].seq
                yield page
            yield ScrollbackEnd(cursor)
            while follow and not subscriber.ended:
                if subscriber.lagging:
                    subscriber.lagging = False
                    async for page in self._replay(session_id, cursor):
                        cursor = page[-1].seq
                        yield page
                if not subscriber.queue:
                    if session_id in self._closed:
                        return
                    subscriber.wake.clear()
                    await subscriber.wake.wait()
                    continue
                queued, subscriber.queue = subscriber.queue, []
                fresh: list[StoredEvent] = []
                for event in queued:
                    if event.seq <= cursor:
                        continue
                    if event.seq > cursor + 1:  # missing from the queue: read from the store
                        if fresh:
                            yield fresh
                            fresh = []
                        async for page in self._replay(session_id, cursor, before=event.seq):
                            cursor = page[-1].seq
                            yield page
                    cursor = event.seq
                    fresh.append(event)
                if fresh:
                    yield fresh
        finally:
            if until is not None:
                until.remove_done_callback(subscriber.end)
            self._subscribers[session_id].discard(subscriber)
            if not self._subscribers[session_id]:
                del self._subscribers[session_id]

    async def _replay(self, session_id: str, after: int, before: int | None = None) -> AsyncIterator[list[StoredEvent]]:
        """The stored events after ``after`` (and before ``before``), a page at a time; no empty pages."""
        while True:
            await self._stored_so_far(session_id)
            page = await self._store.read(session_id, after, PAGE)
            last = len(page) < PAGE  # an empty page is one
            if before is not None and page and page[-1].seq >= before:
                page = [event for event in page if event.seq < before]
                last = True
            if page:
                yield page
            if last:
                return
            after = page[-1].seq
