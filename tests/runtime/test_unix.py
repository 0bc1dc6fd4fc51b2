"""connect_unix while the listener's backlog is full: it waits for a real connection (the event loop's
sock_connect handed back sockets connected to nothing), and gives up after its timeout."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from cove.runtime import unix
from cove.runtime.unix import connect_unix


@pytest.fixture
def slow_listener(tmp_path: Path) -> Iterator[tuple[Path, socket.socket]]:
    """A unix socket listening with a backlog of one, which accepts only when the test says."""
    path = tmp_path / "s.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(1)
    listener.setblocking(False)
    yield path, listener
    listener.close()


async def test_a_burst_past_the_backlog_waits_to_be_accepted(slow_listener: tuple[Path, socket.socket]) -> None:
    path, listener = slow_listener

    async def accept_later() -> list[socket.socket]:
        await asyncio.sleep(0.2)
        return [(await asyncio.get_running_loop().sock_accept(listener))[0] for _ in range(8)]

    accepting = asyncio.create_task(accept_later())
    connected = await asyncio.gather(*(connect_unix(path) for _ in range(8)))
    assert [sock.getpeername() for sock in connected] == [str(path)] * 8
    for sock in [*connected, *await accepting]:
        sock.close()


async def test_a_listener_that_never_accepts_is_given_up(
    slow_listener: tuple[Path, socket.socket], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _listener = slow_listener
    monkeypatch.setattr(unix, "CONNECT_TIMEOUT", 0.2)
    held = [await connect_unix(path) for _ in range(2)]  # what the backlog holds
    with pytest.raises(BlockingIOError):
        await connect_unix(path)
    for sock in held:
        sock.close()
