"""Running the model proxy in front of the configured upstream — the built-in simulator when no key is set.

Sandboxes reach it through ``handoff.sock``, in a directory bound into every sandbox: each sandbox's forwarder
(``cove.guest.model_forwarder``) passes the loopback connections its CLI opens through it, as descriptors, and
the proxy serves them as if accepted here — no relay in between. Only TCP stream sockets are taken; anything a
sandbox could pass is no more than a connection it could have made to the proxy itself, and every request on it
still needs a live session's token.
"""

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
HANDOFF_NAME = "handoff.sock"
_MAX_FDS = 16  # descriptors per message; the forwarder sends one


class ModelGateway:
    def __init__(self, socket_dir: Path, resolve: TokenResolver, record_usage: UsageSink) -> None:
        self.socket_dir = socket_dir
        self._resolve = resolve
        self._record_usage = record_usage
        self.simulator_url: str | None = None
        self._simulator: subprocess.Popen[bytes] | None = None
        self.upstream: Upstream | None = None
        self._proxy: ModelProxy | None = None
        self._handoff: socket.socket | None = None
        self._forwarders: set[socket.socket] = set()
        self._passed: set[asyncio.Task[None]] = set()

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
        self._proxy = ModelProxy(self._resolve, upstream, self._record_usage)
        path = self.socket_dir / HANDOFF_NAME
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        self._handoff = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._handoff.bind(str(path))
        # Sandbox users (each its own uid) must be able to connect; the per-session token is the gate.
        os.chmod(path, 0o666)
        self._handoff.listen(128)
        self._handoff.setblocking(False)
        asyncio.get_running_loop().add_reader(self._handoff.fileno(), self._accept_forwarders)

    def _accept_forwarders(self) -> None:
        assert self._handoff is not None
        while True:
            try:
                channel, _address = self._handoff.accept()
            except BlockingIOError:
                return
            channel.setblocking(False)
            self._forwarders.add(channel)
            asyncio.get_running_loop().add_reader(channel.fileno(), self._receive_passed, channel)

    def _receive_passed(self, channel: socket.socket) -> None:
        """A forwarder's message: the client connections to serve (plain sockets, for the ancillary data)."""
        try:
            data, fds, _flags, _address = socket.recv_fds(channel, 64, _MAX_FDS)
        except BlockingIOError:
            return
        except OSError:
            data, fds = b"", []
        for fd in fds:
            self._serve_passed(fd)
        if not data and not fds:  # the forwarder went away
            asyncio.get_running_loop().remove_reader(channel.fileno())
            self._forwarders.discard(channel)
            channel.close()

    def _serve_passed(self, fd: int) -> None:
        try:
            client = socket.socket(fileno=fd)
        except OSError:
            os.close(fd)
            return
        if client.type != socket.SOCK_STREAM or client.family not in (socket.AF_INET, socket.AF_INET6):
            client.close()
            return
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        task = asyncio.create_task(self._serve_socket(client))
        self._passed.add(task)
        task.add_done_callback(self._passed.discard)

    async def _serve_socket(self, client: socket.socket) -> None:
        assert self._proxy is not None
        try:
            reader, writer = await asyncio.open_connection(sock=client, limit=MAX_HEAD)
        except OSError:
            client.close()
            return
        await self._proxy.serve_connection(reader, writer)

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
        loop = asyncio.get_running_loop()
        for channel in [*self._forwarders, *([self._handoff] if self._handoff is not None else [])]:
            loop.remove_reader(channel.fileno())
            channel.close()
        self._forwarders.clear()
        for task in self._passed:
            task.cancel()
        if self._proxy is not None:
            await self._proxy.close()
        if self._simulator is not None:
            self._simulator.terminate()
            await asyncio.to_thread(self._simulator.wait)
