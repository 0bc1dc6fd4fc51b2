"""Inside the sandbox, the server's road to a port the sandbox's app listens on (a preview URL).

The supervisor opens a TCP connection to the port on the sandbox's own loopback and passes the connected socket
to the server over the supervisor socket (SCM_RIGHTS, attached to the reply frame): the server then speaks HTTP
or WebSocket with the app itself, and no byte of a preview passes through this process — the model forwarder's
trick (``cove.guest.model_forwarder``), in the other direction. Because the connection is made here, in the
sandbox's network namespace, previews work in every network mode, ``"none"`` included.
"""

from __future__ import annotations

import asyncio
import os
import socket

from cove.guest.protocol import encode_json

# A loopback connect answers at once (accepted or refused); only a listener whose backlog is full keeps it waiting.
CONNECT_TIMEOUT = 10.0
# 127.0.0.1 first; then ::1, where some servers listen when told "localhost" (Node, Vite).
_LOOPBACKS = ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1"))


class PortError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


async def connect(port: int) -> socket.socket:
    """A connection to ``port`` on the sandbox's loopback; :class:`PortError` when nothing accepts it there."""
    loop = asyncio.get_running_loop()
    for family, host in _LOOPBACKS:
        try:
            sock = socket.socket(family, socket.SOCK_STREAM)
        except OSError:  # no IPv6 in this namespace
            continue
        sock.setblocking(False)
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                await loop.sock_connect(sock, (host, port))
        except TimeoutError:
            sock.close()
            raise PortError(
                "port_not_listening", f"port {port} did not accept a connection within {CONNECT_TIMEOUT:.0f} s"
            ) from None
        except OSError:
            sock.close()
            continue
        return sock
    raise PortError(
        "port_not_listening",
        f"nothing listens on port {port} in the sandbox (on 127.0.0.1, 0.0.0.0 or ::1): start the app, "
        "or wait until it listens",
    )


def hand_over(channel: int, connection: socket.socket) -> None:
    """Send the reply frame with ``connection``'s descriptor attached, on the server's ``channel`` (a descriptor).

    ``channel`` belongs to an asyncio transport that has written nothing on it yet: a duplicate of it sends this
    one message, so the transport's own socket object stays untouched."""
    reply = encode_json({"ok": True, "result": {"port": connection.getpeername()[1]}})
    with socket.socket(fileno=os.dup(channel)) as raw:
        socket.send_fds(raw, [reply], [connection.fileno()])
