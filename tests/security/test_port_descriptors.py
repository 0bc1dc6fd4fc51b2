"""A supervisor that lies about a port's connection: whatever it passes instead of a connected TCP socket to the
port asked for — a pipe, a unix socket, a listening socket, a socket to another port, many descriptors, a huge
or endless reply, nothing — ``open_port`` refuses it and keeps no descriptor of it."""

from __future__ import annotations

import multiprocessing
import os
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from cove.guest.protocol import encode_json
from cove.runtime import guest_client
from cove.runtime.guest_client import GuestClient, GuestUnavailable

Answer = Callable[[socket.socket, int], None]


def descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


@asynccontextmanager
async def lying_supervisor(tmp_path: Path, answer: Answer) -> AsyncIterator[tuple[GuestClient, int]]:
    """A supervisor socket whose every connection gets ``answer(connection, app_port)``, served by a process of
    its own (so that its descriptors are not counted as this one's); ``app_port`` is a real listener, so a socket
    to it is what a truthful supervisor would pass."""
    app = socket.create_server(("127.0.0.1", 0))
    app_port = app.getsockname()[1]
    path = tmp_path / "guest.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(16)

    def serve() -> None:
        while True:
            connection, _ = listener.accept()
            with connection:
                connection.recv(4096)
                answer(connection, app_port)

    supervisor = multiprocessing.get_context("fork").Process(target=serve, daemon=True)
    supervisor.start()
    listener.close()
    try:
        yield GuestClient(path, os.getuid()), app_port
    finally:
        supervisor.kill()
        supervisor.join()
        app.close()


OK = encode_json({"ok": True, "result": {}})


def passing(*make: Callable[[int], socket.socket | int]) -> Answer:
    """An answer that passes what each of ``make`` gives (made from the app's port), on the OK reply."""

    def answer(connection: socket.socket, app_port: int) -> None:
        made = [m(app_port) for m in make]
        fds = [m if isinstance(m, int) else m.fileno() for m in made]
        socket.send_fds(connection, [OK], fds)
        for m in made:
            os.close(m) if isinstance(m, int) else m.close()

    return answer


def to_app(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port))


def to_other(_port: int) -> socket.socket:
    other = socket.create_server(("127.0.0.1", 0))
    connected = socket.create_connection(other.getsockname())
    other.close()
    return connected


def a_pipe(_port: int) -> int:
    read, write = os.pipe()
    os.close(write)
    return read


LIARS: dict[str, Answer] = {
    "a pipe": passing(a_pipe),
    "a unix socket": passing(lambda _port: socket.socketpair()[0]),
    "a listening socket": passing(lambda _port: socket.create_server(("127.0.0.1", 0))),
    "an unconnected socket": passing(lambda _port: socket.socket()),
    "a UDP socket": passing(lambda _port: socket.socket(socket.AF_INET, socket.SOCK_DGRAM)),
    "a connection to another port": passing(to_other),
    "a regular file": passing(lambda _port: os.open("/etc/hostname", os.O_RDONLY)),
    "nothing with its OK": passing(),
    "an error with a socket": lambda c, p: socket.send_fds(
        c, [encode_json({"ok": False, "error": {"code": "x", "message": "m"}})], [to_app(p).fileno()]
    ),
    "a reply longer than the bound": lambda c, _p: c.sendall(encode_json({"ok": True, "pad": "x" * 10_000})),
    "a frame that is not JSON": lambda c, _p: c.sendall(b"J\x00\x00\x00\x03abc"),
    "a close before any reply": lambda c, _p: None,
}


@pytest.mark.parametrize("lie", list(LIARS))
async def test_open_port_refuses_what_is_not_a_connection_to_the_port(tmp_path: Path, lie: str) -> None:
    async with lying_supervisor(tmp_path, LIARS[lie]) as (guest, app_port):
        before = descriptors()
        with pytest.raises((GuestUnavailable, guest_client.GuestError)):
            await guest.open_port(app_port)
        assert descriptors() == before, f"{lie}: a descriptor was kept"


async def test_a_truthful_supervisor_is_believed_and_extra_descriptors_are_closed(tmp_path: Path) -> None:
    async with lying_supervisor(tmp_path, passing(to_app, to_app, a_pipe)) as (guest, app_port):
        before = descriptors()
        connection = await guest.open_port(app_port)
        assert connection.getpeername() == ("127.0.0.1", app_port)
        assert descriptors() == before + 1  # the one socket: the kernel closed the other two
        connection.close()


async def test_many_descriptors_in_a_trickled_reply_are_closed(tmp_path: Path) -> None:
    def trickle(connection: socket.socket, app_port: int) -> None:
        for byte in OK:
            sock = to_app(app_port)
            socket.send_fds(connection, [bytes([byte])], [sock.fileno()])
            sock.close()

    async with lying_supervisor(tmp_path, trickle) as (guest, app_port):
        before = descriptors()
        connection = await guest.open_port(app_port)
        assert descriptors() == before + 1
        connection.close()


async def test_a_supervisor_that_never_answers_times_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(guest_client, "PORT_REPLY_TIMEOUT", 0.3)

    def silent(connection: socket.socket, _port: int) -> None:
        connection.recv(1)  # until the client gives up

    async with lying_supervisor(tmp_path, silent) as (guest, app_port):
        with pytest.raises(GuestUnavailable, match="did not answer"):
            await guest.open_port(app_port)


async def test_a_socket_served_by_another_uid_is_not_asked(tmp_path: Path) -> None:
    async with lying_supervisor(tmp_path, passing(to_app)) as (guest, app_port):
        with pytest.raises(GuestUnavailable, match="served by uid"):
            await GuestClient(guest.socket_path, os.getuid() + 1).open_port(app_port)
