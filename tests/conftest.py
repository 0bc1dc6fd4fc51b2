"""Real servers for real tests: each xdist worker runs its own ``cove serve`` on a free port and home."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class CoveServer:
    """A ``cove serve`` process; ``restart`` reuses home and port, as an operator would."""

    home: Path
    port: int = field(default_factory=free_port)
    extra_env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_key(self) -> str:
        return (self.home / "admin_key").read_text().strip()

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
        env.update(COVE_HOME=str(self.home), COVE_URL=self.url, **self.extra_env)
        return env

    def start(self) -> None:
        log = (self.home.parent / f"server-{self.port}.log").open("ab")
        self.home.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cove", "serve", "--port", str(self.port)],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"cove serve exited with {self.process.returncode}; see {log.name}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.05)
        raise RuntimeError("cove serve did not become healthy in 30 s")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=30)

    def http(self, *, api_key: str | None = None) -> httpx.Client:
        key = self.api_key if api_key is None else api_key
        headers = {"authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)

    def kill_all_sandboxes(self) -> None:
        with self.http() as client:
            for sandbox in client.get("/v1/sandboxes", params={"state": "running"}).json()["sandboxes"]:
                client.delete(f"/v1/sandboxes/{sandbox['id']}")


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
