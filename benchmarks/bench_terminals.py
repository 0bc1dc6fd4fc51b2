"""Terminals (issue 14): keystroke echo round trip through a PTY — a key sent on the WebSocket until its echo
comes back — goal < 10 ms p50.

Three paths, on one warm sandbox of a real server, one key at a time: the terminal's own echo (``cat`` on a
terminal in canonical mode: the kernel echoes, no program runs per key), bash's line editor (readline redraws
each key: what a person at ``cove sandbox shell`` sees), both over a bare WebSocket client; and the Python SDK's
``PtyHandle`` (``write`` then ``read_until``) against the terminal's echo.
"""

from __future__ import annotations

import asyncio
import json
import time

from websockets.asyncio.client import ClientConnection, connect

from benchmarks._harness import Stats, markdown_table, ms, print_table, running_server, verdict
from cove import AsyncSandbox

KEYS = 400
WARMUP = 20
GOAL_MS = 10.0
KEYS_TYPED = "abcdefghijklmnopqrstuvwxyz"


async def _echoes(socket: ClientConnection, keys: int) -> Stats:
    """Send one key, wait until output holding it arrives; again. Any JSON frame in between is skipped."""
    samples: list[float] = []
    for index in range(WARMUP + keys):
        key = KEYS_TYPED[index % len(KEYS_TYPED)].encode()
        started = time.perf_counter()
        await socket.send(key)
        while True:
            frame = await socket.recv()
            if isinstance(frame, bytes) and key in frame:
                break
        if index >= WARMUP:
            samples.append(time.perf_counter() - started)
        if index % 60 == 59:  # keep the line short: a newline lets cat print it and bash forget it
            await socket.send(b"\r")
            await asyncio.sleep(0.02)
            while True:
                try:
                    await asyncio.wait_for(socket.recv(), 0.05)
                except TimeoutError:
                    break
    return Stats.of(samples)


async def _websocket_echo(sandbox: AsyncSandbox, url: str, key: str, command: str, ready: bytes) -> Stats:
    terminal = await sandbox.pty.create(command=command)
    await terminal.read_until(ready)
    await terminal.close()
    address = f"{url.replace('http', 'ws', 1)}/v1/sandboxes/{sandbox.id}/pty/{terminal.pty_id}/ws"
    async with connect(address, additional_headers={"Authorization": f"Bearer {key}"}, compression=None) as socket:
        hello = json.loads(await socket.recv())
        offset = int(hello["pty"]["output_bytes"])  # skip the replay: read until it is over
        received = hello["offset"]
        while received < offset:
            frame = await socket.recv()
            received += len(frame) if isinstance(frame, bytes) else 0
        stats = await _echoes(socket, KEYS)
    await sandbox.pty.kill(terminal.pty_id)
    return stats


async def _sdk_echo(sandbox: AsyncSandbox) -> Stats:
    terminal = await sandbox.pty.create(command="echo ready; exec cat")
    await terminal.read_until("ready\r\n")
    samples: list[float] = []
    for index in range(WARMUP + KEYS):
        key = KEYS_TYPED[index % len(KEYS_TYPED)]
        started = time.perf_counter()
        await terminal.write(key)
        await terminal.read_until(key)
        if index >= WARMUP:
            samples.append(time.perf_counter() - started)
        if index % 60 == 59:
            await terminal.write("\r")
            await terminal.read_until("\r\n")  # the tty's echo of the newline
            await terminal.read_until("\r\n")  # cat's line
    await sandbox.pty.kill(terminal.pty_id)
    return Stats.of(samples)


async def _run() -> str:
    with running_server() as server:
        async with await AsyncSandbox.create(url=server.url, api_key=server.api_key) as sandbox:
            tty = await _websocket_echo(sandbox, server.url, server.api_key, "echo ready; exec cat", b"ready\r\n")
            bash = await _websocket_echo(sandbox, server.url, server.api_key, "PS1='$ ' exec bash --norc -i", b"$ ")
            sdk = await _sdk_echo(sandbox)
    rows = [
        ["terminal echo (`cat`, canonical mode), bare WebSocket", tty.n, ms(tty.p50), ms(tty.p95), ms(tty.max)],
        ["bash readline echo, bare WebSocket", bash.n, ms(bash.p50), ms(bash.p95), ms(bash.max)],
        ["terminal echo through the Python SDK (`write` → `read_until`)", sdk.n, ms(sdk.p50), ms(sdk.p95), ms(sdk.max)],
    ]
    headers = ["keystroke → echo", "n", "p50 ms", "p95 ms", "max ms"]
    print_table("Keystroke echo round trip", headers, rows)
    targets = [
        ["echo round trip p50 < 10 ms (bash, bare WebSocket)", f"{ms(bash.p50)} ms", verdict(bash.p50 < GOAL_MS)],
        [
            "echo round trip p50 < 10 ms (terminal echo, bare WebSocket)",
            f"{ms(tty.p50)} ms",
            verdict(tty.p50 < GOAL_MS),
        ],
    ]
    return "\n\n".join(
        [
            "## Terminals — keystroke echo round trip (`bench_terminals`)",
            f"{KEYS} keys one at a time (after {WARMUP} warm-up keys) on one warm sandbox, each sent as a binary "
            "WebSocket frame and timed until output holding it comes back: client → server → supervisor → the "
            "terminal → its echo → supervisor → server → client.",
            "### Targets\n\n" + markdown_table(["target", "measured", "result"], targets),
            "### Measurements\n\n" + markdown_table(headers, rows),
        ]
    )


def main() -> str:
    return asyncio.run(_run())
