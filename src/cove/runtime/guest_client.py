"""The server's side of the supervisor socket: one short connection per request, or per stream.

Connections are cheap on a unix socket, and one per stream means no multiplexing to get wrong: a dropped HTTP or
WebSocket client closes exactly its own connection and nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cove.guest.protocol import (
    CHUNK,
    DATA,
    JSON,
    STDERR,
    STDIN,
    STDOUT,
    Frame,
    ProtocolError,
    encode_data,
    encode_json,
    frame_size,
    read_frame,
)
from cove.runtime.safe_open import passed_tcp_stream, peer_uid
from cove.runtime.unix import connect_unix

# How long the supervisor may take to answer a request (not to stream a process's output: that takes as long as
# the process). A supervisor that stops answering costs its own sandbox's request, never a stalled server.
REPLY_TIMEOUT = 60.0
# A port's connection: the supervisor's connect takes at most 10 s (``cove.guest.ports``); its reply is one small
# frame carrying the descriptor.
PORT_REPLY_TIMEOUT = 15.0
MAX_PORT_REPLY = 4096
_LOOPBACK = ("127.0.0.1", "::1")


async def _first_reply(reader: asyncio.StreamReader) -> Any:
    try:
        async with asyncio.timeout(REPLY_TIMEOUT):
            frame = await read_frame(reader)
    except TimeoutError as exc:
        raise GuestUnavailable(f"the sandbox's supervisor did not answer within {REPLY_TIMEOUT:.0f} s") from exc
    return _result(frame)


async def _drained(writer: asyncio.StreamWriter) -> None:
    try:
        async with asyncio.timeout(REPLY_TIMEOUT):
            await writer.drain()
    except TimeoutError as exc:
        raise GuestUnavailable(f"the sandbox's supervisor stopped reading for {REPLY_TIMEOUT:.0f} s") from exc


class GuestError(Exception):
    """The supervisor refused a request; ``code`` is machine-readable, ``message`` meant for the user."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class GuestUnavailable(Exception):
    """The sandbox's supervisor cannot be reached (the sandbox has stopped, or not started yet)."""


@dataclass(frozen=True)
class Output:
    stream: str
    offset: int
    data: bytes


@dataclass(frozen=True)
class Exited:
    info: dict[str, Any]


StreamItem = Output | Exited


def _result(frame: Frame | None) -> Any:
    if frame is None or frame.kind != JSON:
        raise GuestUnavailable("the sandbox closed the connection")
    reply = frame.json()
    if not reply.get("ok"):
        error = reply.get("error") or {}
        raise GuestError(str(error.get("code", "guest_error")), str(error.get("message", "request failed")))
    return reply.get("result")


class ProcessStream:
    """A live view of one process: its output from given offsets, stdin, signals, and its exit."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, info: dict[str, Any]) -> None:
        self._reader = reader
        self._writer = writer
        self.info = info

    async def __aiter__(self) -> AsyncIterator[StreamItem]:
        while True:
            frame = await read_frame(self._reader)
            if frame is None:
                raise GuestUnavailable("the sandbox stopped while the process was streaming")
            if frame.kind in (STDOUT, STDERR):
                offset, data = frame.output()
                yield Output("stdout" if frame.kind == STDOUT else "stderr", offset, data)
            elif frame.kind == JSON:
                message = frame.json()
                if message.get("event") == "exit":
                    yield Exited(message)
                    return

    async def send_stdin(self, data: bytes) -> None:
        for start in range(0, len(data), CHUNK):
            self._writer.write(encode_data(STDIN, data[start : start + CHUNK]))
        await self._writer.drain()

    async def close_stdin(self) -> None:
        self._writer.write(encode_json({"op": "stdin_close"}))
        await self._writer.drain()

    async def signal(self, signum: int) -> None:
        self._writer.write(encode_json({"op": "signal", "signal": signum}))
        await self._writer.drain()

    async def resize(self, cols: int, rows: int) -> None:
        """A terminal's new size (a ``pty_attach`` stream)."""
        self._writer.write(encode_json({"op": "resize", "cols": cols, "rows": rows}))
        await self._writer.drain()

    def close(self) -> None:
        self._writer.close()


