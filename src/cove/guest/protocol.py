"""Framing for the unix socket between the Cove server and a sandbox's supervisor.

A frame is ``kind (1 byte) | length (4 bytes, big endian) | payload``. JSON frames carry requests, replies and
notices; data frames carry raw bytes (process output, file contents) so that a gigabyte never has to be encoded
or held whole. Both sides of the socket import this module, and it imports nothing but the standard library:
it runs inside the sandbox too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
from dataclasses import dataclass
from typing import Any

JSON = b"J"
STDOUT = b"O"
STDERR = b"E"
STDIN = b"I"
DATA = b"D"

_HEADER = struct.Struct(">cI")
_OFFSET = struct.Struct(">Q")
MAX_FRAME = 16 * 1024 * 1024
CHUNK = 64 * 1024


class ProtocolError(Exception):
    """The peer sent something that is not a frame of this protocol."""


@dataclass(frozen=True, slots=True)
class Frame:
    kind: bytes
    payload: bytes

    def json(self) -> dict[str, Any]:
        value = json.loads(self.payload)
        if not isinstance(value, dict):
            raise ProtocolError("JSON frame is not an object")
        return value

    def output(self) -> tuple[int, bytes]:
        """Split an output frame into the byte offset of its first byte and its data."""
        (offset,) = _OFFSET.unpack_from(self.payload)
        return offset, self.payload[_OFFSET.size :]


def encode_json(message: dict[str, Any]) -> bytes:
    payload = json.dumps(message, separators=(",", ":")).encode()
    return _HEADER.pack(JSON, len(payload)) + payload


def encode_data(kind: bytes, data: bytes) -> bytes:
    return _HEADER.pack(kind, len(data)) + data


def encode_output(kind: bytes, offset: int, data: bytes) -> bytes:
    return _HEADER.pack(kind, len(data) + _OFFSET.size) + _OFFSET.pack(offset) + data


def frame_size(data: bytes | bytearray) -> int | None:
    """The size of the whole frame ``data`` begins with, once its header is there (for a reader that cannot use
    ``read_frame``: the supervisor's reply that carries a descriptor is read with ``recvmsg``)."""
    if len(data) < _HEADER.size:
        return None
    return _HEADER.size + int(_HEADER.unpack_from(data)[1])


async def read_frame(reader: asyncio.StreamReader) -> Frame | None:
    """Read one frame; ``None`` on a clean end of stream between frames."""
    try:
        header = await reader.readexactly(_HEADER.size)
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise ProtocolError("truncated frame header") from exc
        return None
    kind, length = _HEADER.unpack(header)
    if length > MAX_FRAME:
        raise ProtocolError(f"frame of {length} bytes exceeds the limit")
    try:
        payload = await reader.readexactly(length)
    except asyncio.IncompleteReadError as exc:
        raise ProtocolError("truncated frame payload") from exc
    return Frame(kind, payload)


async def drain_until_closed(reader: asyncio.StreamReader, within: float) -> None:
    """Read and drop what the client still sends, until it closes (or ``within`` seconds pass). A stream's last
    frame is followed by this rather than by closing at once: the client may still be writing (input typed before
    the end reached it), and a socket closed with unread data resets the connection, losing the frames the client
    had received but not yet read — the last ones, which say how the stream ended."""
    with contextlib.suppress(TimeoutError, ConnectionError, ProtocolError, ValueError):
        async with asyncio.timeout(within):
            while await read_frame(reader) is not None:
                pass
