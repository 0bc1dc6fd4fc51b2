"""Serving an extra ASGI app inside an already running event loop (the model proxy, the simulator).

uvicorn's own bind failure is a ``sys.exit`` and its signal handlers belong to the host process, so embedded
servers get a socket bound by the caller and leave signals alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Generator
from typing import Any

import uvicorn


class EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to the process it is embedded in."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


async def _serve_guarded(server: uvicorn.Server, sock: socket.socket) -> None:
    try:
        await server.serve(sockets=[sock])
    except SystemExit as exc:  # uvicorn exits on startup failures; keep that inside this task
        raise RuntimeError(f"embedded server stopped: exit status {exc.code}") from None
    finally:
        sock.close()


async def start_embedded(app: Any, sock: socket.socket, *, name: str) -> tuple[uvicorn.Server, asyncio.Task[None]]:
    """Serve ``app`` on an already bound ``sock``; returns once it accepts connections."""
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=2)
    server = EmbeddedServer(config)
    task = asyncio.create_task(_serve_guarded(server, sock), name=name)
    while not server.started:
        if task.done():
            await task
            raise RuntimeError(f"{name} exited during startup")
        await asyncio.sleep(0.01)
    return server, task
