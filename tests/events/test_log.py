"""The event log over real SQLite: replay after a cursor, then live, with no gap and no duplicate —
also while events keep arriving during a 100,000-event replay, and for a subscriber that falls behind."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cove.events.log import QUEUE_LIMIT, EventLog, ScrollbackEnd
from cove.store.db import open_engine
from cove.store.events import EventStore, StoredEvent
from cove.store.writer import SqliteWriter

SESSION = "ses_test"


def batch(start: int, count: int) -> list[StoredEvent]:
    return [
        StoredEvent(seq, "assistant", json.dumps({"seq": seq, "type": "assistant", "session_id": SESSION}))
        for seq in range(start, start + count)
    ]


@pytest.fixture
async def log(tmp_path: Path) -> AsyncIterator[EventLog]:
    engine = await open_engine(tmp_path / "events.db")
    writer = SqliteWriter(engine)
    yield EventLog(EventStore(engine, writer))
    writer.close()
    await engine.dispose()


async def flat(
    subscription: AsyncIterator[list[StoredEvent] | ScrollbackEnd],
) -> AsyncIterator[StoredEvent | ScrollbackEnd]:
    """A subscription one event at a time."""
    async for item in subscription:
        if isinstance(item, ScrollbackEnd):
            yield item
        else:
            for event in item:
                yield event


async def append(log: EventLog, start: int, count: int, size: int = 5000) -> None:
    for offset in range(0, count, size):
        await log.append(SESSION, batch(start + offset, min(size, count - offset)), {})


async def test_replay_of_100000_events_then_live_without_gap_or_duplicate(log: EventLog) -> None:
    await append(log, 1, 100_000)
    seqs: list[int] = []
    marker: ScrollbackEnd | None = None
    subscription = flat(log.subscribe(SESSION, after=250))
    # Live events arrive while the replay is still being read.
    writer = asyncio.create_task(append(log, 100_001, 3000, size=7))
    async for item in subscription:
        if isinstance(item, ScrollbackEnd):
            marker = item
        else:
            seqs.append(item.seq)
        # The replay may itself read some of the live events (it reads until the store has no more), so the
        # marker can come before or after the last one.
        if marker is not None and seqs[-1] == 103_000:
            break
    await writer
    assert marker is not None and marker.last_seq >= 100_000
    assert seqs == list(range(251, 103_001))


async def test_a_subscriber_that_falls_behind_catches_up_from_the_store(log: EventLog) -> None:
    await append(log, 1, 10)
    subscription = flat(log.subscribe(SESSION, after=0))
    seqs = []
    async for item in subscription:
        if isinstance(item, ScrollbackEnd):
            break
        seqs.append(item.seq)
    # Far more than the live queue holds arrives before the subscriber reads again.
    await append(log, 11, QUEUE_LIMIT * 2)
    async for item in subscription:
        assert not isinstance(item, ScrollbackEnd)
        seqs.append(item.seq)
        if item.seq == 10 + QUEUE_LIMIT * 2:
            break
    assert seqs == list(range(1, 11 + QUEUE_LIMIT * 2))


async def test_closing_a_session_ends_live_subscriptions_after_the_last_event(log: EventLog) -> None:
    await append(log, 1, 3)
    items = []

    async def follow() -> None:
        async for item in flat(log.subscribe(SESSION, after=1)):
            items.append(item)

    task = asyncio.create_task(follow())
    await append(log, 4, 2)
    log.close(SESSION)
    await asyncio.wait_for(task, 5)
    seqs = [i.seq for i in items if not isinstance(i, ScrollbackEnd)]
    assert seqs == [2, 3, 4, 5] and any(isinstance(i, ScrollbackEnd) for i in items)


async def test_live_events_come_in_the_batches_they_were_published_in(log: EventLog) -> None:
    sizes = [2, 3, 1, 4]
    received: list[list[int]] = []
    subscription = log.subscribe(SESSION, after=0)
    assert isinstance(await anext(subscription), ScrollbackEnd)
    start = 1
    for size in sizes:
        await append(log, start, size)
        start += size
        item = await anext(subscription)
        assert not isinstance(item, ScrollbackEnd)
        received.append([event.seq for event in item])
    await subscription.aclose()
    assert received == [[1, 2], [3, 4, 5], [6], [7, 8, 9, 10]]


async def test_read_pages_after_a_cursor(log: EventLog) -> None:
    await append(log, 1, 20)
    page = await log.read(SESSION, after=5, limit=10)
    assert [e.seq for e in page] == list(range(6, 16))
    assert json.loads(page[0].data)["seq"] == 6
