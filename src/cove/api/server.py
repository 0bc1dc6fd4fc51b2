"""Running the server process: ``cove serve``."""

from __future__ import annotations

import logging
import socket

import uvicorn

from cove.api.app import create_app
from cove.api.request_limits import BoundedHttpToolsProtocol, RedactSecrets
from cove.config import ServerSettings


def serve(settings: ServerSettings) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # the model proxy's every upstream request is noise
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        http=BoundedHttpToolsProtocol,
        log_level="info",
        access_log=settings.access_log,
        ws_max_size=16 * 1024 * 1024,
        # Compressing every event frame cost CPU on both ends for bytes that mostly cross loopback or a LAN,
        # on the cores the agents run on.
        ws_per_message_deflate=False,
        timeout_graceful_shutdown=5,
    )
    for name in ("uvicorn.access", "uvicorn.error"):  # configured by uvicorn.Config, so filtered after it
        logging.getLogger(name).addFilter(RedactSecrets())
    uvicorn.Server(config).run(sockets=[_listening(settings)])


def _listening(settings: ServerSettings) -> socket.socket:
    """The server's socket, bound before anything starts: a second ``cove serve`` on a busy port stops here,
    before it recovers sandboxes and drains pools that belong to the server already running."""
    listener = socket.socket(socket.AF_INET6 if ":" in settings.host else socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((settings.host, settings.port))
    except OSError as exc:
        listener.close()
        raise SystemExit(
            f"cove serve: cannot listen on {settings.host}:{settings.port} ({exc.strerror}). If a Cove server is "
            "running there already, use it (`cove sandbox ls`); otherwise pick another --port."
        ) from None
    return listener
