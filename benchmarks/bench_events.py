"""Event log hot paths (issue 3): append → delivered latency to 10 subscribers, events/s, and attach replay.

Two levels: the ``EventLog`` itself over real SQLite (what every subscriber of the server shares), and the whole
server path — a session journal ingested into the log, then replayed over the WebSocket from seq 0.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import httpx
from websockets.asyncio.client import connect

from benchmarks._harness import Stats, markdown_table, ms, print_table, running_server, temp_dir, verdict
from cove.events.log import EventLog, ScrollbackEnd
from cove.store.db import open_engine
from cove.store.events import EventStore, StoredEvent
from cove.store.writer import SqliteWriter

SUBSCRIBERS = 10
LATENCY_SAMPLES = 2000
THROUGHPUT_EVENTS = 50_000
REPLAY_EVENTS = 100_000
SESSION = "ses_bench"


def _event(seq: int, sent: float = 0.0) -> StoredEvent:
    payload = {
        "seq": seq,
        "session_id": SESSION,
        "type": "assistant",
        "time": "2026-01-01T00:00:00Z",
        "content": [{"type": "text", "text": "x" * 120}],
        "sent": sent,
    }
    return StoredEvent(seq, "assistant", json.dumps(payload))


async def _subscriber(log: EventLog, until: int, latencies: list[float] | None, ready: asyncio.Event) -> None:
    async for item in log.subscribe(SESSION, after=0):
        if isinstance(item, ScrollbackEnd):
            ready.set()
            continue
        for event in item:
            if latencies is not None:
                latencies.append(time.perf_counter() - json.loads(event.data)["sent"])
            if event.seq >= until:
                return


async def _fan_out(directory: Path) -> tuple[Stats, float]:
    engine = await open_engine(directory / "fanout.db")
    log = EventLog(EventStore(engine, SqliteWriter(engine)))
    latencies: list[float] = []
    ready = [asyncio.Event() for _ in range(SUBSCRIBERS)]
    tasks = [
        asyncio.create_task(_subscriber(log, LATENCY_SAMPLES, latencies if i == 0 else None, ready[i]))
        for i in range(SUBSCRIBERS)
    ]
    await asyncio.gather(*(r.wait() for r in ready))
    for seq in range(1, LATENCY_SAMPLES + 1):
        await log.append(SESSION, [_event(seq, time.perf_counter())], {})
        await asyncio.sleep(0)  # one event at a time, as a runner produces them
    await asyncio.gather(*tasks)

    # Throughput: batches as the ingester writes them, delivered to every subscriber.
    base = LATENCY_SAMPLES
    ready = [asyncio.Event() for _ in range(SUBSCRIBERS)]
    tasks = [
        asyncio.create_task(_subscriber_from(log, base, base + THROUGHPUT_EVENTS, ready[i])) for i in range(SUBSCRIBERS)
    ]
    await asyncio.gather(*(r.wait() for r in ready))
    started = time.perf_counter()
    for start in range(base + 1, base + THROUGHPUT_EVENTS + 1, 500):
        await log.append(SESSION, [_event(seq) for seq in range(start, start + 500)], {})
    await asyncio.gather(*tasks)
    rate = THROUGHPUT_EVENTS / (time.perf_counter() - started)
    await engine.dispose()
    return Stats.of(latencies), rate


async def _subscriber_from(log: EventLog, after: int, until: int, ready: asyncio.Event) -> None:
    async for item in log.subscribe(SESSION, after=after):
        if isinstance(item, ScrollbackEnd):
            ready.set()
        elif item[-1].seq >= until:
            return


async def _replay_in_process(directory: Path) -> float:
    engine = await open_engine(directory / "replay.db")
    log = EventLog(EventStore(engine, SqliteWriter(engine)))
    for start in range(1, REPLAY_EVENTS + 1, 5000):
        await log.append(SESSION, [_event(seq) for seq in range(start, start + 5000)], {})
    started = time.perf_counter()
    async for item in log.subscribe(SESSION, after=0, follow=False):
        if isinstance(item, ScrollbackEnd):
            break
    elapsed = time.perf_counter() - started
    await engine.dispose()
    return elapsed


async def _replay_over_websocket() -> tuple[float, float, float]:
    """A real session whose journal grows by 100,000 events: ingest time, then a full WebSocket replay."""
    with running_server() as server:
        headers = {"authorization": f"Bearer {server.api_key}"}
        async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=120) as client:
            sandbox = (await client.post("/v1/sandboxes", json={})).json()["id"]
            session = (await client.post(f"/v1/sandboxes/{sandbox}/agent", json={})).json()["session_id"]
            path = f"/v1/sandboxes/{sandbox}/agent/{session}"
            while (await client.get(path)).json()["status"] == "starting":
                await asyncio.sleep(0.05)
            # The runner is idle (no prompt), so nothing else writes: grow its journal as a runner would.
            journal = server.session_journal(sandbox, session)
            first = sum(1 for _ in journal.open())
            lines = "".join(
                _event(seq).data.replace(SESSION, session) + "\n" for seq in range(first + 1, first + REPLAY_EVENTS + 1)
            )
            started = time.perf_counter()
            with journal.open("a") as handle:
                handle.write(lines)
            target = first + REPLAY_EVENTS
            while (await client.get(path)).json()["last_seq"] < target:
                await asyncio.sleep(0.05)
            ingest = time.perf_counter() - started
        replays = []
        for batch in (1, 500):
            url = server.url.replace("http://", "ws://") + f"{path}/ws?after=0&batch={batch}"
            started = time.perf_counter()
            received = 0
            async with connect(url, additional_headers=headers, max_size=None) as socket:
                async for raw in socket:
                    if '"scrollback_end"' in str(raw)[:40]:
                        break
                    received += str(raw).count("\n") + 1
            replays.append(time.perf_counter() - started)
            assert received == target, (received, target)
    return ingest, replays[0], replays[1]


async def _run() -> str:
    with temp_dir("cove-bench-events-") as directory:
        latency, rate = await _fan_out(directory)
        replay = await _replay_in_process(directory)
    ingest, ws_replay, ws_batched = await _replay_over_websocket()
    rows = [
        [
            "fan-out latency, append → delivered (10 subscribers)",
            f"p50 {ms(latency.p50, 3)} / p99 {ms(latency.p99, 3)} ms",
            "p99 < 5 ms",
            verdict(latency.p99 < 5),
        ],
        ["throughput to 10 subscribers", f"{rate:,.0f} events/s", "≥ 20,000/s", verdict(rate >= 20_000)],
        ["replay of 100,000 events (EventLog)", f"{replay * 1000:.0f} ms", "< 1 s", verdict(replay < 1)],
        [
            "replay of 100,000 events (WebSocket, a frame per event)",
            f"{ws_replay * 1000:.0f} ms",
            "< 1 s",
            verdict(ws_replay < 1),
        ],
        [
            "replay of 100,000 events (WebSocket, batch=500)",
            f"{ws_batched * 1000:.0f} ms",
            "< 1 s",
            verdict(ws_batched < 1),
        ],
        ["ingest of 100,000 journalled events", f"{ingest * 1000:.0f} ms ({REPLAY_EVENTS / ingest:,.0f}/s)", "—", ""],
    ]
    headers = ["measure", "result", "target", ""]
    print_table("Event log", headers, rows)
    return "## Event log (issue 3)\n\n" + markdown_table(headers, rows) + "\n"


def main() -> str:
    return asyncio.run(_run())
