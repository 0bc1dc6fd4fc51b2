"""Preview URLs from a hostile sandbox's side: whatever its app answers (a head that never ends, 40 MB of head,
10,000 headers, a byte at a time, nothing) costs its own request only; the server keeps answering, within
bounds of memory and descriptors, and cuts the app's connection when the client goes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from cove import AsyncSandbox, PortInfo
from cove.services.ports import MAX_CONNECTIONS_PER_SANDBOX
from tests.conftest import CoveServer, peak_rss
from tests.security.conftest import open_descriptors, server_answers

HOSTILE_APP = (Path(__file__).parent / "hostile_app.py").read_text()
PORT = 8000


@pytest.fixture
async def hostile(attacker: AsyncSandbox) -> AsyncIterator[PortInfo]:
    """The hostile app's port, exposed publicly, once it listens."""
    await attacker.files.write("/workspace/hostile_app.py", HOSTILE_APP)
    await attacker.exec.background(f"python3 /workspace/hostile_app.py {PORT}")
    preview = await attacker.ports.expose(PORT, public=True)
    async with httpx.AsyncClient() as client:
        deadline = time.monotonic() + 30
        while (await client.get(preview.url + "huge-head")).json()["error"]["code"] == "port_not_listening":
            assert time.monotonic() < deadline
            await asyncio.sleep(0.1)
    yield preview


async def logged(sandbox: AsyncSandbox, what: str, path: str, within: float = 10) -> None:
    """Until the hostile app has logged ``path`` as ``what`` (``started``: its head read; ``ended``: its
    connection closed, by the server). The app's log files are all a test can watch of it."""
    deadline = time.monotonic() + within
    while (
        not await sandbox.files.exists(f"/tmp/{what}.log")
        or path not in (await sandbox.files.read_text(f"/tmp/{what}.log")).split()
    ):
        assert time.monotonic() < deadline, f"the app never logged {path} as {what}"
        await asyncio.sleep(0.1)


async def answers(server: CoveServer) -> bool:
    return await asyncio.to_thread(server_answers, server, 1.0)


async def test_a_head_that_never_ends_costs_only_its_own_request(
    server: CoveServer, attacker: AsyncSandbox, hostile: PortInfo
) -> None:
    async with httpx.AsyncClient(timeout=3) as client:
        waiting = asyncio.create_task(client.get(hostile.url + "never"))
        await logged(attacker, "started", "/never")  # the app holds it: its head will never end
        assert await answers(server)
        assert (await attacker.exec.run("echo still")).stdout == "still\n"
        with pytest.raises(httpx.ReadTimeout):
            await waiting
    await logged(attacker, "ended", "/never")  # the client gave up: the server cut the app's connection


@pytest.mark.parametrize(
    ("path", "why"), [("huge-head", "larger than 65536 bytes"), ("many-headers", "more than 100 headers")]
)
async def test_an_oversized_head_is_refused_without_being_held(
    server: CoveServer, hostile: PortInfo, path: str, why: str
) -> None:
    async with peak_rss(server) as memory, httpx.AsyncClient() as client:
        for _ in range(5):
            refused = await client.get(hostile.url + path)
            assert refused.status_code == 502, refused.text
            assert refused.json()["error"]["code"] == "bad_gateway" and why in refused.json()["error"]["message"]
    # A head held whole would be 40 MB; the server's own background work (a pool refill) moves it by a few.
    assert memory.peak - memory.before < 16 * 1024 * 1024
    assert await answers(server)


async def test_a_trickled_head_and_body_tie_up_only_their_own_requests(
    server: CoveServer, attacker: AsyncSandbox, hostile: PortInfo
) -> None:
    async with httpx.AsyncClient(timeout=30) as client:
        head = asyncio.create_task(client.get(hostile.url + "trickle-head"))
        async with client.stream("GET", hostile.url + "trickle-body") as body:
            received = b""
            async for piece in body.aiter_raw():
                received += piece
                assert await answers(server)
                if len(received) >= 20:
                    break
        trickled = await head
    assert (trickled.status_code, trickled.text) == (200, "ok")
    await logged(attacker, "ended", "/trickle-body")


async def test_many_concurrent_previews_are_bounded(
    server: CoveServer, attacker: AsyncSandbox, hostile: PortInfo
) -> None:
    before = open_descriptors(server)
    flood = MAX_CONNECTIONS_PER_SANDBOX + 44
    limits = httpx.Limits(max_connections=flood + 10, max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=httpx.Timeout(60, read=4), limits=limits) as client:
        replies = await asyncio.gather(
            *(client.get(hostile.url + "hang") for _ in range(flood)), return_exceptions=True
        )
        assert await answers(server)
    refused = [r for r in replies if isinstance(r, httpx.Response)]
    assert len(refused) >= flood - MAX_CONNECTIONS_PER_SANDBOX
    assert {r.status_code for r in refused} == {429}, [r.text for r in refused if r.status_code != 429][:3]
    assert {r.json()["error"]["code"] for r in refused} == {"rate_limited"}
    assert all(isinstance(r, httpx.ReadTimeout) for r in replies if not isinstance(r, httpx.Response))
    # Once the clients have gone, so have the connections: the port serves again, the descriptors are back.
    deadline = time.monotonic() + 20
    while open_descriptors(server) > before + 20:
        assert time.monotonic() < deadline, f"{open_descriptors(server)} descriptors open, {before} before"
        await asyncio.sleep(0.2)
    async with httpx.AsyncClient() as client:
        assert (await client.get(hostile.url + "huge-head")).status_code == 502
