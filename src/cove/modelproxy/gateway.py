"""Running the model proxy in front of the configured upstream — the built-in simulator when no key is set.

Sandboxes reach it through ``handoff.sock``, in a directory bound into every sandbox: each sandbox's forwarder
(``cove.guest.model_forwarder``) passes the loopback connections its CLI opens through it, as descriptors, and
the proxy serves them as if accepted here — no relay in between.

The socket is shared by every sandbox and everything on it is hostile, so each channel is tied to its peer's uid
(``SO_PEERCRED``: each sandbox runs as a uid of its own) and bounded: a few channels per uid, one descriptor per
message (the kernel closes any more a message carries), a bounded number of connections served per uid at once,
and only connected TCP stream sockets are taken. Each connection's requests need a live session's token issued
to that same uid's sandbox, so a token copied into another sandbox opens nothing there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import subprocess
import sys
from collections import Counter
from pathlib import Path

import httpx

from cove.modelproxy.proxy import MAX_HEAD, ModelProxy, TokenResolver, Upstream, UsageSink
from cove.runtime.safe_open import passed_tcp_stream, peer_uid

log = logging.getLogger("cove.modelproxy")
HANDOFF_NAME = "handoff.sock"
MAX_CHANNELS_PER_PEER = 4  # the forwarder keeps one (and reconnects once after a server restart)
MAX_CONNECTIONS_PER_PEER = 64  # the CLI keeps a few kept-alive connections


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
        self._forwarders: dict[socket.socket, int] = {}  # channel -> its peer's uid
        self._channels: Counter[int] = Counter()  # open channels per uid
        self._serving: Counter[int] = Counter()  # connections being served per uid
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
            uid = peer_uid(channel)
            if self._channels[uid] >= MAX_CHANNELS_PER_PEER:
                channel.close()
                continue
            channel.setblocking(False)
            self._forwarders[channel] = uid
            self._channels[uid] += 1
            asyncio.get_running_loop().add_reader(channel.fileno(), self._receive_passed, channel)

    def _receive_passed(self, channel: socket.socket) -> None:
        """A forwarder's message: one client connection to serve. A message carrying more descriptors has the
        rest closed by the kernel (``recvmsg`` with room for one)."""
        try:
            data, fds, _flags, _address = socket.recv_fds(channel, 64, 1)
        except BlockingIOError:
            return
        except OSError:
            data, fds = b"", []
        for fd in fds:
            self._serve_passed(fd, self._forwarders[channel])
        if not data and not fds:  # the forwarder went away
            self._close_channel(channel)

    def _close_channel(self, channel: socket.socket) -> None:
        asyncio.get_running_loop().remove_reader(channel.fileno())
        uid = self._forwarders.pop(channel)
        self._channels[uid] -= 1
        if not self._channels[uid]:
            del self._channels[uid]
        channel.close()

    def _serve_passed(self, fd: int, uid: int) -> None:
        client = passed_tcp_stream(fd)
        if client is None:
            return
        if self._serving[uid] >= MAX_CONNECTIONS_PER_PEER:
            client.close()
            return
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._serving[uid] += 1
        task = asyncio.create_task(self._serve_socket(client, uid))
        self._passed.add(task)
        task.add_done_callback(self._passed.discard)

    async def _serve_socket(self, client: socket.socket, uid: int) -> None:
        assert self._proxy is not None
        try:
            reader, writer = await asyncio.open_connection(sock=client, limit=MAX_HEAD)
        except OSError:
            client.close()
            return
        try:
            await self._proxy.serve_connection(reader, writer, uid)
        finally:
            self._serving[uid] -= 1
            if not self._serving[uid]:
                del self._serving[uid]

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
        for channel in list(self._forwarders):
            self._close_channel(channel)
        if self._handoff is not None:
            loop.remove_reader(self._handoff.fileno())
            self._handoff.close()
        for task in self._passed:
            task.cancel()
        if self._proxy is not None:
            await self._proxy.close()
        if self._simulator is not None:
            self._simulator.terminate()
            await asyncio.to_thread(self._simulator.wait)
