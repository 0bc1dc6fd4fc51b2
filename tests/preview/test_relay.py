"""The HTTP relay against an app played by the test over a socket pair: what it passes on, what it refuses, when it
keeps a connection, and that a client going away ends the request."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from cove.preview import http
from cove.services.errors import BadGateway, GatewayTimeout
from cove.services.ports import PortConnection

Messages = list[dict[str, Any]]


class Client:
    """The ASGI side: a request whose body comes in ``pieces``, then a client that stays until ``leave()``."""

    def __init__(self, *pieces: bytes) -> None:
        self._incoming: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        for index, piece in enumerate(pieces or (b"",)):
            more = index < len(pieces) - 1
            self._incoming.put_nowait({"type": "http.request", "body": piece, "more_body": more})
        self.sent: Messages = []

    async def receive(self) -> dict[str, Any]:
        return await self._incoming.get()

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)

    def leave(self) -> None:
        self._incoming.put_nowait({"type": "http.disconnect"})

    @property
    def status(self) -> int:
        return int(self.sent[0]["status"])

    @property
    def headers(self) -> dict[bytes, bytes]:
        return dict(self.sent[0]["headers"])

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.sent[1:])


@asynccontextmanager
async def app_side() -> AsyncIterator[tuple[PortConnection, asyncio.StreamReader, asyncio.StreamWriter]]:
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    reader, writer = await asyncio.open_connection(sock=theirs)
    connection = PortConnection(ours)
    try:
        yield connection, reader, writer
    finally:
        connection.close()
        writer.close()


def relaying(
    connection: PortConnection, client: Client, method: str = "GET", headers: http.Headers | None = None
) -> asyncio.Task[None]:
    """The relay of a request for ``/t?q=1``, running."""
    scope = {"method": method}
    return asyncio.create_task(
        http.relay(connection, scope, client.receive, client.send, b"/t?q=1", headers or [], list)
    )


async def exchange(answer: bytes, *, method: str = "GET", body: bytes = b"") -> tuple[Client, PortConnection, bytes]:
    """Relay one request to an app that answers ``answer`` (then keeps the connection open); what the client got,
    the connection, and the request head the app received."""
    client = Client(body)
    headers = [(b"host", b"example"), (b"content-length", str(len(body)).encode())] if body else [(b"host", b"x")]
    async with app_side() as (connection, reader, writer):
        relayed = relaying(connection, client, method, headers)
        head = await reader.readuntil(b"\r\n\r\n")
        if body:
            assert await reader.readexactly(len(body)) == body
        writer.write(answer)
        await relayed
    return client, connection, head


async def test_a_response_with_a_length_is_passed_on_and_its_connection_kept() -> None:
    client, connection, head = await exchange(
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer: app\r\nX-App: 1\r\n\r\nhello", method="POST", body=b"data"
    )
    assert head.startswith(b"POST /t?q=1 HTTP/1.1\r\n") and b"content-length: 4\r\n" in head
    assert b"connection: close" not in head.lower()
    assert (client.status, client.body) == (200, b"hello")
    assert client.headers == {b"content-length": b"5", b"x-app": b"1"}  # the server sets its own Server, Date
    assert connection.reusable


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\n\r\nuntil the end",  # delimited by the connection's end
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
    ],
)
async def test_a_connection_the_app_closes_is_not_kept(answer: bytes) -> None:
    client = Client()
    async with app_side() as (connection, reader, writer):
        relayed = relaying(connection, client)
        await reader.readuntil(b"\r\n\r\n")
        writer.write(answer)
        writer.close()
        await relayed
    assert client.status == 200 and not connection.reusable


async def test_chunks_of_any_declared_size_pass_in_bounded_pieces_and_trailers_are_dropped() -> None:
    big = 3 * http.CHUNK + 5
    answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%x;ext=1\r\n%s\r\n3\r\nabc\r\n0\r\nT: 1\r\n\r\n" % (
        big,
        b"z" * big,
    )
    client, connection, _head = await exchange(answer)
    assert client.body == b"z" * big + b"abc"
    assert max(len(m.get("body", b"")) for m in client.sent[1:]) <= http.CHUNK
    assert b"transfer-encoding" not in client.headers and connection.reusable


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        (b"HTTP/1.1 200 OK\r\nX: a\nY: b\r\n\r\n", "bare LF"),
        (b"HTTP/1.1 200 OK\r\nX : a\r\n\r\n", "space before the colon"),
        (b"HTTP/1.1 200 OK\r\n folded\r\n\r\n", "obsolete folding"),
        (b"HTTP/1.1 200 OK\r\nX: a\x01b\r\n\r\n", "a control character"),
        (b"HTTP/1.1 200 OK\r\nX: a\x00b\r\n\r\n", "a NUL"),
        (b"SMTP ready\r\n\r\n", "not HTTP"),
        (b"HTTP/1.1 999 Odd\r\n\r\n", "a status past 599"),
        (b"HTTP/1.1 101 Switching Protocols\r\n\r\n", "an upgrade nobody asked for"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok", "two lengths"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: -2\r\n\r\nok", "a negative length"),
        (b"HTTP/1.1 200 OK\r\n" + b"X: 1\r\n" * (http.MAX_HEADERS + 1) + b"\r\n", "too many headers"),
        (b"HTTP/1.1 200 OK\r\nX: " + b"a" * http.MAX_HEAD + b"\r\n\r\n", "a head too large"),
        (b"HTTP/1.1 103 Early Hints\r\n\r\n" * (http.MAX_INFORMATIONAL + 1), "endless 1xx"),
    ],
)
async def test_a_head_that_is_not_strict_http_is_a_bad_gateway(answer: bytes, why: str) -> None:
    with pytest.raises(BadGateway):
        await exchange(answer)


@pytest.mark.parametrize("size", [b"-1", b"0x10", b"1_0", b"+5", b"", b"12345678901234567"])
async def test_a_malformed_chunk_size_breaks_the_response_off(size: bytes) -> None:
    with pytest.raises(http.ResponseBroken):
        await exchange(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + size + b"\r\nxx\r\n0\r\n\r\n")


async def test_informational_heads_are_passed_over() -> None:
    client, _connection, _head = await exchange(
        b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n"
    )
    assert client.status == 204 and b"content-length" not in client.headers


async def test_a_head_response_keeps_its_length_and_has_no_body() -> None:
    client, connection, _head = await exchange(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", method="HEAD")
    assert client.headers[b"content-length"] == b"1000" and client.body == b"" and connection.reusable


async def test_a_head_that_never_completes_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http, "HEAD_TIMEOUT", 0.3)
    with pytest.raises(GatewayTimeout):
        await exchange(b"HTTP/1.1 200 OK\r\nX-Trickle: ")


async def test_a_client_that_leaves_ends_an_endless_response_and_its_connection() -> None:
    client = Client()
    async with app_side() as (connection, reader, writer):
        relayed = relaying(connection, client)
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n")
        for _ in range(5):
            writer.write(b"data: tick\n\n")
            await asyncio.sleep(0.01)
        client.leave()
        await asyncio.wait_for(relayed, 5)
        assert await asyncio.wait_for(reader.read(), 5) == b""  # the app sees its connection closed
    assert client.status == 200 and b"data: tick" in client.body and not connection.reusable


async def test_a_kept_connection_the_app_had_closed_is_stale() -> None:
    client = Client()
    async with app_side() as (connection, reader, writer):
        connection.reused = True
        relayed = relaying(connection, client)
        await reader.readuntil(b"\r\n\r\n")
        writer.close()
        with pytest.raises(http.Stale):
            await relayed
    assert client.sent == []


async def test_a_small_body_is_read_first_and_given_again_to_each_try() -> None:
    client = Client(b"ab", b"cd")
    again = await http.replayable([(b"content-length", b"4")], client.receive)
    assert again is not None
    for _ in range(2):
        receive = again()
        assert [(await receive())["body"], (await receive())["body"]] == [b"ab", b"cd"]
    client.leave()
    assert (await again()())["type"] == "http.request" and (await receive())["type"] == "http.disconnect"


@pytest.mark.parametrize(
    "headers",
    [[(b"content-length", b"%d" % (http.REPLAYABLE + 1))], [(b"transfer-encoding", b"chunked")]],
)
async def test_a_large_or_chunked_body_is_not_held(headers: http.Headers) -> None:
    client = Client(b"x")
    assert await http.replayable(headers, client.receive) is None
    assert (await client.receive())["body"] == b"x"  # nothing was read
