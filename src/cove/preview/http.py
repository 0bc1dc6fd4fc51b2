"""One HTTP request relayed to a sandbox's app, over the connection its supervisor passed to the server.

The request goes as it arrives (its body streamed, re-framed for the app: the same ``content-length``, or chunked
when the client sent it chunked); the response comes back as the app sends it, its body in bounded pieces with
back-pressure from the client. A connection on which both ended where their framing said is kept for the port's
next request whose body is small enough to be sent again (``replayable``): if the app had closed it meanwhile,
the request goes again on a new one.

The response head is read strictly (``cove.http1``) and bounded: ``MAX_HEAD`` bytes, ``MAX_HEADERS`` headers,
within ``HEAD_TIMEOUT``. Its body has no time limit (a stream of server-sent events may last as long as its
client), but ends with its client: a client that goes away ends the request and its connection to the app.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Callable

from starlette.types import Message, Receive, Scope, Send

from cove.http1 import MalformedHead, parse_head
from cove.services.errors import BadGateway, GatewayTimeout
from cove.services.ports import PortConnection

Headers = list[tuple[bytes, bytes]]

MAX_HEAD = 64 * 1024
MAX_HEADERS = 100
MAX_INFORMATIONAL = 8  # 1xx heads (103 Early Hints) passed over before the response
HEAD_TIMEOUT = 60.0
CHUNK = 256 * 1024
REPLAYABLE = 64 * 1024
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")
# Hop-by-hop headers, and the framing the relay sets itself: never passed on, in either direction.
_HOP = {
    b"connection",
    b"keep-alive",
    b"proxy-connection",
    b"proxy-authenticate",
    b"proxy-authorization",
    b"te",
    b"trailer",
    b"transfer-encoding",
    b"upgrade",
    b"content-length",
    b"expect",
}

# The server adds its own: the app's would make two of each.
_SERVERS_OWN = {b"date", b"server"}


class ResponseBroken(Exception):
    """The app's response broke off after it had begun: the client's connection can only be closed."""


def _hop_by_hop(headers: Headers) -> set[bytes]:
    """The hop-by-hop headers of a message: the standard ones and those its Connection header names."""
    named = {
        token.strip().lower() for name, value in headers if name.lower() == b"connection" for token in value.split(b",")
    }
    return _HOP | named


def _request_head(method: str, target: bytes, headers: Headers) -> tuple[bytes, bytes | None]:
    """The head to send the app, and the body's framing: ``b"chunked"``, a ``content-length``, or None (no
    body)."""
    hop = _hop_by_hop(headers)
    framing = {name: value for name, value in headers if name in (b"content-length", b"transfer-encoding")}
    body = b"chunked" if b"transfer-encoding" in framing else framing.get(b"content-length")
    lines = [method.encode(), b" ", target, b" HTTP/1.1\r\n"]
    lines += [b"%s: %s\r\n" % (name, value) for name, value in headers if name not in hop]
    if body == b"chunked":
        lines.append(b"transfer-encoding: chunked\r\n")
    elif body is not None:
        lines.append(b"content-length: %s\r\n" % body)
    lines.append(b"\r\n")
    return b"".join(lines), body


async def replayable(headers: Headers, receive: Receive) -> Callable[[], Receive] | None:
    """For a request whose body is small enough to hold (``REPLAYABLE``), the body read now, and a way to send
    the request again: each call gives a ``receive`` that hands out the same body, then the client's own
    messages. None for a larger or chunked body, which goes as it arrives, so only on a new connection (a kept
    one may turn out closed after the body had been taken)."""
    names = dict(headers)
    length = names.get(b"content-length", b"0")
    if b"transfer-encoding" in names or not length.isdigit() or int(length) > REPLAYABLE:
        return None
    messages: list[Message] = []
    while not messages or (messages[-1]["type"] == "http.request" and messages[-1].get("more_body", False)):
        messages.append(await receive())

    def again() -> Receive:
        recorded = iter(messages)

        async def replaying() -> Message:
            return next(recorded, None) or await receive()

        return replaying

    return again


async def relay(
    connection: PortConnection,
    scope: Scope,
    receive: Receive,
    send: Send,
    target: bytes,
    headers: Headers,
    adjust: Callable[[Headers], Headers],
) -> None:
    """Relay the request of ``scope`` to the app over ``connection``: ``target`` is the request target the app
    sees, ``headers`` the request's headers as they are to reach it (lower-case names), and ``adjust`` gives the
    response's headers as they are to reach the client. The connection is left ``reusable`` when request and
    response ended where their framing said and the app keeps it open.

    Raises ``Stale`` when a kept connection turns out closed before any answer (the request may then be sent
    again: only a ``replayable`` one is sent on a kept connection), ``BadGateway`` or ``GatewayTimeout`` before
    the response has begun, ``ResponseBroken`` after."""
    reader, writer = await connection.streams(MAX_HEAD)
    head, body = _request_head(scope["method"], target, headers)
    writer.write(head)
    sent = asyncio.Event()
    upload = asyncio.create_task(_upload(receive, writer, body == b"chunked", sent))
    try:
        kept_alive = await _download(reader, send, scope["method"], adjust, connection.reused)
    finally:
        upload.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await upload
    connection.reusable = kept_alive and sent.is_set() and not writer.is_closing()


class Stale(Exception):
    """A kept-alive connection the app had closed: nothing of the request was answered."""


async def _upload(receive: Receive, writer: asyncio.StreamWriter, chunked: bool, sent: asyncio.Event) -> None:
    """The request's body to the app as it arrives (``sent`` once all of it is); then wait for the client to go
    away, which cuts the app's connection (and so ends the request: an endless response must not be relayed to
    no one). An app that stops reading or closes early only stops the upload: its answer still counts."""
    sending = True
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        data: bytes = message.get("body", b"")
        more = message.get("more_body", False)
        if sending:
            try:
                if data:
                    writer.write(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)
                if chunked and not more:
                    writer.write(b"0\r\n\r\n")
                await writer.drain()
            except (ConnectionError, RuntimeError):  # RuntimeError: uvloop's word for a closed transport
                sending = False
        if not more:
            if sending:
                sent.set()
            while (await receive())["type"] != "http.disconnect":
                pass
            break
    writer.transport.abort()


async def _download(
    reader: asyncio.StreamReader,
    send: Send,
    method: str,
    adjust: Callable[[Headers], Headers],
    may_be_stale: bool,
) -> bool:
    """The app's response to the client; whether it ended where its framing said, on a connection the app keeps
    open."""
    try:
        async with asyncio.timeout(HEAD_TIMEOUT):
            status, headers, kept_alive = await _response_head(reader)
    except TimeoutError:
        raise GatewayTimeout(f"the app sent no complete response head within {HEAD_TIMEOUT:.0f} s") from None
    except (asyncio.IncompleteReadError, ConnectionError) as error:
        if may_be_stale and not getattr(error, "partial", b""):
            raise Stale from None
        raise BadGateway("the app closed the connection before it answered") from None
    except asyncio.LimitOverrunError:
        raise BadGateway(f"the app's response head is larger than {MAX_HEAD} bytes") from None
    except MalformedHead as error:
        raise BadGateway(f"the app's response head is not valid HTTP/1.1: {error}") from None
    body, length = _framing(status, headers, method)
    dropped = _hop_by_hop(headers) | _SERVERS_OWN
    kept = [(name, value) for name, value in headers if name not in dropped]
    if length is not None:
        kept.append((b"content-length", b"%d" % length))
    await send({"type": "http.response.start", "status": status, "headers": adjust(kept)})
    try:
        async for data in body(reader):
            await send({"type": "http.response.body", "body": data, "more_body": True})
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError) as error:
        raise ResponseBroken(f"the app's response broke off: {type(error).__name__}: {error}") from None
    await send({"type": "http.response.body", "body": b"", "more_body": False})
    return kept_alive and body is not _until_closed


async def _response_head(reader: asyncio.StreamReader) -> tuple[int, Headers, bool]:
    """The response's status and headers (lower-case names), past any 1xx heads, and whether the app keeps the
    connection open after it."""
    for _ in range(MAX_INFORMATIONAL + 1):
        start, headers = parse_head(await reader.readuntil(b"\r\n\r\n"))
        version, _, rest = start.partition(" ")
        code = rest[:3]
        if not version.startswith("HTTP/1.") or not code.isdigit() or rest[3:4] not in ("", " "):
            raise MalformedHead(f"malformed status line {start[:40]!r}")
        if len(headers) > MAX_HEADERS:
            raise MalformedHead(f"more than {MAX_HEADERS} headers")
        status = int(code)
        if 200 <= status <= 599:
            lowered = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers]
            closes = version != "HTTP/1.1" or b"close" in _hop_by_hop(lowered)
            return status, lowered, not closes
        if not 100 <= status < 200 or status == 101:  # no upgrade was asked for
            raise MalformedHead(f"status {status}")
    raise MalformedHead(f"more than {MAX_INFORMATIONAL} informational responses")


BodyReader = Callable[[asyncio.StreamReader], AsyncIterator[bytes]]


def _framing(status: int, headers: Headers, method: str) -> tuple[BodyReader, int | None]:
    """How the response's body is delimited: a reader of its bytes, and the length to declare to the client."""
    codings = [c.strip().lower() for name, value in headers if name == b"transfer-encoding" for c in value.split(b",")]
    length = None if codings else _content_length(headers)
    if method == "HEAD":  # no body, and the length a GET would have
        return _nothing, length
    if status in (204, 304):
        return _nothing, None
    if codings:
        # Chunked as the last coding delimits the body; any other coding leaves it to the end of the connection.
        return (_chunked, None) if codings[-1] == b"chunked" else (_until_closed, None)
    if length is None:
        return _until_closed, None
    return (lambda reader: _exactly(reader, length)), length


