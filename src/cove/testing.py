"""A real ``cove serve`` process on a free port with its own home — for the test suite and the benchmarks,
which both measure the server exactly as users run it."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

# Debian's Chromium, as the Inspector's tests and benchmark drive it through Playwright (never a downloaded
# browser): no sandbox of its own (it needs user namespaces a root process here does not get), and nothing of
# Google's services to reach (this machine's network refuses them, many at a time).
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium() -> str:
    """Where Debian's Chromium is (``make system-deps`` installs it)."""
    path = shutil.which("chromium")
    if path is None:
        raise RuntimeError("Debian's chromium is needed for the Inspector's tests and benchmark: `make system-deps`")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ServerProcess:
    """``start`` again after ``kill`` reuses home and port, as an operator restarting the server would."""

    home: Path
    port: int = field(default_factory=free_port)
    extra_env: dict[str, str] = field(default_factory=dict)
    extra_args: list[str] = field(default_factory=list)  # options of ``cove serve``
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_key(self) -> str:
        return (self.home / "admin_key").read_text().strip()

    @property
    def log_path(self) -> Path:
        return self.home.parent / f"server-{self.port}.log"

    @property
    def env(self) -> dict[str, str]:
        """The server's environment: no model key unless a test gives one, so the simulator is the upstream."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
        env.update(COVE_HOME=str(self.home), COVE_URL=self.url, **self.extra_env)
        return env

    def start(self, timeout: float = 30.0) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "cove", "serve", "--port", str(self.port), *self.extra_args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"cove serve exited with {self.process.returncode}; see {self.log_path}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.05)
        self.kill()  # not left running behind the failure
        raise RuntimeError(f"cove serve did not become healthy in {timeout:.0f} s; see {self.log_path}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)

    def session_journal(self, sandbox_id: str, session_id: str) -> Path:
        """Where a session's runner journals its events: tests and benchmarks grow an idle session's journal to
        make a long session without a model, as the runner would."""
        return self.home / "sandboxes" / sandbox_id / "run" / "agents" / session_id / "events.jsonl"

    def http(self, *, api_key: str | None = None) -> httpx.Client:
        key = self.api_key if api_key is None else api_key
        headers = {"authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)

    def kill_all_sandboxes(self) -> None:
        """Sandboxes outlive their server by design; a test run must not leave any behind. The warm pool is
        drained first (and stops refilling), so a server killed with SIGKILL afterwards leaves none either. The
        admin key sees every tenant's; an address a test made too many failed attempts from waits its turn."""
        with self.http() as client:
            _patiently(client, "DELETE", "/v1/pool")
            running = _patiently(client, "GET", "/v1/sandboxes", params={"state": "running"})
            for sandbox in running.json()["sandboxes"]:
                _patiently(client, "DELETE", f"/v1/sandboxes/{sandbox['id']}")


def _patiently(client: httpx.Client, method: str, path: str, **options: Any) -> httpx.Response:
    """The request, again after ``Retry-After`` while the server limits this address (429)."""
    for _ in range(3):
        reply = client.request(method, path, **options)
        if reply.status_code != 429:
            break
        time.sleep(int(reply.headers.get("retry-after", "1")) + 0.1)
    return reply


@contextlib.contextmanager
def loopback_btrfs(directory: Path, size_bytes: int = 4 << 30) -> Iterator[Path]:
    """A fresh btrfs filesystem on a sparse image under ``directory``, mounted; yields its mount point. Afterwards
    it is unmounted (lazily if something still holds it) and its loop device freed. Needs root and mkfs.btrfs."""
    image, mount_point = directory / "btrfs.img", directory / "btrfs"
    mount_point.mkdir(parents=True)
    with image.open("wb") as sparse:
        sparse.truncate(size_bytes)
    subprocess.run(["mkfs.btrfs", "-q", str(image)], check=True, capture_output=True)
    subprocess.run(["mount", "-o", "loop", str(image), str(mount_point)], check=True, capture_output=True)
    try:
        yield mount_point
    finally:
        if subprocess.run(["umount", str(mount_point)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mount_point)], check=True, capture_output=True)
        # ``mount -o loop`` frees the device with the last unmount; make sure, in case it did not.
        attached = subprocess.run(["losetup", "-j", str(image)], capture_output=True, text=True).stdout
        for line in attached.splitlines():
            subprocess.run(["losetup", "-d", line.split(":", 1)[0]], capture_output=True)
        image.unlink()


@contextlib.contextmanager
def simulator_process(timeout: float = 20.0) -> Iterator[str]:
    """The model simulator in a process of its own, as an external upstream would be; yields its base URL."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "cove.simulator", "--port", str(port)], stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                httpx.get(url + "/_sim/health", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("the simulator did not start") from None
                time.sleep(0.05)
        yield url
    finally:
        process.kill()
        process.wait()
