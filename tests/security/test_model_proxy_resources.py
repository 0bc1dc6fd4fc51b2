"""What one sandbox can make the server spend through the model hand-off socket, without even a session token:
the proxy reads a whole request (head and body) before it looks at the token. The per-uid caps bound the
connections (64) and the body (64 MiB each), not what they add up to, nor the work a body's framing costs."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from cove import AsyncSandbox
from tests.conftest import CoveServer
from tests.security.conftest import resident_bytes, server_answers, sh

# Hands the server ``count`` loopback connections through the hand-off socket (no forwarder, no token), then
# feeds each from a thread; prints "sent" when done and keeps the connections open for ``hold`` seconds.
FEEDER = """
import socket, sys, threading, time
count, kind, seconds, hold = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
listener = socket.create_server(("127.0.0.1", 0))
handoff = socket.socket(socket.AF_UNIX)
handoff.connect("/run/cove-model/handoff.sock")
clients = []
for _ in range(count):
    client = socket.create_connection(listener.getsockname())
    served, _ = listener.accept()
    socket.send_fds(handoff, [b"c"], [served.fileno()])
    served.close()
    clients.append(client)

def big_body(client):  # 64 MiB announced, one byte short of it sent: the server holds it all, waiting
    size = 64 * 1024 * 1024
    client.sendall(b"POST /v1/messages HTTP/1.1\\r\\nhost: x\\r\\ncontent-length: %d\\r\\n\\r\\n" % size)
    block = b"x" * (1 << 20)
    for _ in range(63):
        client.sendall(block)
    client.sendall(block[:-1])

def tiny_chunks(client):  # one byte a chunk, 6 bytes on the wire each, for ``seconds``
    client.sendall(b"POST /v1/messages HTTP/1.1\\r\\nhost: x\\r\\ntransfer-encoding: chunked\\r\\n\\r\\n")
    blob, end = b"1\\r\\nx\\r\\n" * 100_000, time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            client.sendall(blob)
        except OSError:
            return

feed = big_body if kind == "big" else tiny_chunks
threads = [threading.Thread(target=feed, args=(client,)) for client in clients]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print("sent", flush=True)
time.sleep(hold)
"""


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def test_unauthenticated_bodies_cannot_make_the_server_hold_gigabytes(
    server: CoveServer, attacker: AsyncSandbox
) -> None:
    """16 connections with a 64 MiB body each, no token: the server buffered all of it (+1 GiB of RSS; 64
    connections, the per-uid cap, make 4 GiB per sandbox, whatever the sandbox's own memory limit)."""
    assert server.process is not None
    before = resident_bytes(server.process.pid)
    await attacker.files.write("/tmp/feeder.py", FEEDER)
    await attacker.exec.background("python3 /tmp/feeder.py 16 big 0 30 > /tmp/feeder.out 2>&1")
    for _ in range(300):
        if "sent" in await sh(attacker, "cat /tmp/feeder.out 2>/dev/null || true"):
            break
        await asyncio.sleep(0.1)
    held = resident_bytes(server.process.pid) - before
    await attacker.exec.run("pkill -f 'python3 /tmp/feede[r]'")
    assert held < 256 * 1024 * 1024, f"the server holds {held >> 20} MiB for one sandbox's unauthenticated bodies"
    assert server_answers(server)


async def test_a_body_of_tiny_chunks_does_not_monopolise_the_server(server: CoveServer, attacker: AsyncSandbox) -> None:
    """Every chunk costs the proxy a readuntil, an int() and a readexactly on the event loop: one-byte chunks from
    8 connections kept the server's one core busy (5 s of its CPU in 4 s) and /healthz took seconds."""
    assert server.process is not None
    await attacker.files.write("/tmp/feeder.py", FEEDER)
    before = _cpu_seconds(server.process.pid)
    await sh(attacker, "python3 /tmp/feeder.py 8 chunks 4 0", timeout=60)
    spent = _cpu_seconds(server.process.pid) - before
    assert spent < 1.0, f"the server spent {spent:.1f} s of CPU on 4 s of one sandbox's chunk framing"
    assert server_answers(server)
