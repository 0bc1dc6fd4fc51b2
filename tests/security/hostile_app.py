"""A hostile app for the preview's security tests, run in a sandbox with the system's python3: what it answers
depends on the request's path. Each request's path is logged to ``/tmp/started.log`` once its head is read, and
again to ``/tmp/ended.log`` when its connection ends.

- ``/never``: a status line, then nothing, ever (a head that never completes);
- ``/huge-head``: a head of 40 MB (one header);
- ``/many-headers``: 10,000 small headers;
- ``/trickle-head``: a valid head, one byte every 50 ms;
- ``/trickle-body``: a valid head, then an endless body, one byte every 20 ms;
- ``/hang``: nothing at all.
"""

from __future__ import annotations

import asyncio
import sys

STARTED = "/tmp/started.log"
ENDED = "/tmp/ended.log"


def log(name: str, path: str) -> None:
    with open(name, "a") as lines:
        lines.write(path + "\n")


async def slowly(writer: asyncio.StreamWriter, data: bytes, pause: float) -> None:
    for byte in data:
        writer.write(bytes([byte]))
        await writer.drain()
        await asyncio.sleep(pause)


async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    path = "?"
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        path = head.split(b" ")[1].decode()
        log(STARTED, path)
        if path == "/never":
            writer.write(b"HTTP/1.1 200 OK\r\nX-Waiting: ")
        elif path == "/huge-head":
            writer.write(b"HTTP/1.1 200 OK\r\nX-Huge: " + b"a" * (40 * 1024 * 1024) + b"\r\n\r\n")
        elif path == "/many-headers":
            writer.write(b"HTTP/1.1 200 OK\r\n" + b"a:b\r\n" * 10_000 + b"\r\n")
        elif path == "/trickle-head":
            await slowly(writer, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 0.05)
        elif path == "/trickle-body":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n")
            while True:
                await slowly(writer, b"x", 0.02)
        await writer.drain()
        await reader.read()  # until the server closes its end
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        log(ENDED, path)
        writer.close()


async def main(port: int) -> None:
    server = await asyncio.start_server(serve, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


asyncio.run(main(int(sys.argv[1])))
