"""Terminals in a sandbox, through the SDK against a real server: an interactive program typed into, resized,
re-attached with its recent output replayed, interrupted and killed; and the REST routes' refusals."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest
from websockets.asyncio.client import connect

from cove import AsyncSandbox, PtyNotFound
from tests.conftest import CoveServer


@pytest.fixture
async def sandbox(connection: dict[str, str]) -> AsyncIterator[AsyncSandbox]:
    async with await AsyncSandbox.create(**connection) as sandbox:
        yield sandbox


async def test_an_interactive_program_typed_into_resized_and_reattached(sandbox: AsyncSandbox) -> None:
    terminal = await sandbox.pty.create(command=["python3", "-q"], cols=100, rows=30)
    await terminal.read_until(">>> ")
    await terminal.write("import os; os.get_terminal_size()\r")
    assert b"os.terminal_size(columns=100, lines=30)" in await terminal.read_until(">>> ")

    await terminal.resize(132, 43)  # the REPL redraws its prompt on the SIGWINCH
    await terminal.write("os.get_terminal_size()\r")
    await terminal.read_until("os.terminal_size(columns=132, lines=43)")
    await terminal.read_until(">>> ")
    assert (await sandbox.pty.get(terminal.pty_id)).cols == 132

    await terminal.write("print('seen ' + 'before')\r")
    await terminal.read_until("seen before")
    await terminal.close()  # the program keeps running without anyone watching
    await sandbox.exec.run("true")
    [listed] = await sandbox.pty.list()
    assert listed.running and listed.pty_id == terminal.pty_id and listed.command == ["python3", "-q"]

    again = await sandbox.pty.attach(terminal.pty_id)  # the recent screen first, then live
    replayed = await again.read_until("seen before")
    assert b"os.terminal_size(columns=100, lines=30)" in replayed
    await again.read_until(">>> ")
    await again.write("6 * 7\r")
    assert b"42" in await again.read_until(">>> ")

    await again.write("import time; print('sleep' + 'ing'); time.sleep(60)\r")
    await again.read_until("sleeping")  # the program runs (the line's echo shows 'sleep' + 'ing')
    await again.write("\x03")  # Ctrl-C: the terminal's SIGINT to the foreground program
    assert b"KeyboardInterrupt" in await again.read_until(">>> ")
    await again.write("exit(3)\r")
    info = await again.wait()
    assert (info.running, info.exit_code) == (False, 3)


async def test_a_reattach_from_an_offset_misses_nothing_and_repeats_nothing(sandbox: AsyncSandbox) -> None:
    terminal = await sandbox.pty.create(command="stty -echo; for i in 1 2 3; do read x; echo got-$x; done")
    await terminal.write("a\r")
    first = await terminal.read_until("got-a\r\n")
    offset = terminal.offset
    await terminal.close()
    resumed = await sandbox.pty.attach(terminal.pty_id, offset=offset)
    await resumed.write("b\rc\r")
    rest = await resumed.read_until("got-c\r\n")
    assert first.endswith(b"got-a\r\n") and rest == b"got-b\r\ngot-c\r\n"
    assert (await resumed.wait()).exit_code == 0


async def test_kill_ends_the_program_and_the_stream(sandbox: AsyncSandbox) -> None:
    terminal = await sandbox.pty.create(command="echo up; sleep 600")
    await terminal.read_until("up")
    killed = await sandbox.pty.kill(terminal.pty_id)
    assert killed.pty_id == terminal.pty_id
    info = await asyncio.wait_for(terminal.wait(), 10)
    assert (info.running, info.signal, info.exit_code) == (False, 9, 137)
    assert not (await sandbox.pty.get(terminal.pty_id)).running


async def test_much_output_fast_keeps_the_last_of_it_for_a_late_attach(sandbox: AsyncSandbox) -> None:
    terminal = await sandbox.pty.create(command="head -c 1000000 /dev/zero | tr '\\0' x; echo; echo the-end")
    await terminal.wait()
    late = await sandbox.pty.attach(terminal.pty_id)
    kept = b"".join([chunk async for chunk in late])
    assert kept.endswith(b"the-end\r\n") and 200_000 < len(kept) <= 256 * 1024
    assert late.offset == (await sandbox.pty.get(terminal.pty_id)).output_bytes > 1_000_000


async def test_refusals(server: CoveServer, sandbox: AsyncSandbox) -> None:
    with pytest.raises(PtyNotFound):
        await sandbox.pty.get("pty999")
    with pytest.raises(PtyNotFound):
        await sandbox.pty.attach("pty999")
    headers = {"Authorization": f"Bearer {server.api_key}"}
    base = f"{server.url}/v1/sandboxes/{sandbox.id}/pty"
    async with httpx.AsyncClient(headers=headers) as http:
        for body in ({"cols": 0}, {"rows": 5000}, {"command": ""}, {"cwd": "/etc"}, {"shell": True}):
            reply = await http.post(base, json=body)
            assert reply.status_code == 422, body
        missing = await http.post(base, json={"command": ["/no/such/program"]})
        assert (missing.status_code, missing.json()["error"]["code"]) == (400, "command_not_found")
        created = (await http.post(base, json={"command": "sleep 600"})).json()
        reply = await http.post(f"{base}/{created['pty_id']}/resize", json={"cols": 10, "rows": 0})
        assert reply.status_code == 422
        url = f"ws://127.0.0.1:{server.port}/v1/sandboxes/{sandbox.id}/pty/{created['pty_id']}/ws"
        async with connect(url, additional_headers=headers) as socket:
            assert json.loads(await socket.recv())["type"] == "attached"
            await socket.send(json.dumps({"type": "resize", "cols": -1, "rows": 5}))
            await socket.send(json.dumps({"type": "nonsense"}))
            errors = [json.loads(await socket.recv()) for _ in range(2)]
            assert [e["code"] for e in errors] == ["invalid_frame", "invalid_frame"]
        await http.delete(f"{base}/{created['pty_id']}")
