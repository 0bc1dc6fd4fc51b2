"""A sandbox floods its terminals and a client that never reads: the server relays at the client's pace and
holds nothing, the supervisor keeps only each terminal's last 256 KiB (all a replay shows), other sandboxes and
requests are served as before, and a sandbox opening more terminals than allowed is refused. A program that
never reads what is typed holds nothing up, and a client's malformed frames are refused one by one while its
terminal goes on."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from cove import AsyncSandbox, QuotaExceeded
from cove.guest.ptys import RING_BYTES
from tests.conftest import CoveServer
from tests.security.conftest import resident_bytes, server_answers, sh


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


def _socket(server: CoveServer, sandbox: AsyncSandbox, pty_id: str, query: str = "") -> ClientConnection:
    url = f"ws://127.0.0.1:{server.port}/v1/sandboxes/{sandbox.id}/pty/{pty_id}/ws{query}"
    return connect(url, additional_headers={"Authorization": f"Bearer {server.api_key}"}, max_size=None)


async def _supervisor_bytes(sandbox: AsyncSandbox) -> int:
    """The resident memory of the sandbox's supervisor (its PID 1), as the sandbox sees it."""
    return int((await sh(sandbox, "awk '/^VmRSS:/ {print $2}' /proc/1/status")).strip()) * 1024


async def test_typing_into_a_program_that_never_reads_holds_nothing_up(
    server: CoveServer, attacker: AsyncSandbox, victim: AsyncSandbox
) -> None:
    """32 MiB typed at a program that never reads its terminal: the terminal takes 4 KiB, the supervisor keeps
    1 MiB waiting and drops the rest, so the client's input is taken as fast as it comes and nothing piles up."""
    assert server.process is not None
    terminal = await attacker.pty.create(command=["sleep", "600"])
    await terminal.close()
    server_before, supervisor_before = resident_bytes(server.process.pid), await _supervisor_bytes(attacker)
    async with _socket(server, attacker, terminal.pty_id) as typist:
        assert json.loads(await typist.recv())["type"] == "attached"
        async with asyncio.timeout(60):  # every frame is read at once by the server and the supervisor
            for _ in range(512):
                await typist.send(b"x" * 65536)
        assert server_answers(server)
        assert (await victim.exec.run("echo fine")).stdout == "fine\n"
        assert (await attacker.exec.run("echo fine")).stdout == "fine\n"  # its supervisor serves as before
        grown = resident_bytes(server.process.pid) - server_before
        assert grown < 64 * 1024 * 1024, f"the server grew by {grown} bytes passing input on"
        held = await _supervisor_bytes(attacker) - supervisor_before
        assert held < 16 * 1024 * 1024, f"the supervisor grew by {held} bytes holding input nobody reads"
    assert (await attacker.pty.get(terminal.pty_id)).running
    await attacker.pty.kill(terminal.pty_id)


async def test_malformed_frames_are_refused_and_the_terminal_goes_on(
    server: CoveServer, attacker: AsyncSandbox
) -> None:
    terminal = await attacker.pty.create(command="stty -echo; while read -r line; do echo got-$line; done")
    await terminal.close()
    malformed = [
        "not json",
        "[1, 2]",
        "null",
        "{" * 100_000,  # nested past any parser's depth
        json.dumps({"type": "launch"}),
        json.dumps({"type": "resize", "cols": 0, "rows": 24}),
        json.dumps({"type": "resize", "cols": 10**9, "rows": 24}),
        json.dumps({"type": "resize", "cols": "80", "rows": [24]}),
        json.dumps({"type": "signal", "signal": "SIGNOPE"}),
        json.dumps({"type": "signal", "signal": 999}),
        json.dumps({"type": "signal", "signal": [9]}),
        json.dumps({"type": "signal", "signal": {"number": 9}}),
        json.dumps({"type": "x" * (8 * 1024 * 1024)}),
    ]
    async with _socket(server, attacker, terminal.pty_id) as client:
        assert json.loads(await client.recv())["type"] == "attached"
        for frame in malformed:
            await client.send(frame)
            reply = await asyncio.wait_for(client.recv(), 10)
            assert len(reply) < 1024  # an answer names what was wrong, never repeats it
            answer = json.loads(reply)
            assert (answer["type"], answer["code"]) == ("error", "invalid_frame"), (frame[:40], answer)
        await client.send(b"still here\r")
        seen = b""
        async with asyncio.timeout(10):
            while b"got-still here" not in seen:
                frame = await client.recv()
                assert isinstance(frame, bytes), frame  # no more errors: only the terminal's output
                seen += frame
    async with _socket(server, attacker, terminal.pty_id) as oversized:
        assert json.loads(await oversized.recv())["type"] == "attached"
        with contextlib.suppress(ConnectionClosed):  # the server may close it before the frame is all sent
            await oversized.send(b"x" * (17 * 1024 * 1024))  # past the server's 16 MiB a frame: that socket closes
        await asyncio.wait_for(oversized.wait_closed(), 10)
        assert oversized.close_code == 1009
    assert server_answers(server)
    assert (await attacker.pty.get(terminal.pty_id)).running
    await attacker.pty.kill(terminal.pty_id)


async def test_a_replay_is_the_last_256_kib_whatever_the_terminal_wrote(
    server: CoveServer, attacker: AsyncSandbox
) -> None:
    terminal = await attacker.pty.create(
        command="head -c 3000000 /dev/zero | tr '\\0' x; echo; echo the-end; sleep 600"
    )
    await terminal.read_until("the-end")
    await terminal.close()
    written = (await attacker.pty.get(terminal.pty_id)).output_bytes
    assert written > 3_000_000
    for query in ("", "?offset=0"):  # everything kept, or everything from the start: both begin 256 KiB back
        async with _socket(server, attacker, terminal.pty_id, query) as client:
            hello = json.loads(await client.recv())
            assert hello["type"] == "attached" and hello["offset"] == written - RING_BYTES, query
            replayed = b""
            while len(replayed) < RING_BYTES:
                frame = await asyncio.wait_for(client.recv(), 10)
                assert isinstance(frame, bytes), frame
                replayed += frame
            assert len(replayed) == RING_BYTES and replayed.endswith(b"the-end\r\n")
    await attacker.pty.kill(terminal.pty_id)
