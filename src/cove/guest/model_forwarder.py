"""Inside the sandbox, a loopback TCP port that leads to Cove's model proxy.

A sandbox with no network still needs its agent to reach a model: the Claude Code CLI expects a plain
``http://127.0.0.1:PORT``. This listens there and hands each accepted connection to the server over the unix
socket bound into the sandbox (the descriptor itself, with SCM_RIGHTS): the server's proxy then talks to the
CLI directly, and no byte of any model call passes through this process (relaying them here cost a socket hop
and a wake-up of this process per streamed chunk). The port is chosen by the kernel and written to
``model-port`` for the server to read.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from pathlib import Path

HANDOFF_SOCKET = Path("/run/cove-model/handoff.sock")
_BAD_GATEWAY = b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


class _Forwarder:
    def __init__(self, listener: socket.socket) -> None:
        self.listener = listener
        self._handoff: socket.socket | None = None

    def accept_all(self) -> None:
        while True:
            try:
                client, _address = self.listener.accept()
            except BlockingIOError:
                return
            with client:
                self._hand_off(client)

    def _hand_off(self, client: socket.socket) -> None:
        """Pass the connection to the server (reconnecting once if the server restarted); without a server,
        answer 502 so that the CLI retries later, as it would any gateway error."""
        for _attempt in range(2):
            try:
                if self._handoff is None:
                    self._handoff = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    self._handoff.connect(str(HANDOFF_SOCKET))
                socket.send_fds(self._handoff, [b"c"], [client.fileno()])
                return
            except OSError:
                if self._handoff is not None:
                    self._handoff.close()
                    self._handoff = None
        with contextlib.suppress(OSError):
            client.setblocking(True)
            client.sendall(_BAD_GATEWAY)

    def close(self) -> None:
        self.listener.close()
        if self._handoff is not None:
            self._handoff.close()


async def start(port_file: Path) -> _Forwarder | None:
    """Listen on an ephemeral loopback port when the proxy's socket directory is bound into this sandbox."""
    if not HANDOFF_SOCKET.parent.is_dir():
        return None
    listener = socket.create_server(("127.0.0.1", 0), backlog=128)
    listener.setblocking(False)
    forwarder = _Forwarder(listener)
    asyncio.get_running_loop().add_reader(listener.fileno(), forwarder.accept_all)
    port_file.write_text(str(listener.getsockname()[1]))
    return forwarder