class GuestClient:
    """The road to one sandbox's supervisor. ``uid`` is the sandbox's: the process listening on the socket must
    run as it (the socket lives where the sandbox cannot reach, and its peer is checked all the same)."""

    def __init__(self, socket_path: Path, uid: int) -> None:
        self.socket_path = socket_path
        self.uid = uid

    async def _channel(self) -> socket.socket:
        try:
            channel = await connect_unix(self.socket_path)
        except OSError as exc:
            raise GuestUnavailable(f"sandbox supervisor unreachable at {self.socket_path}: {exc}") from exc
        peer = peer_uid(channel)
        if peer != self.uid:
            channel.close()
            raise GuestUnavailable(f"{self.socket_path} is served by uid {peer}, not by the sandbox's supervisor")
        return channel

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_unix_connection(sock=await self._channel(), limit=CHUNK * 4)

    async def request(self, op: str, **fields: Any) -> Any:
        reader, writer = await self._open()
        try:
            writer.write(encode_json({"op": op, **fields}))
            await writer.drain()
            return await _first_reply(reader)
        except (ConnectionError, ProtocolError) as exc:
            raise GuestUnavailable(str(exc)) from exc
        finally:
            writer.close()

    @contextlib.asynccontextmanager
    async def process(self, op: str, **fields: Any) -> AsyncIterator[ProcessStream]:
        """``exec`` a new process, ``attach`` to one or ``pty_attach`` to a terminal; the stream is closed when the
        block ends."""
        reader, writer = await self._open()
        try:
            writer.write(encode_json({"op": op, **fields}))
            await writer.drain()
            stream = ProcessStream(reader, writer, await _first_reply(reader))
            yield stream
        except (ConnectionError, ProtocolError) as exc:
            raise GuestUnavailable(str(exc)) from exc
        finally:
            writer.close()

    @contextlib.asynccontextmanager
    async def read_file(self, path: str) -> AsyncIterator[tuple[int, AsyncIterator[bytes]]]:
        """Yield the file's size and an iterator over its chunks — the file is never held whole."""
        reader, writer = await self._open()

        async def chunks() -> AsyncIterator[bytes]:
            while True:
                frame = await read_frame(reader)
                if frame is None:
                    raise GuestUnavailable("the sandbox closed the connection mid-file")
                if frame.kind == DATA:
                    yield frame.payload
                elif frame.json().get("event") == "eof":
                    return

        try:
            writer.write(encode_json({"op": "read", "path": path}))
            await writer.drain()
            size = int((await _first_reply(reader))["size"])
            yield size, chunks()
        finally:
            writer.close()

    async def write_file(self, path: str, chunks: AsyncIterator[bytes], mode: int | None = None) -> dict[str, Any]:
        reader, writer = await self._open()
        try:
            writer.write(encode_json({"op": "write", "path": path, "mode": mode}))
            await writer.drain()
            await _first_reply(reader)
            async for chunk in chunks:
                for start in range(0, len(chunk), CHUNK):
                    writer.write(encode_data(DATA, chunk[start : start + CHUNK]))
                    await _drained(writer)
            writer.write(encode_json({"op": "end"}))
            await writer.drain()
            result: dict[str, Any] = await _first_reply(reader)
            return result
        except (ConnectionError, ProtocolError) as exc:
            raise GuestUnavailable(str(exc)) from exc
        finally:
            writer.close()

    async def open_port(self, port: int) -> socket.socket:
        """A TCP connection to ``port`` on the sandbox's loopback: the supervisor connects and passes the socket
        here (``cove.guest.ports``). What arrives is the sandbox's word, so it is checked: one descriptor, a
        connected TCP stream socket, its peer the sandbox's loopback at ``port``; the reply is bounded in size
        and time. ``GuestError`` ``port_not_listening`` when nothing accepts the connection."""
        channel = await self._channel()
        try:
            channel.send(encode_json({"op": "connect", "port": port}))  # a few bytes on a fresh socket: sent whole
            async with asyncio.timeout(PORT_REPLY_TIMEOUT):
                reply, passed = await _reply_and_descriptor(channel)
        except TimeoutError as exc:
            message = f"the sandbox's supervisor did not answer within {PORT_REPLY_TIMEOUT:.0f} s"
            raise GuestUnavailable(message) from exc
        except (OSError, ProtocolError) as exc:
            raise GuestUnavailable(f"the sandbox's supervisor broke off: {exc}") from exc
        finally:
            channel.close()
        try:
            reader = asyncio.StreamReader()
            reader.feed_data(reply)
            reader.feed_eof()
            _result(await read_frame(reader))
        except BaseException as exc:
            if passed is not None:
                os.close(passed)
            if isinstance(exc, ProtocolError | ValueError):
                raise GuestUnavailable(f"the sandbox's supervisor answered nonsense: {exc}") from exc
            raise
        connection = passed_tcp_stream(passed) if passed is not None else None
        if connection is None:
            raise GuestUnavailable("the sandbox's supervisor passed no connected TCP socket")
        peer = connection.getpeername()
        if peer[0] not in _LOOPBACK or peer[1] != port:
            connection.close()
            message = f"the sandbox's supervisor passed a connection to {peer[0]}:{peer[1]}, not to port {port}"
            raise GuestUnavailable(message)
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return connection


async def _reply_and_descriptor(channel: socket.socket) -> tuple[bytes, int | None]:
    """The supervisor's reply frame (at most ``MAX_PORT_REPLY`` bytes), and the first descriptor passed with it:
    any other is closed (the kernel closes those beyond one per message, as the room for one is all
    ``recvmsg`` is given)."""
    data = bytearray()
    passed: int | None = None
    try:
        while (size := frame_size(data)) is None or len(data) < size:
            if size is not None and size > MAX_PORT_REPLY:
                raise ProtocolError(f"the reply to a port connection is longer than {MAX_PORT_REPLY} bytes")
            await _readable(channel.fileno())
            try:
                chunk, fds, _flags, _address = socket.recv_fds(channel, MAX_PORT_REPLY, 1)
            except BlockingIOError:
                continue
            for fd in fds:
                if passed is None:
                    passed = fd
                else:
                    os.close(fd)
            if not chunk:
                raise ProtocolError("the supervisor closed the connection before it answered")
            data += chunk
        return bytes(data[:size]), passed
    except BaseException:
        if passed is not None:
            os.close(passed)
        raise


async def _readable(fd: int) -> None:
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(fd, wake)
    try:
        await ready
    finally:
        loop.remove_reader(fd)
