"""Preview URLs (issue 12): request latency through a preview next to the same app reached directly, throughput,
and the measurement behind passing the app's connection as a descriptor instead of relaying it.

- **Latency**: one small app (``APP``: HTTP/1.1, kept alive, answers ``ok``) runs on the host and, the same
  script under the same interpreter, in a sandbox with no network, its port published (private: every request
  carries the token). A client on one kept-alive connection times ``GET /`` and ``POST``s straight to the host's
  app and through the preview URL, interleaved in rounds. A body of at most 64 KiB is read first and the request
  goes on a connection kept from an earlier one; a larger body streams on a new connection (it could not be sent
  again if a kept one had been closed): that row pays the supervisor's round trip (connect in the sandbox,
  descriptor passed) on every request. Goal: under 2 ms added at p50.
- **Throughput**: 100 MB downloaded and uploaded through the preview, and straight to the host's app.
- **Design**: the same exchanges over loopback with no Cove at all, once over a direct TCP connection (what the
  passed descriptor gives the server) and once through a byte-copying relay process in between (a unix socket
  to the relay, TCP from it to the app): the least a relay of frames through the supervisor would add.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from benchmarks._harness import Stats, markdown_table, ms, print_table, running_server, temp_dir, verdict
from cove import AsyncSandbox
from cove.testing import free_port

ROUNDS = 20
PER_ROUND = 50
WARMUP = 50
TRANSFER = 100 * 1024 * 1024
ADDED_TARGET_MS = 2.0
TOKEN_HEADER = "X-Cove-Preview-Token"
APP_PORT = 8000
DIRECT_GET = "direct to the host's app: GET"
PREVIEW_GET = "preview: GET (a kept connection to the app)"
DIRECT_SMALL = "direct to the host's app: POST 1 KiB"
PREVIEW_SMALL = "preview: POST 1 KiB (read first, a kept connection)"
DIRECT_LARGE = "direct to the host's app: POST 128 KiB"
PREVIEW_LARGE = "preview: POST 128 KiB (streamed, a new connection: supervisor, descriptor)"
OWN_SOCKET = "the app's socket itself (descriptor passing)"
RELAYED = "through a relay process (unix socket → relay → TCP)"

APP = """
import asyncio, sys
PIECE = b"x" * 262144
async def serve(reader, writer):
    try:
        while True:
            head = (await reader.readuntil(b"\\r\\n\\r\\n")).lower()
            length = 0
            for line in head.split(b"\\r\\n"):
                if line.startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            while length:
                length -= len(await reader.read(min(length, 262144)))
            target = head.split(b" ")[1]
            if target.startswith(b"/bytes/"):
                size = int(target[7:])
                writer.write(b"HTTP/1.1 200 OK\\r\\ncontent-length: %d\\r\\n\\r\\n" % size)
                while size:
                    writer.write(PIECE[: min(size, len(PIECE))])
                    size -= min(size, len(PIECE))
                    await writer.drain()
            else:
                writer.write(b"HTTP/1.1 200 OK\\r\\ncontent-length: 2\\r\\n\\r\\nok")
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()
async def main(port):
    server = await asyncio.start_server(serve, "127.0.0.1", port, backlog=512)
    async with server:
        await server.serve_forever()
asyncio.run(main(int(sys.argv[1])))
"""

RELAY = """
import asyncio, sys
async def pipe(reader, writer):
    try:
        while data := await reader.read(262144):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()
async def serve(reader, writer):
    app_reader, app_writer = await asyncio.open_connection("127.0.0.1", int(sys.argv[2]))
    await asyncio.gather(pipe(reader, app_writer), pipe(app_reader, writer))
async def main(path):
    server = await asyncio.start_unix_server(serve, path)
    async with server:
        await server.serve_forever()
