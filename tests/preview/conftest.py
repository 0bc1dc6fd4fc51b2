"""A sandbox with the echo app (``echo_app.py``) listening on a port, and helpers to reach its preview."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from cove import AsyncSandbox, PortInfo

APP_PORT = 8000
GUEST_PYTHON = "/opt/cove/venv/bin/python"  # Cove's venv, bound into every sandbox: it has uvicorn
ECHO_APP = (Path(__file__).parent / "echo_app.py").read_text()
TOKEN_HEADER = "X-Cove-Preview-Token"


async def start_echo_app(sandbox: AsyncSandbox, port: int = APP_PORT) -> None:
    await sandbox.files.write("/workspace/echo_app.py", ECHO_APP)
    await sandbox.exec.background(
        f"{GUEST_PYTHON} -m uvicorn echo_app:app --port {port} --lifespan off --log-level warning", cwd="/workspace"
    )


def ws_url(preview: PortInfo, path: str = "ws") -> str:
    """The preview's URL as a WebSocket's, with ``path`` below it."""
    return preview.url.replace("http://", "ws://", 1) + path


async def until_listening(preview: PortInfo, within: float = 30) -> None:
    """Until the app behind ``preview`` answers (a preview answers 502 while nothing listens)."""
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(headers={TOKEN_HEADER: preview.token}) as client:
        while (await client.get(preview.url + "echo")).status_code == 502:
            assert time.monotonic() < deadline, f"nothing listened behind {preview.url} within {within} s"
            await asyncio.sleep(0.1)


@pytest.fixture
async def app_sandbox(connection: dict[str, str]) -> AsyncIterator[AsyncSandbox]:
    """A sandbox with no network at all, the echo app listening in it."""
    async with await AsyncSandbox.create(network="none", **connection) as sandbox:
        await start_echo_app(sandbox)
        yield sandbox


@pytest.fixture
async def preview(app_sandbox: AsyncSandbox) -> PortInfo:
    """The echo app's port, exposed (private) and answering."""
    exposed = await app_sandbox.ports.expose(APP_PORT)
    await until_listening(exposed)
    return exposed