def _content_length(headers: Headers) -> int | None:
    lengths = {value.strip() for name, value in headers if name == b"content-length"}
    if not lengths:
        return None
    (length,) = lengths if len(lengths) == 1 else (b"",)
    if not length.isdigit() or len(length) > 18:
        raise BadGateway("the app's response has a malformed or conflicting content-length")
    return int(length)


async def _nothing(_reader: asyncio.StreamReader) -> AsyncIterator[bytes]:
    return
    yield b""  # an async generator that yields nothing


async def _exactly(reader: asyncio.StreamReader, size: int) -> AsyncIterator[bytes]:
    """``size`` bytes, in pieces of at most ``CHUNK``."""
    while size:
        data = await reader.read(min(CHUNK, size))
        if not data:
            raise asyncio.IncompleteReadError(b"", size)
        size -= len(data)
        yield data


async def _until_closed(reader: asyncio.StreamReader) -> AsyncIterator[bytes]:
    while data := await reader.read(CHUNK):
        yield data


async def _chunked(reader: asyncio.StreamReader) -> AsyncIterator[bytes]:
    """The data of a chunked body, in pieces of at most ``CHUNK`` bytes whatever size the app declares (a chunk
    of a gigabyte is never held whole); trailers are read (bounded like headers) and dropped."""
    while True:
        line = await reader.readuntil(b"\r\n")
        size_text = line.split(b";", 1)[0].strip()
        if not _CHUNK_SIZE.fullmatch(size_text):
            raise ValueError("malformed chunk size")
        size = int(size_text, 16)
        if size == 0:
            for _ in range(MAX_HEADERS + 1):
                if await reader.readuntil(b"\r\n") == b"\r\n":
                    return
            raise ValueError(f"more than {MAX_HEADERS} trailer lines")
        async for data in _exactly(reader, size):
            yield data
        if await reader.readexactly(2) != b"\r\n":
            raise ValueError("a chunk does not end with CRLF")