asyncio.run(main(sys.argv[1]))
"""


def system_python() -> str:
    """The interpreter a sandbox sees as ``python3`` (the host's /usr is bound into it): the same on both sides."""
    return "/usr/bin/python3" if Path("/usr/bin/python3").exists() else shutil.which("python3") or sys.executable


@contextmanager
def process(*command: str) -> Iterator[None]:
    started = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield
    finally:
        started.kill()
        started.wait()


def wait_for_port(port: int) -> None:
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


class Client:
    """HTTP/1.1 on one kept-alive connection, as lean as a client can be (httpx costs more than what is timed)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, url: httpx.URL, extra: str) -> None:
        self._reader, self._writer = reader, writer
        self._host, self._path = f"{url.host}:{url.port}", url.raw_path.decode()
        self._extra = extra

    @classmethod
    async def to(cls, url: str, headers: dict[str, str] | None = None, unix: str | None = None) -> Client:
        """A connection to ``url``'s server (or to the unix socket ``unix``, with ``url``'s host and path)."""
        parsed = httpx.URL(url)
        if unix:
            reader, writer = await asyncio.open_unix_connection(unix, limit=1 << 20)
        else:
            reader, writer = await asyncio.open_connection(parsed.host, parsed.port, limit=1 << 20)
        extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
        return cls(reader, writer, parsed, extra)

    async def request(self, method: str = "GET", path: str = "", body: bytes | int = b"") -> int:
        """Send a request (a body of ``int`` bytes is streamed), read the whole answer; the body's size."""
        size = body if isinstance(body, int) else len(body)
        head = f"{method} {self._path}{path} HTTP/1.1\r\nhost: {self._host}\r\n{self._extra}"
        framing = f"content-length: {size}\r\n" if size or method == "POST" else ""
        self._writer.write(f"{head}{framing}\r\n".encode())
        if isinstance(body, int):
            piece = b"y" * 262144
            while body:
                self._writer.write(piece[: min(body, len(piece))])
                body -= min(body, len(piece))
                await self._writer.drain()
        else:
            self._writer.write(body)
        answer = await self._reader.readuntil(b"\r\n\r\n")
        length = next(int(line[15:]) for line in answer.lower().split(b"\r\n") if line.startswith(b"content-length:"))
        received = 0
        while received < length:
            received += len(await self._reader.read(min(262144, length - received)))
        return received

    def close(self) -> None:
        self._writer.close()


async def timed(calls: dict[str, Callable[[], Awaitable[int]]]) -> dict[str, Stats]:
    """Each call ``ROUNDS`` × ``PER_ROUND`` times, the calls interleaved round by round (so that the machine's
    load falls on all alike)."""
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for call in calls.values():
        for _ in range(WARMUP):
            await call()
    for _ in range(ROUNDS):
        for name, call in calls.items():
            for _ in range(PER_ROUND):
                started = time.perf_counter()
                await call()
                samples[name].append(time.perf_counter() - started)
    return {name: Stats.of(values) for name, values in samples.items()}


async def throughput(call: Callable[[], Awaitable[int]]) -> float:
    """MB/s of one transfer of ``TRANSFER`` bytes (the best of three)."""
    best = 0.0
    for _ in range(3):
        started = time.perf_counter()
        await call()
        best = max(best, TRANSFER / (time.perf_counter() - started) / 1e6)
    return best


async def measure_previews(url: str, api_key: str, host_port: int) -> tuple[dict[str, Stats], dict[str, float]]:
    async with await AsyncSandbox.create(network="none", url=url, api_key=api_key) as sandbox:
        await sandbox.files.write("/workspace/app.py", APP)
        await sandbox.exec.background(f"python3 /workspace/app.py {APP_PORT}")
        preview = await sandbox.ports.expose(APP_PORT)
        headers = {TOKEN_HEADER: preview.token}
        async with httpx.AsyncClient(headers=headers) as waiting:
            while (await waiting.get(preview.url)).status_code == 502:
                await asyncio.sleep(0.05)
        direct = await Client.to(f"http://127.0.0.1:{host_port}/")
        through = await Client.to(preview.url, headers)
        try:
            latency = await timed(
                {
                    DIRECT_GET: lambda: direct.request(),
                    PREVIEW_GET: lambda: through.request(),
                    DIRECT_SMALL: lambda: direct.request("POST", body=1024),
                    PREVIEW_SMALL: lambda: through.request("POST", body=1024),
                    DIRECT_LARGE: lambda: direct.request("POST", body=128 * 1024),
                    PREVIEW_LARGE: lambda: through.request("POST", body=128 * 1024),
                }
            )
            rates = {
                "download, direct": await throughput(lambda: direct.request(path=f"bytes/{TRANSFER}")),
                "download, preview": await throughput(lambda: through.request(path=f"bytes/{TRANSFER}")),
                "upload, direct": await throughput(lambda: direct.request("POST", body=TRANSFER)),
                "upload, preview": await throughput(lambda: through.request("POST", body=TRANSFER)),
            }
        finally:
            direct.close()
            through.close()
    return latency, rates


