"""A sandbox floods its terminals and a client that never reads: the server relays at the client's pace and
holds nothing, the supervisor keeps only each terminal's last 256 KiB, other sandboxes and requests are served
as before, and a sandbox opening more terminals than allowed is refused."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest
from websockets.asyncio.client import connect

from cove import AsyncSandbox, QuotaExceeded
from tests.conftest import CoveServer
from tests.security.conftest import resident_bytes, server_answers


async def test_an_output_flood_to_a_client_that_never_reads_costs_the_server_nothing(
    server: CoveServer, attacker: AsyncSandbox, victim: AsyncSandbox
) -> None:
    assert server.process is not None
    terminal = await attacker.pty.create(command="cat /dev/urandom | base64")
    await terminal.close()
    url = f"ws://127.0.0.1:{server.port}/v1/sandboxes/{attacker.id}/pty/{terminal.pty_id}/ws"
    headers = {"Authorization": f"Bearer {server.api_key}"}
    async with connect(url, additional_headers=headers, max_size=None, max_queue=1) as stalled:
        assert json.loads(await stalled.recv())["type"] == "attached"
        before = resident_bytes(server.process.pid)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # the flood goes on; nobody reads this socket
            assert server_answers(server)
            assert (await victim.exec.run("echo fine")).stdout == "fine\n"
            await asyncio.sleep(0.25)
        grown = resident_bytes(server.process.pid) - before
        assert grown < 64 * 1024 * 1024, f"the server grew by {grown} bytes relaying to a client that does not read"
        info = await attacker.pty.get(terminal.pty_id)
        assert info.running and info.output_bytes > 10_000_000  # the program was never held up either
    await attacker.pty.kill(terminal.pty_id)


async def test_more_terminals_than_allowed_are_refused(server: CoveServer, attacker: AsyncSandbox) -> None:
    headers = {"Authorization": f"Bearer {server.api_key}"}
    base = f"{server.url}/v1/sandboxes/{attacker.id}/pty"
    async with httpx.AsyncClient(headers=headers, timeout=60) as http:
        codes = [(await http.post(base, json={"command": "sleep 600"})).status_code for _ in range(64)]
        assert codes == [201] * 64
        refused = await http.post(base, json={"command": "sleep 600"})
        assert (refused.status_code, refused.json()["error"]["code"]) == (429, "quota_exceeded")
    with pytest.raises(QuotaExceeded):
        await attacker.pty.create(command="true")
