"""Inside the sandbox, a loopback TCP port that leads to Cove's model proxy.

A sandbox with no network still needs its agent to reach a model: Cove binds the proxy's unix socket into the
sandbox, and this forwarder gives the Claude Code CLI the plain ``http://127.0.0.1:PORT`` it expects. The port
is chosen by the kernel and written to ``model-port`` for the server to read.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

PROXY_SOCKET = Path("/run/cove-model/model.sock")


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(64 * 1024):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


async def _forward(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
    try:
        proxy_reader, proxy_writer = await asyncio.open_unix_connection(str(PROXY_SOCKET))
    except OSError:
        client_writer.write(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
        with contextlib.suppress(ConnectionError):
            await client_writer.drain()
        client_writer.close()
        return
    await asyncio.gather(_pipe(client_reader, proxy_writer), _pipe(proxy_reader, client_writer))


async def start(port_file: Path) -> asyncio.Server | None:
    """Listen on an ephemeral loopback port when the proxy's socket directory is bound into this sandbox."""
    if not PROXY_SOCKET.parent.is_dir():
        return None
    server = await asyncio.start_server(_forward, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    port_file.write_text(str(port))
    return server