async def measure_design(app_port: int, relay_socket: str) -> tuple[dict[str, Stats], dict[str, float]]:
    direct = await Client.to(f"http://127.0.0.1:{app_port}/")
    relayed = await Client.to(f"http://127.0.0.1:{app_port}/", unix=relay_socket)
    try:
        latency = await timed(
            {
                OWN_SOCKET: lambda: direct.request(),
                RELAYED: lambda: relayed.request(),
            }
        )
        rates = {
            "download, the app's socket": await throughput(lambda: direct.request(path=f"bytes/{TRANSFER}")),
            "download, through a relay": await throughput(lambda: relayed.request(path=f"bytes/{TRANSFER}")),
        }
    finally:
        direct.close()
        relayed.close()
    return latency, rates


def latency_rows(latency: dict[str, Stats]) -> list[list[object]]:
    return [[name, s.n, ms(s.p50, 3), ms(s.p95, 3), ms(s.p99, 3)] for name, s in latency.items()]


def main() -> str:
    python = system_python()
    host_port = free_port()
    with temp_dir("cove-bench-preview-") as scratch, running_server() as server:
        app, relay = scratch / "app.py", scratch / "relay.py"
        app.write_text(APP)
        relay.write_text(RELAY)
        relay_socket = str(scratch / "relay.sock")
        with process(python, str(app), str(host_port)), process(python, str(relay), relay_socket, str(host_port)):
            wait_for_port(host_port)
            while not os.path.exists(relay_socket):
                time.sleep(0.02)
            latency, rates = asyncio.run(measure_previews(server.url, server.api_key, host_port))
            design_latency, design_rates = asyncio.run(measure_design(host_port, relay_socket))

    added_get = latency[PREVIEW_GET].p50 - latency[DIRECT_GET].p50
    added_small = latency[PREVIEW_SMALL].p50 - latency[DIRECT_SMALL].p50
    added_large = latency[PREVIEW_LARGE].p50 - latency[DIRECT_LARGE].p50
    added_relay = design_latency[RELAYED].p50 - design_latency[OWN_SOCKET].p50
    headers = ["request", "n", "p50", "p95", "p99"]
    print_table("Latency (ms)", headers, latency_rows(latency))
    print_table("Throughput (MB/s)", ["transfer", "MB/s"], [[k, f"{v:.0f}"] for k, v in rates.items()])
    print_table("Design: descriptor vs relay (ms)", headers, latency_rows(design_latency))
    print_table("Design: throughput (MB/s)", ["transfer", "MB/s"], [[k, f"{v:.0f}"] for k, v in design_rates.items()])
    print(
        f"\nadded at p50: GET {added_get:.3f} ms, POST 1 KiB {added_small:.3f} ms, POST 128 KiB {added_large:.3f} ms;"
        f" a relay adds {added_relay:.3f} ms"
    )

    return "\n\n".join(
        [
            "## Preview URLs\n\nThe same small app (HTTP/1.1, kept alive) on the host and in a sandbox with no "
            "network, its port published (private: the token in a header); one kept-alive client connection "
            f"each, {ROUNDS} interleaved rounds of {PER_ROUND} requests. Requests whose body is small enough to be "
            "read first go on a connection to the app kept from an earlier request; a larger body streams, on a new "
            "connection: the supervisor connects in the sandbox and passes the socket to the server.",
            markdown_table(headers, latency_rows(latency)),
            f"Added at p50: **GET {added_get:.2f} ms** (goal < {ADDED_TARGET_MS:g} ms: "
            f"{verdict(added_get < ADDED_TARGET_MS)}); POST 1 KiB {added_small:.2f} ms; POST 128 KiB on a new "
            f"connection {added_large:.2f} ms.",
            markdown_table(["100 MB", "MB/s"], [[k, f"{v:.0f}"] for k, v in rates.items()]),
            "Design — the connection passed as a descriptor (the server talks to the app's socket itself) against a "
            "byte-copying relay process in between (the least a relay of frames through the supervisor would "
            "cost), over loopback without Cove:",
            markdown_table(headers, latency_rows(design_latency)),
            markdown_table(["100 MB", "MB/s"], [[k, f"{v:.0f}"] for k, v in design_rates.items()]),
            f"A relay adds {added_relay:.2f} ms at p50 to every request, and every byte crosses a process more.",
        ]
    )
