"""The model proxy: the only road from a sandbox to a model provider.

A runner presents its per-session token where the CLI puts an API key; the proxy checks it, swaps in the real
credentials (which never enter a sandbox), forwards to the upstream and meters the tokens each session used by
reading the ``usage`` the Messages API reports, streaming or not.

Every model call of every agent turn crosses this hop, so it is a byte-level HTTP/1.1 pass-through on asyncio
streams rather than an ASGI app with an HTTP client behind it: the request body is forwarded as received, the
response (status line, headers, body framing) is relayed as the upstream sent it, and upstream connections are
kept alive between calls. That costs about a tenth of a millisecond per call where the framework stack (parse,
re-serialise, re-chunk) cost two (benchmarks/RESULTS.md, "Agent turns"). Only the request head is rewritten.

The client is a sandbox, so it gets the model API and nothing else: only ``POST /v1/messages``, ``POST
/v1/messages/count_tokens`` and ``GET /v1/models`` (and one model's page) are forwarded, with the path matched
exactly (no ``..``, no ``//``, no percent-escapes), no forwarding headers, a token that belongs to the session of
the sandbox the connection came from, and a deadline on every request head and body.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import ssl
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

from cove.http1 import ChunkedBody, MalformedHead, parse_head

TokenResolver = Callable[[str, int], Awaitable[str | None]]  # (token, the sandbox's uid) -> session id
UsageSink = Callable[[str, dict[str, int]], Coroutine[Any, Any, None]]
ANTHROPIC_URL = "https://api.anthropic.com"
# Request headers that are the proxy's to set (credentials, framing, connection management), never the client's.
_HOP_HEADERS = {
    "host",
    "content-length",
    "transfer-encoding",
    "x-api-key",
    "authorization",
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
    "te",
    "trailer",
    "upgrade",
    "expect",
    "accept-encoding",
}
# Forwarding headers say where a request came from; the sandbox's word on that is not to be passed on.
_FORWARDING = ("forwarded", "x-forwarded-", "x-real-ip", "via", "x-client-ip", "true-client-ip", "x-original-")
_METERED = ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
# The model API, as (method, exact path): nothing else of the upstream (admin, batches, files) is reachable.
_ROUTES = {("POST", "/v1/messages"), ("POST", "/v1/messages/count_tokens"), ("GET", "/v1/models")}
_MODEL_PAGE = re.compile(r"/v1/models/[A-Za-z0-9._:@-]{1,128}")
_QUERY = re.compile(r"[A-Za-z0-9_.=&-]{0,256}")
_NOT_FORWARDED = "the model proxy forwards only POST /v1/messages, POST /v1/messages/count_tokens and GET /v1/models"
MAX_HEAD = 64 * 1024
MAX_BODY = 64 * 1024 * 1024  # the Messages API itself refuses requests over 32 MB
MAX_CHUNKS = 4096  # chunks of one request body
# Request bodies held in memory at once, per sandbox: whatever its own memory limit, a sandbox opening dozens of
# connections and announcing a large body on each could otherwise make the server hold gigabytes.
MAX_BODIES_PER_PEER = 128 * 1024 * 1024
MAX_REFUSALS_PER_SECOND = 20
_CHUNK = 64 * 1024
CONNECT_TIMEOUT = 10.0
RESPONSE_TIMEOUT = 600.0  # until the response head: a long non-streamed answer may take minutes
# A request head must arrive whole within this of the connection (or of the previous answer, when kept alive),
# and its body within BODY_TIMEOUT: a client trickling bytes holds no connection for long.
HEAD_TIMEOUT = 300.0
BODY_TIMEOUT = 300.0


@dataclass(frozen=True)
class Upstream:
    """Where model requests go and with which credentials, as Anthropic-compatible gateways expect them."""

    base_url: str
    api_key: str | None = None
    auth_token: str | None = None

    @classmethod
    def from_env(cls, simulator_url: str | None = None) -> Upstream | None:
        """``ANTHROPIC_API_KEY``/``ANTHROPIC_AUTH_TOKEN`` and ``ANTHROPIC_BASE_URL``; None without a key."""
        key = os.environ.get("ANTHROPIC_API_KEY") or None
        token = os.environ.get("ANTHROPIC_AUTH_TOKEN") or None
        if not key and not token:
            return cls(simulator_url) if simulator_url else None
        return cls(os.environ.get("ANTHROPIC_BASE_URL") or ANTHROPIC_URL, key, token)

    def headers(self) -> dict[str, str]:
        if self.api_key:
            return {"x-api-key": self.api_key}
        if self.auth_token:
            return {"authorization": f"Bearer {self.auth_token}"}
        return {"x-api-key": "cove-simulator"}


class _Meter:
    """Adds up the usage fields seen in a response, whether one JSON body or a stream of SSE events."""

    def __init__(self, streaming: bool) -> None:
        self.usage = dict.fromkeys(_METERED, 0)
        self.streaming = streaming
        self._pending = b""

    def _take(self, usage: object) -> None:
        if isinstance(usage, dict):
            for key in _METERED:
                value = usage.get(key)
                if isinstance(value, int):
                    # message_delta repeats cumulative output_tokens: keep the largest, not the sum.
                    self.usage[key] = max(self.usage[key], value) if key == "output_tokens" else self.usage[key] + value

    def feed(self, data: bytes) -> None:
        """Body bytes as they pass (without the transfer framing)."""
        self._pending += data
        if not self.streaming:
            return  # one JSON document: read at the end
        *lines, self._pending = self._pending.split(b"\n")
        for line in lines:
            # Only message_start and message_delta carry usage: the content deltas are not parsed at all.
            if not line.startswith(b"data:") or b'"usage"' not in line:
                continue
            try:
                event = json.loads(line[5:])
            except ValueError:
                continue
            if not isinstance(event, dict):
                continue
            message = event.get("message")
            if isinstance(message, dict):
                self._take(message.get("usage"))
            self._take(event.get("usage"))

    def finish(self) -> dict[str, int]:
        if not self.streaming:
            try:
                document = json.loads(self._pending)
            except ValueError:
                document = None
            if isinstance(document, dict):
                self._take(document.get("usage"))
        return self.usage


class _HTTPError(Exception):
    def __init__(self, status: int, message: str, kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind


@dataclass
class _Request:
    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes
    keep_alive: bool
    session_id: str = ""
    reserved: int = 0  # body bytes counted against the sandbox's budget while this request is served

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None


_Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


def _error_bytes(status: int, kind: str, message: str, *, close: bool) -> bytes:
    body = json.dumps({"type": "error", "error": {"type": kind, "message": message}}).encode()
    head = f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\ncontent-type: application/json\r\n"
    head += f"content-length: {len(body)}\r\n"
    return (head + ("connection: close\r\n" if close else "") + "\r\n").encode() + body


def _parse_head(raw: bytes) -> tuple[str, list[tuple[str, str]]]:
    try:
        return parse_head(raw)
    except MalformedHead as error:
        raise _HTTPError(400, str(error)) from None


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    """A chunked request body. Each chunk costs a few calls on the event loop whatever its size, so their number
    is bounded: a sandbox sending one-byte chunks held the server's loop at 100% (clients send a model request
    whole, with a content-length, or in a few large chunks)."""
    body = bytearray()
    for _chunk in range(MAX_CHUNKS + 1):
        size_line = await reader.readuntil(b"\r\n")
        try:
            size = int(size_line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise _HTTPError(400, "malformed chunk size") from None
        if size == 0:
            for _trailer in range(MAX_CHUNKS):  # trailers: dropped (as many lines as chunks at most)
                if await reader.readuntil(b"\r\n") == b"\r\n":
                    return bytes(body)
            break
        if len(body) + size > MAX_BODY:
            raise _HTTPError(413, "request body too large")
        body += (await reader.readexactly(size + 2))[:-2]
    raise _HTTPError(400, f"a chunked body of more than {MAX_CHUNKS} chunks or trailer lines")


def _forwarded(method: str, target: str) -> bool:
    """Whether a request is for the model API (the path exactly; the query only plain ``name=value`` pairs)."""
    path, _, query = target.partition("?")
    if not _QUERY.fullmatch(query):
        return False
    return (method, path) in _ROUTES or (method == "GET" and _MODEL_PAGE.fullmatch(path) is not None)


def _passed_on(name: str) -> bool:
    return name not in _HOP_HEADERS and not name.startswith(_FORWARDING)


class ModelProxy:
    """Serves model calls from sandboxes (one :meth:`serve_connection` per client connection, kept alive)."""

    def __init__(self, resolve: TokenResolver, upstream: Upstream, record_usage: UsageSink) -> None:
        self._resolve = resolve
        self._upstream = upstream
        self._record_usage = record_usage
        url = urlsplit(upstream.base_url)
        self._tls = url.scheme == "https"
        self._host = url.hostname or "localhost"
        self._port = url.port or (443 if self._tls else 80)
        self._netloc = url.netloc
        self._base_path = url.path.rstrip("/")
        self._ssl = ssl.create_default_context() if self._tls else None
        self._credentials = "".join(f"{k}: {v}\r\n" for k, v in upstream.headers().items())
        self._idle: list[_Connection] = []
        self._clients: set[asyncio.StreamWriter] = set()
        self._holding: Counter[int] = Counter()  # request body bytes held per sandbox uid
        self._refused: dict[int, tuple[int, int]] = {}  # uid -> (second, requests refused for their token in it)
        self._pending: set[asyncio.Task[None]] = set()

    async def close(self) -> None:
        """Drop kept-alive connections on both sides and let the last usage records land."""
        for writer in [*self._clients, *(w for _, w in self._idle)]:
            writer.close()
        self._idle.clear()
        if self._pending:
            await asyncio.wait(self._pending, timeout=5)

    async def serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, uid: int) -> None:
        """Serve one client connection, handed over from the sandbox whose uid is ``uid``."""
        self._clients.add(writer)
        try:
            while True:
                try:
                    request = await self._read_request(reader, writer, uid)
                except _HTTPError as error:
                    writer.write(_error_bytes(error.status, error.kind, str(error), close=True))
                    await writer.drain()
                    return
                if request is None:
                    return
                try:
                    served = await self._handle(request, writer)
                finally:
                    self._release(uid, request.reserved)
                if not served or not request.keep_alive:
                    return
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, RuntimeError, TimeoutError):
            pass  # the client went away or stalled (RuntimeError: uvloop's word for a write to a closed transport)
        finally:
            self._clients.discard(writer)
            writer.close()

    def _release(self, uid: int, size: int) -> None:
        self._holding[uid] -= size
        if self._holding[uid] <= 0:
            del self._holding[uid]

    def _reserve(self, request: _Request, uid: int, size: int) -> None:
        if self._holding[uid] + size > MAX_BODIES_PER_PEER:
            raise _HTTPError(429, "too many model request bytes in flight from this sandbox", "rate_limit_error")
        self._holding[uid] += size
        request.reserved += size

    async def _read_request(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, uid: int
    ) -> _Request | None:
        """A request whose token belongs to the sandbox of ``uid`` and whose route is the model API, its body
        read within the sandbox's budget. The token and route are checked on the head, before any body is read:
        a request that would be refused costs no more than its head."""
        try:
            async with asyncio.timeout(HEAD_TIMEOUT):
                raw = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as error:
            if error.partial.strip():
                raise _HTTPError(400, "incomplete request head") from None
            return None  # the client closed its kept-alive connection
        except asyncio.LimitOverrunError:
            raise _HTTPError(400, "request head too large") from None
        start, headers = _parse_head(raw)
        parts = start.split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1.") or not parts[1].startswith("/"):
            raise _HTTPError(400, "malformed request line")
        method, target, version = parts
        request = _Request(method, target, headers, b"", keep_alive=True)
        connection = (request.header("connection") or "").lower()
        request.keep_alive = "close" not in connection and (version != "HTTP/1.0" or "keep-alive" in connection)
        length, chunked = request.header("content-length"), request.header("transfer-encoding")
        window, refused = self._refused.get(uid, (0, 0))
        now = int(time.monotonic())
        if window == now and refused >= MAX_REFUSALS_PER_SECOND:
            raise _HTTPError(429, "too many refused requests from this sandbox: slow down", "rate_limit_error")
        token = self._token(request)
        session_id = await self._resolve(token, uid) if token else None
        if session_id is None:
            # Each unknown token costs a lookup: a sandbox guessing tokens in a loop gets a few a second.
            self._refused[uid] = (now, refused + 1 if window == now else 1)
            raise _HTTPError(401, "invalid or missing Cove session token", "authentication_error")
        if not _forwarded(request.method, request.target):
            raise _HTTPError(404, _NOT_FORWARDED, "not_found_error")
        request.session_id = session_id
        if chunked is not None and (length is not None or chunked.lower() != "chunked"):
            raise _HTTPError(400, "unsupported transfer-encoding")
        if length is not None and (not length.isdigit() or len(length) > 12):
            raise _HTTPError(400, "malformed content-length")
        size = MAX_BODY if chunked is not None else int(length or 0)
        if size > MAX_BODY:
            raise _HTTPError(413, "request body too large")
        self._reserve(request, uid, size)
        try:
            if (request.header("expect") or "").lower() == "100-continue":
                writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            async with asyncio.timeout(BODY_TIMEOUT):
                if chunked is not None:
                    request.body = await _read_chunked(reader)
                elif size:
                    request.body = await reader.readexactly(size)
        except BaseException:
            self._release(uid, request.reserved)
            raise
        return request

    def _token(self, request: _Request) -> str | None:
        key = request.header("x-api-key")
        if key:
            return key
        auth = request.header("authorization") or ""
        return auth[7:].strip() if auth.lower().startswith("bearer ") else None

    async def _handle(self, request: _Request, client: asyncio.StreamWriter) -> bool:
        """Answer one request; False when the client connection cannot carry another."""
        session_id = request.session_id
        head = self._upstream_head(request)
        try:
            connection, status, headers, raw_head = await self._exchange(head + request.body)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, _HTTPError) as exc:
            message = f"model upstream unreachable: {type(exc).__name__}: {exc}"
            client.write(_error_bytes(502, "api_error", message, close=True))
            await client.drain()
            return False
        return await self._relay(request, session_id, connection, status, headers, raw_head, client)

    def _upstream_head(self, request: _Request) -> bytes:
        lines = [f"{request.method} {self._base_path}{request.target} HTTP/1.1\r\nhost: {self._netloc}\r\n"]
        lines += [f"{k}: {v}\r\n" for k, v in request.headers if _passed_on(k.lower())]
        lines.append(self._credentials)
        lines.append("accept-encoding: identity\r\n")  # metering reads the bytes as they pass
        if request.body or request.method == "POST":
            lines.append(f"content-length: {len(request.body)}\r\n")
        lines.append("\r\n")
        return "".join(lines).encode("latin-1")

    async def _exchange(self, message: bytes) -> tuple[_Connection, int, list[tuple[str, str]], str]:
        """Send a request, read the response head: on a kept-alive connection, or a new one if the upstream had
        closed the idle one (nothing of the request was processed then, so sending it again is safe)."""
        while True:
            reused = bool(self._idle)
            connection = self._idle.pop() if reused else await self._open()
            reader, writer = connection
            try:
                writer.write(message)
                async with asyncio.timeout(RESPONSE_TIMEOUT):
                    raw = await reader.readuntil(b"\r\n\r\n")
            except (ConnectionError, asyncio.IncompleteReadError) as error:
                writer.close()
                if reused and not getattr(error, "partial", b""):
                    continue
                raise
            except BaseException:
                writer.close()
                raise
            start, headers = _parse_head(raw)
            parts = start.split(" ", 2)
            if len(parts) < 2 or not parts[1].isdigit():
                writer.close()
                raise _HTTPError(502, "malformed status line from the upstream")
            return connection, int(parts[1]), headers, start

    async def _open(self) -> _Connection:
        # Loopback and TLS stream transports set TCP_NODELAY themselves: no Nagle wait between head and body.
        return await asyncio.wait_for(
            asyncio.open_connection(
                self._host, self._port, ssl=self._ssl, server_hostname=self._host if self._tls else None
            ),
            CONNECT_TIMEOUT,
        )

    async def _relay(
        self,
        request: _Request,
        session_id: str,
        connection: _Connection,
        status: int,
        headers: list[tuple[str, str]],
        start: str,
        client: asyncio.StreamWriter,
    ) -> bool:
        reader, upstream = connection
        values = {k.lower(): v for k, v in headers}
        reusable = "close" not in values.get("connection", "").lower()
        meter = _Meter(values.get("content-type", "").startswith("text/event-stream"))
        no_body = request.method == "HEAD" or status in (204, 304) or status < 200
        chunked = not no_body and "chunked" in values.get("transfer-encoding", "").lower()
        length = values.get("content-length")
        until_eof = not no_body and not chunked and length is None
        keep_client = request.keep_alive and not until_eof
        lines = [start + "\r\n"]
        lines += [f"{k}: {v}\r\n" for k, v in headers if k.lower() not in ("connection", "keep-alive")]
        lines.append("\r\n" if keep_client else "connection: close\r\n\r\n")
        complete = False
        try:
            client.write("".join(lines).encode("latin-1"))
            if no_body:
                pass
            elif chunked:
                reusable = await self._relay_chunked(reader, client, meter) and reusable
            else:
                remaining = int(length) if length is not None and length.isdigit() else -1
                while remaining != 0:
                    data = await reader.read(_CHUNK if remaining < 0 else min(_CHUNK, remaining))
                    if not data:
                        if remaining > 0:
                            raise asyncio.IncompleteReadError(b"", remaining)
                        break
                    remaining -= len(data) if remaining > 0 else 0
                    client.write(data)  # on its way before the meter looks at it
                    meter.feed(data)
                    await client.drain()
            await client.drain()
            complete = True
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, RuntimeError):
            # Either side broke off mid-response (an interrupted turn closes the CLI's connection; uvloop says so
            # with a RuntimeError on the next write): neither connection can be trusted with another request.
            keep_client = False
        finally:
            if complete and reusable and not until_eof:
                self._idle.append(connection)
            else:
                upstream.close()
            usage = meter.finish()
            if any(usage.values()):
                # Off the response path: the client has its answer; metering must not make it wait.
                task = asyncio.create_task(self._record_usage(session_id, usage))
                self._pending.add(task)
                task.add_done_callback(self._pending.discard)
        return keep_client

    @staticmethod
    async def _relay_chunked(reader: asyncio.StreamReader, client: asyncio.StreamWriter, meter: _Meter) -> bool:
        """Pass the body through as framed, as it comes: what the upstream has sent by the time it is read goes on
        in one write (a burst of SSE events is one write to the CLI, not one per event; each still reaches it as
        soon as the upstream sent it). False when the upstream sent bytes past the body's end (the connection is
        not reused: nothing was asked of it)."""
        body = ChunkedBody()
        while not body.done:
            data = await reader.read(_CHUNK)
            if not data:
                raise asyncio.IncompleteReadError(b"", None)
            taken, payload = body.feed(data)
            client.write(data[:taken])  # on its way before the meter looks at it
            meter.feed(payload)
            if taken < len(data):
                return False
            await client.drain()
        return True
