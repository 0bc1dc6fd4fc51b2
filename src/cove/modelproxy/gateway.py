"""Running the model proxy: on a unix socket bound into every sandbox, in front of the configured upstream —
the built-in simulator when no key is configured."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx

from cove.modelproxy.proxy import MAX_HEAD, ModelProxy, TokenResolver, Upstream, UsageSink

log = logging.getLogger("cove.modelproxy")
SOCKET_NAME = "model.sock"


class ModelGateway:
    def __init__(self, socket_dir: Path, resolve: TokenResolver, record_usage: UsageSink) -> None:
        self.socket_dir = socket_dir
        self._resolve = resolve
        self._record_usage = record_usage
        self.simulator_url: str | None = None
        self._simulator: subprocess.Popen[bytes] | None = None
        self.upstream: Upstream | None = None
        self._proxy: ModelProxy | None = None
        self._server: asyncio.Server | None = None

    @property
    def socket_path(self) -> Path:
        return self.socket_dir / SOCKET_NAME

    async def start(self) -> None:
        upstream = Upstream.from_env()
        if upstream is None:
            self.simulator_url = await self._start_simulator()
            upstream = Upstream(self.simulator_url)
            log.info("no ANTHROPIC_API_KEY: agents talk to the built-in model simulator at %s", upstream.base_url)
        else:
            log.info("agents talk to %s through the model proxy", upstream.base_url)
        self.upstream = upstream
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        self.socket_dir.chmod(0o755)
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(str(self.socket_path))
        # Sandbox users (each its own uid) must be able to connect; the per-session token is the gate.
        os.chmod(self.socket_path, 0o666)
        sock.listen(128)
        self._proxy = ModelProxy(self._resolve, upstream, self._record_usage)
        self._server = await asyncio.start_unix_server(self._proxy.serve_connection, sock=sock, limit=MAX_HEAD)

    async def _start_simulator(self) -> str:
        """The simulator runs in a process of its own, as a remote model would: sharing the server's event loop
        made every agent turn about 40 ms slower (benchmarks/RESULTS.md). The socket is bound here, so its
        port is known at once, and the child ends with this server, however it ends."""
        sock = socket.create_server(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        command = [sys.executable, "-m", "cove.simulator", "--fd", str(sock.fileno()), "--parent-pid", str(os.getpid())]
        self._simulator = subprocess.Popen(  # noqa: ASYNC220 - fork+exec returns at once
            command, pass_fds=(sock.fileno(),), stdin=subprocess.DEVNULL
        )
        sock.close()
        url = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient() as client:
            for _ in range(200):
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get(url + "/_sim/health", timeout=1)).status_code == 200:
                        return url
                if self._simulator.poll() is not None:
                    break
                await asyncio.sleep(0.05)
        raise RuntimeError("the built-in model simulator did not start")

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        if self._proxy is not None:
            await self._proxy.close()
        if self._simulator is not None:
            self._simulator.terminate()
            await asyncio.to_thread(self._simulator.wait)
