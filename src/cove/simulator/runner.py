"""Running the simulator: blocking (``python -m cove.simulator``) or inside an existing event loop.

The Cove server starts one in-process on a free port when no real Anthropic key is configured; port 0 is
therefore supported and the bound port is read back from the listening socket.
"""

from __future__ import annotations

import asyncio
import socket
from typing import NamedTuple

import uvicorn
from fastapi import FastAPI

from cove.embedded import start_embedded
from cove.simulator.app import create_app


class BackgroundSimulator(NamedTuple):
    """A simulator serving in a task of the current loop; unpacks as ``(server, task)``."""

    server: uvicorn.Server
    task: asyncio.Task[None]

    @property
    def port(self) -> int:
        return bound_port(self.server)

    @property
    def base_url(self) -> str:
        """What to put in ``ANTHROPIC_BASE_URL``."""
        host = self.server.config.host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        elif ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    async def stop(self) -> None:
        """Ask the server to exit and wait for it (open streams get a short grace period)."""
        self.server.should_exit = True
        await self.task


def bound_port(server: uvicorn.Server) -> int:
    """The port a started server actually listens on (useful when it was asked for port 0)."""
    for listener in server.servers:
        for sock in listener.sockets:
            port: int = sock.getsockname()[1]
            return port
    raise RuntimeError("the simulator is not listening yet")


def _config(app: FastAPI, host: str, port: int) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=2,
    )


def serve(host: str = "127.0.0.1", port: int = 7431, app: FastAPI | None = None, fd: int | None = None) -> None:
    """Serve the simulator until interrupted (blocking); on ``fd``, a socket already bound by the caller."""
    server = uvicorn.Server(_config(app or create_app(), host, port))
    if fd is None:
        server.run()
        return
    # Not uvicorn's own fd option: it takes every fd for a unix socket, so asyncio skipped TCP_NODELAY on
    # the connections and Nagle's algorithm held each reply's body for the client's delayed ACK (40 ms).
    server.run(sockets=[socket.socket(fileno=fd)])


def _listen(host: str, port: int) -> socket.socket:
    """Bind here rather than in uvicorn, whose bind failure is a ``sys.exit`` that would take the host
    process's event loop down with it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family)


async def run_in_background(host: str = "127.0.0.1", port: int = 0, app: FastAPI | None = None) -> BackgroundSimulator:
    """Start a simulator in the running loop and return once it accepts connections.

    Returns ``(server, task)`` as a :class:`BackgroundSimulator`, whose ``port``/``base_url`` tell where it
    listens and whose ``stop()`` shuts it down. Raises ``OSError`` if the address cannot be bound.
    """
    sock = _listen(host, port)
    server, task = await start_embedded(app or create_app(), sock, name=f"cove-simulator-{host}:{port}")
    return BackgroundSimulator(server, task)
