"""Running the server process: ``cove serve``."""

from __future__ import annotations

import logging

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
        ws_max_size=16 * 1024 * 1024,
        # Compressing every event frame cost CPU on both ends for bytes that mostly cross loopback or a LAN,
        # on the cores the agents run on.
        ws_per_message_deflate=False,
        timeout_graceful_shutdown=5,
    )
    for name in ("uvicorn.access", "uvicorn.error"):  # configured by uvicorn.Config, so filtered after it
        logging.getLogger(name).addFilter(RedactSecrets())
    uvicorn.Server(config).run()
