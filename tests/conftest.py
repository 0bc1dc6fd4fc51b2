"""Real servers for real tests: each xdist worker runs its own ``cove serve`` on a free port and home."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from cove.testing import ServerProcess, free_port

__all__ = ["ROOT", "CoveServer", "free_port"]

ROOT = Path(__file__).resolve().parent.parent


class CoveServer(ServerProcess):
    """The test suite's name for a real server process."""


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CoveServer]:
    instance = CoveServer(tmp_path_factory.mktemp("cove") / "home")
    instance.start()
    yield instance
    instance.kill_all_sandboxes()
    instance.kill(signal.SIGTERM)


@pytest.fixture
def connection(server: CoveServer) -> dict[str, str]:
    """Keyword arguments that point an SDK call at the test server."""
    return {"url": server.url, "api_key": server.api_key}
