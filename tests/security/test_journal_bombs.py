"""JSON bombs in a session's journal: the sandbox writes it, the root server parses every line of it. A forged
line may make the sandbox's own session's summary wrong; it must never freeze the server, flood the host's disk
with log lines, stop the session's ingest, or make an endpoint that lists every tenant's sessions answer 5xx."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import httpx

from cove import AsyncSandbox
from cove.sdk import AsyncAgentSession
from tests.conftest import CoveServer
from tests.security.conftest import idle_session, sh


def _line(session: AsyncAgentSession, seq: int, event_type: str, **fields: object) -> str:
    event = {"seq": seq, "session_id": session.session_id, "type": event_type, "time": "2026-01-01T00:00:00Z"}
    return json.dumps({**event, **fields})


async def _ingested(session: AsyncAgentSession, seq: int, within: float = 30) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if (await session.refresh()).last_seq >= seq:
            return True
        await asyncio.sleep(0.2)
    return False


class _Prober:
    """Times /healthz in a thread of its own while an attack runs: the slowest answer is how long the server's
    event loop was held."""

    def __init__(self, server: CoveServer) -> None:
        self._server = server
        self._stop = threading.Event()
        self.slowest = 0.0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=120) as client:
            while not self._stop.is_set():
                started = time.monotonic()
                client.get(self._server.url + "/healthz")
                self.slowest = max(self.slowest, time.monotonic() - started)
                time.sleep(0.05)

    def __enter__(self) -> _Prober:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()


async def test_a_journal_of_tiny_lines_neither_freezes_the_server_nor_floods_its_log(
    own_server: CoveServer,
) -> None:
    """Half a million two-byte lines that are not events: each used to be parsed on the event loop and to cost
    a warning in the server's log (65 bytes of host disk per 2 bytes of journal; 16 MiB of them held the loop
    for more than 30 s and wrote 1.1 GB of log)."""
    connection = {"url": own_server.url, "api_key": own_server.api_key}
    async with await AsyncSandbox.create(**connection) as attacker:
        session = await idle_session(attacker)
        journal = f"/run/cove/agents/{session.session_id}/events.jsonl"
        seq = (await session.refresh()).last_seq + 1
        await attacker.files.write("/tmp/bomb", b"1\n" * (512 * 1024) + _line(session, seq, "note").encode() + b"\n")
        log_before = own_server.log_path.stat().st_size
        with _Prober(own_server) as prober:
            await sh(attacker, f"cat /tmp/bomb >> {journal}")
            assert await _ingested(session, seq, within=120)
        assert prober.slowest < 1.0, f"the event loop was held for {prober.slowest:.1f} s"
        grown = own_server.log_path.stat().st_size - log_before
        assert grown < 1024 * 1024, f"1 MiB of journal wrote {grown} bytes of server log"


async def test_a_deeply_nested_journal_line_is_skipped_and_ingest_goes_on(own_server: CoveServer) -> None:
    """``[[[[…`` 200,000 deep: ``json.loads`` raises RecursionError (not a ValueError), which ended the session's
    ingest for good (a traceback in the log, and nothing the runner journals afterwards ever arrives)."""
    connection = {"url": own_server.url, "api_key": own_server.api_key}
    async with await AsyncSandbox.create(**connection) as attacker:
        session = await idle_session(attacker)
        journal = f"/run/cove/agents/{session.session_id}/events.jsonl"
        seq = (await session.refresh()).last_seq + 1
        await attacker.files.write("/tmp/deep", b"[" * 200_000 + b"\n" + _line(session, seq, "note").encode() + b"\n")
        await sh(attacker, f"cat /tmp/deep >> {journal}")
        assert await _ingested(session, seq), "the event after the nested line was never ingested"
    assert "Traceback" not in own_server.log_path.read_text(errors="replace")


async def test_a_forged_config_cannot_break_the_listing_of_every_sessions(own_server: CoveServer) -> None:
    """A ``configured`` event's config went into the session's row unchecked: one nested 600 deep made
    ``GET /v1/agent-sessions`` (every tenant's sessions) answer 500 for good, even after the sandbox was gone."""
    connection = {"url": own_server.url, "api_key": own_server.api_key}
    async with await AsyncSandbox.create(**connection) as attacker:
        session = await idle_session(attacker)
        journal = f"/run/cove/agents/{session.session_id}/events.jsonl"
        seq = (await session.refresh()).last_seq + 1
        nested = json.loads("[" * 600 + "]" * 600)
        await attacker.files.write("/tmp/line", _line(session, seq, "configured", config={"model": nested}) + "\n")
        await sh(attacker, f"cat /tmp/line >> {journal}")
        path = f"/v1/sandboxes/{attacker.id}/agent/{session.session_id}"
        with own_server.http() as client:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:  # until the line is ingested (or has broken the session's page)
                answer = client.get(path)
                if answer.status_code != 200 or answer.json()["last_seq"] >= seq:
                    break
                await asyncio.sleep(0.2)
    with own_server.http() as client:
        assert client.get("/v1/agent-sessions").status_code == 200
        assert client.get(path).status_code == 200
        assert client.get(path + "/events").status_code == 200
