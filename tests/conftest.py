"""Real servers for real tests: each xdist worker runs its own ``cove serve`` on a free port and home."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cove import AsyncSandbox
from cove.sdk import SandboxInfo
from cove.testing import ServerProcess, free_port

__all__ = ["ROOT", "CoveServer", "Tenant", "free_port", "new_tenant", "peak_rss", "serving", "supervisor_pid", "until"]

ROOT = Path(__file__).resolve().parent.parent


class CoveServer(ServerProcess):
    """The test suite's name for a real server process."""


@contextlib.contextmanager
def serving(home: Path, env: dict[str, str] | None = None, args: list[str] | None = None) -> Iterator[CoveServer]:
    """A real server (with ``env`` added to its environment, ``args`` to ``cove serve``) while the block runs; then
    its sandboxes are killed, it is stopped, and its log must show that nothing failed unseen (a task's exception,
    say)."""
    instance = CoveServer(home, extra_env=env or {}, extra_args=args or [])
    instance.start()
    try:
        yield instance
    finally:
        try:
            instance.kill_all_sandboxes()
        finally:
            instance.kill(signal.SIGTERM)
    log = instance.log_path.read_text(errors="replace")
    assert "Traceback" not in log, f"the server logged an unhandled error; see {instance.log_path}"


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CoveServer]:
    with serving(tmp_path_factory.mktemp("cove") / "home") as instance:
        yield instance


@pytest.fixture
def connection(server: CoveServer) -> dict[str, str]:
    """Keyword arguments that point an SDK call at the test server."""
    return {"url": server.url, "api_key": server.api_key}


@dataclass(frozen=True)
class Tenant:
    """A tenant of a test server: its key's id (the tenant's id) and the key's secret."""

    id: str
    key: str

    def connection(self, server: CoveServer) -> dict[str, str]:
        """Keyword arguments that point an SDK call at ``server`` as this tenant."""
        return {"url": server.url, "api_key": self.key}


def new_tenant(server: CoveServer, name: str = "tenant", quotas: dict[str, Any] | None = None) -> Tenant:
    """A tenant's key, made with the admin key (the server's default quotas, but ``quotas``)."""
    with server.http() as admin:
        reply = admin.post("/v1/keys", json={"name": name, "quotas": quotas})
    assert reply.status_code == 201, reply.text
    return Tenant(reply.json()["id"], reply.json()["key"])


async def until(sandbox: AsyncSandbox, condition: Callable[[SandboxInfo], bool], within: float = 30) -> SandboxInfo:
    """The sandbox's info once ``condition`` holds. Timeouts and the disk watchdog act server-side on their own
    schedule and a sandbox's state has no event stream, so its info is re-read until the deadline."""
    deadline = time.monotonic() + within
    while not condition(info := await sandbox.refresh()):
        assert time.monotonic() < deadline, f"condition not reached in {within}s: {info}"
        await asyncio.sleep(0.1)
    return info


def supervisor_pid(sandbox_id: str) -> int | None:
    """The host pid of this sandbox's supervisor, if it runs (found by its environment)."""
    needle = f"COVE_SANDBOX_ID={sandbox_id}".encode()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if needle in (proc / "environ").read_bytes() and b"cove.guest" in (proc / "cmdline").read_bytes():
                return int(proc.name)
        except OSError:
            continue
    return None


@dataclass
class Rss:
    before: int
    peak: int


def _rss(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1]) * 1024


@contextlib.asynccontextmanager
async def peak_rss(server: CoveServer) -> AsyncIterator[Rss]:
    """The server's resident memory before the block and at its highest during it (sampled every 10 ms on the
    test's event loop, which the block must leave free: it awaits what it measures)."""
    assert server.process is not None
    pid = server.process.pid
    rss = Rss(_rss(pid), _rss(pid))

    async def sample() -> None:
        while True:
            rss.peak = max(rss.peak, _rss(pid))
            await asyncio.sleep(0.01)

    sampler = asyncio.create_task(sample())
    try:
        yield rss
    finally:
        sampler.cancel()
